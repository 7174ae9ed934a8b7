# The README's run command, "make demo" (tools/demo.sh): the development
# AS, the tool API and nginx with the module start; the agent CLI's refund
# is approved through the command-line approver and gets through once, the
# repository deletion is denied; the decision lines show; then everything
# stops: at the end of a CIBA_DEMO_ONCE=1 run, and on SIGINT (Ctrl-C) of a
# run that keeps going.  Also: a clear refusal when a port is taken.

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Digest::SHA qw(sha256_hex);

my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
$port =~ s/.*://;
$port += 20;
my $as_port = $port + 2;

my @mods = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');

plan skip_all => 'runs against a dynamic module only' if @mods != 1;
plan skip_all => 'not under valgrind' if $ENV{TEST_NGINX_USE_VALGRIND};
plan skip_all => 'the development AS is not installed (make deps)'
    unless -d 'tools/dev-as/node_modules/oidc-provider';

my $dir = tempdir(CLEANUP => 1);

# the body of the demo's refund
my $body_sha256 = sha256_hex('{"reason":"duplicate charge"}');

$ENV{CIBA_DEMO_PORT} = $port;
$ENV{CIBA_DEMO_AS_PORT} = $as_port;
$ENV{CIBA_DEMO_DIR} = $dir;
$ENV{CIBA_DEMO_APPROVE_AFTER} = 1;
$ENV{CIBA_MODULE} = $mods[0];
$ENV{CIBA_NGINX} = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

sub open_port {
    my ($p) = @_;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p,
                                 Proto => 'tcp', Timeout => 1) ? 1 : 0;
}

sub all_closed {
    my $name = shift;
    for my $p ($port, $port + 1, $as_port) {
        ok !open_port($p), "$name: nothing listens on 127.0.0.1:$p";
    }
    ok !-s "$dir/logs/nginx.pid", "$name: nginx removed its pid file";
}

# ---- one round trip, then stop ----------------------------------------------

{
    local $ENV{CIBA_DEMO_ONCE} = 1;
    my $t = time;
    my $out = `tools/demo.sh 2>&1 < /dev/null`;
    my $rc = $? >> 8;
    is $rc, 0, 'once: the demo exits 0' or diag $out;
    diag sprintf 'the demo round trip took %.1f s', time - $t;

    like $out, qr{\Q127.0.0.1:$as_port/approver\E},
        'once: prints the approver page URL';
    like $out, qr{\Q127.0.0.1:$port/tools/refund\E},
        'once: prints the protected endpoint';
    like $out, qr/^ +Message +Refund 120 EUR on order B42$/m,
        'once: the agent shows the binding message, with its spaces'
        or diag $out;
    like $out, qr/^\[human\] my device shows "Refund 120 EUR on order B42"$/m,
        'once: the AS shows the human the same message';
    like $out, qr/^  binding message +Refund 120 EUR on order B42$/m,
        'once: ciba-approve show: the binding message';
    like $out, qr/^  args +order = B42\n +amount = 120$/m,
        'once: ciba-approve show: the decoded arguments, in request order';
    like $out, qr/^  body sha-256 +\Q$body_sha256\E$/m,
        'once: ciba-approve show: the hash of the body';
    like $out, qr/^  binding message +Delete repository payments$/m,
        'once: the second message';
    unlike $out, qr/Refund_|_EUR_/, 'once: no space became "_"';
    like $out, qr/"tool":"refund","done":true,"order":"B42","amount":"120"/,
        'once: the approved refund reached the tool API';
    like $out, qr/approval_denied/, 'once: the deletion was denied';
    unlike $out, qr/"tool":"delete-repo"/,
        'once: the denied deletion never reached the tool API';

    my @lines = $out =~ /^  ciba: (decision=\S+ reason=\S+)/mg;
    ok((grep { $_ eq 'decision=approved reason=approved_by_as' } @lines),
       'once: the decision log shows the approval')
        or diag explain \@lines;
    ok((grep { /^decision=denied / } @lines),
       'once: the decision log shows the denial')
        or diag explain \@lines;
    ok((grep { /^decision=pending reason=asked/ } @lines),
       'once: the decision log shows the human being asked')
        or diag explain \@lines;
    like $out, qr/stopped nginx and the development AS/, 'once: stops';

    all_closed('once');
}

# ---- a port in use is refused clearly ------------------------------------

{
    my $busy = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => $as_port, Listen => 5,
                                     ReuseAddr => 1)
        or die "listen $as_port: $!";
    local $ENV{CIBA_DEMO_ONCE} = 1;
    my $out = `tools/demo.sh 2>&1 < /dev/null`;
    isnt $? >> 8, 0, 'port in use: the demo fails';
    like $out, qr/^demo: 127\.0\.0\.1:$as_port is in use/m,
        'port in use: says which port' or diag $out;
    close $busy;
    ok !open_port($port), 'port in use: nginx was not started';
}

# ---- keeps running until Ctrl-C ------------------------------------------

our $DemoPid;     # a demo still running when the test ends: Ctrl-C it

END {
    if ($DemoPid) {
        local $?;
        kill 'INT', $DemoPid;
        sleep 3;
        kill 'KILL', $DemoPid;
        waitpid $DemoPid, 0;
    }
}

{
    my $log = "$dir/demo.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $log or die "$log: $!";
        open STDERR, '>&', \*STDOUT or die "dup: $!";
        open STDIN, '<', '/dev/null' or die "/dev/null: $!";
        exec 'tools/demo.sh' or die "exec: $!";
    }
    $DemoPid = $pid;

    my $running = 0;
    for (1 .. 1200) {
        my $text = -e $log ? do { local (@ARGV, $/) = $log; <> // '' } : '';
        if ($text =~ /Everything keeps running/) {
            $running = 1;
            last;
        }
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.1;
    }
    ok $running, 'Ctrl-C: the demo keeps running after the round trip'
        or diag do { local (@ARGV, $/) = $log; <> // '' };
    ok open_port($port), 'Ctrl-C: nginx listens while it runs';
    ok open_port($as_port), 'Ctrl-C: the AS listens while it runs';

    kill 'INT', $pid;
    my $gone = 0;
    for (1 .. 150) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $gone = 1;
            last;
        }
        sleep 0.1;
    }
    ok $gone, 'Ctrl-C: the demo exits';
    undef $DemoPid if $gone;
    my $text = do { local (@ARGV, $/) = $log; <> // '' };
    like $text, qr/stopped nginx and the development AS/,
        'Ctrl-C: says it stopped everything';
    sleep 0.5;
    all_closed('Ctrl-C');
}

done_testing;
