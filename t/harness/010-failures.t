# Self-test of the project's Test::Nginx replacement (t/lib), running .t
# files in sub-processes: blocks that must FAIL have to be reported (not ok
# lines, exit status = number of failures); unsupported sections bail out;
# --- ONLY, TEST_NGINX_NO_SHUFFLE, TEST_NGINX_LOAD_MODULES and cleanup
# handlers work; and no nginx is ever left behind, not even after SIGINT.
use strict;
use warnings;

use File::Spec ();
use File::Temp qw(tempdir);
use FindBin ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

my $lib = File::Spec->rel2abs("$FindBin::Bin/../lib");
my $servroot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
(my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984) =~ s/^.*://;
my $dir = tempdir(CLEANUP => 1);

# Writes a .t file and runs it; returns (exit status, output).
sub run_fixture {
    my ($name, $text, %env) = @_;
    my $file = "$dir/$name.t";
    open my $out, '>', $file or die $!;
    print $out $text;
    close $out;
    local @ENV{keys %env} = values %env;
    my $pid = open my $in, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT or die $!;
        exec $^X, "-I$lib", $file or die "exec: $!";
    }
    my $output = do { local $/; <$in> };
    close $in;
    return ($? >> 8, $output);
}

# Processes other than us with the server root on their command line or in
# their open files, i.e. leftover nginx masters and workers.
sub leftovers {
    my @pids;
    opendir my $proc, '/proc' or return;
    for my $pid (grep { /^\d+$/ && $_ != $$ } readdir $proc) {
        my @refs = map { readlink($_) // '' } glob("/proc/$pid/fd/*");
        if (open my $cmd, '<', "/proc/$pid/cmdline") {
            push @refs, scalar <$cmd> // '';
        }
        push @pids, $pid if grep { index($_, "$servroot/") >= 0 } @refs;
    }
    return @pids;
}

# alive and not a zombie waiting to be reaped by init
sub running {
    my $pid = shift;
    open my $st, '<', "/proc/$pid/stat" or return 0;
    return (scalar <$st>) !~ /\)\s+[ZX]\s/;
}

sub port_free {
    my $sock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                     ReuseAddr => 1, Listen => 1) or return 0;
    close $sock;
    return 1;
}

sub no_leftovers {
    my $what = shift;
    my @left = leftovers();
    is("@left", '', "$what: no process left in the server root");
    ok(port_free(), "$what: port $port is free again");
    ok(!-e "$servroot/logs/nginx.pid", "$what: no pid file left");
}

# ---- blocks that must fail ---------------------------------------------------

my $blackhole_port = $ENV{TEST_NGINX_HARNESS_BLACKHOLE_PORT} || 19841;
my $failing = <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;

# accepts connections (the kernel does) but never answers
my $port = $ENV{TEST_NGINX_BLACKHOLE_PORT};
my $blackhole = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
    LocalPort => $port, Listen => 5, ReuseAddr => 1) or die "$port: $!";

run_tests();

__DATA__

=== TEST 1: wrong status
--- config
    location = /t { return 404; }
--- request
GET /t

=== TEST 2: passes
--- config
    location = /t { return 200 "fine\n"; }
--- request
GET /t
--- response_body
fine

=== TEST 3: wrong body
--- config
    location = /t { return 200 "actual\n"; }
--- request
GET /t
--- response_body
expected

=== TEST 4: error_log pattern missing, no_error_log pattern present
--- config
--- request
GET /missing-file
--- error_code: 404
--- error_log
this text is never logged
--- no_error_log
[error]

=== TEST 5: nginx does not start
--- config
    harness_no_such_directive;
--- request
GET /

=== TEST 6: must_die, but nginx starts
--- config
--- must_die

=== TEST 7: client timeout
--- config
    location = /slow { proxy_pass http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT; }
--- request
GET /slow
--- timeout: 0.5

=== TEST 8: header mismatches
--- config
    location = /t { add_header X-A a; return 200 "ok\n"; }
--- request
GET /t
--- response_headers
X-A: b
!Server
X-Absent: something

=== TEST 9: body regex mismatch
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body_like: ^nope$

=== TEST 10: headers_like mismatch
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_headers_like
Content-Type: text/html
_EOT_

my $t0 = time;
my ($rc, $out) = run_fixture('failing', $failing, TEST_NGINX_NO_SHUFFLE => 1,
                             TEST_NGINX_BLACKHOLE_PORT => $blackhole_port);
my $elapsed = time - $t0;
my @not_ok = $out =~ /^not ok \d+ - (.*)$/mg;

ok(@not_ok >= 13, 'failures are reported as "not ok" lines') or diag $out;
is($rc, scalar @not_ok, 'the exit status is the number of failures');
cmp_ok($elapsed, '<', 40, 'failing blocks do not hang the run');

my @expected = (
    qr/TEST 1: wrong status - status code ok/,
    qr/TEST 3: wrong body - response_body - response is expected/,
    qr/TEST 4: .* - pattern "this text is never logged" should match a line in error\.log/,
    qr/TEST 4: .* - pattern "\[error\]" should not match any line in error\.log but matches line/,
    qr/TEST 5: nginx does not start - nginx failed to start/,
    qr/TEST 6: must_die, but nginx starts - die as expected/,
    qr/ERROR: client socket timed out - \S+ TEST 7: client timeout/,
    qr/TEST 7: client timeout - status code ok/,
    qr/TEST 8: header mismatches - header X-A ok/,
    qr/TEST 8: header mismatches - header Server not present in the raw headers/,
    qr/TEST 8: header mismatches - header X-Absent ok/,
    qr/TEST 9: body regex mismatch - response_body_like - response is expected/,
    qr/TEST 10: headers_like mismatch - header Content-Type like ok/,
);
for my $re (@expected) {
    ok((grep { $_ =~ $re } @not_ok), "reported as failed: $re");
}
like($out, qr/^ok \d+ - \S+ TEST 2: passes - response_body - response is expected/m,
     'a good block in between still passes');
ok(!(grep { /TEST 2:/ } @not_ok), 'nothing of the good block fails');
like($out, qr/unknown directive "harness_no_such_directive"/,
     'the reason nginx did not start is shown');

my @order = $out =~ /^(?:not )?ok \d+ - \S+ TEST (\d+):/mg;
my @sorted = sort { $a <=> $b } @order;
is("@order", "@sorted", 'TEST_NGINX_NO_SHUFFLE keeps the file order');
no_leftovers('after failing blocks');

# ---- unsupported sections bail out -------------------------------------------

($rc, $out) = run_fixture('unsupported', <<'_EOT_');
use Test::Nginx::Socket 'no_plan';
no_shuffle();
run_tests();
__DATA__

=== TEST 1: fine
--- config
--- request
GET /
--- response_body_like: It works

=== TEST 2: a section of the real harness that is not implemented
--- config
--- raw_request eval
"GET / HTTP/1.0\r\n\r\n"
_EOT_
is($rc, 255, 'an unsupported section bails out');
like($out, qr/^Bail out!.*raw_request is not supported/m, 'and says why');
no_leftovers('after a bail-out');

# ---- --- ONLY ----------------------------------------------------------------

($rc, $out) = run_fixture('only', <<'_EOT_');
use Test::Nginx::Socket 'no_plan';
run_tests();
__DATA__

=== TEST 1: not run
--- config
--- request
GET /
--- error_code: 599

=== TEST 2: the only one
--- ONLY
--- config
--- request
GET /
_EOT_
is($rc, 0, '--- ONLY: the run passes');
unlike($out, qr/TEST 1:/, '--- ONLY: other blocks are not run');
like($out, qr/^ok \d+ - \S+ TEST 2: the only one - status code ok/m, '--- ONLY: that block runs');

# ---- TEST_NGINX_LOAD_MODULES, cleanup handlers ---------------------------------

($rc, $out) = run_fixture('modules', <<"_EOT_",
use Test::Nginx::Socket 'no_plan';
add_cleanup_handler(sub {
    open my \$out, '>', '$dir/cleanup-ran' or die;
});
run_tests();
__DATA__

=== TEST 1: the modules are loaded first
--- config
--- must_die
--- error_log
[emerg]
/nonexistent/harness_a.so
_EOT_
    TEST_NGINX_LOAD_MODULES => ' /nonexistent/harness_a.so  /nonexistent/harness_b.so ');
is($rc, 0, 'TEST_NGINX_LOAD_MODULES: nginx tried the first module') or diag $out;
open my $conf, '<', "$servroot/conf/nginx.conf" or die $!;
my @head = map { scalar <$conf> } 1 .. 3;
is(join('', @head), "load_module /nonexistent/harness_a.so;\n"
                    . "load_module /nonexistent/harness_b.so;\n"
                    . "worker_processes  1;\n",
   'load_module lines open nginx.conf');
ok(-e "$dir/cleanup-ran", 'cleanup handlers run');

# ---- Ctrl-C --------------------------------------------------------------------

my $sleeper = <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
master_on();
workers(2);

# a helper server, as a suite would start one, stopped by a cleanup handler
my $helper = fork // die "fork: $!";
if (!$helper) { exec 'sleep', '300' or POSIX::_exit(1) }
open my $out, '>', "$ENV{HARNESS_DIR}/helper.pid" or die $!;
print $out $helper;
close $out;
add_cleanup_handler(sub { kill 'TERM', $helper; waitpid $helper, 0 });

run_tests();
__DATA__

=== TEST 1: interrupted while nginx runs
--- config
--- init
Time::HiRes::sleep(60);
--- request
GET /
_EOT_
open my $fh, '>', "$dir/sleeper.t" or die $!;
print $fh $sleeper;
close $fh;
unlink "$servroot/logs/nginx.pid";
my $pid = fork // die "fork: $!";
if (!$pid) {
    open STDOUT, '>', "$dir/sleeper.out" or die $!;
    open STDERR, '>&', \*STDOUT or die $!;
    $ENV{HARNESS_DIR} = $dir;
    exec $^X, "-I$lib", "$dir/sleeper.t" or die "exec: $!";
}
my $master;
for (1 .. 200) {
    if (open my $p, '<', "$servroot/logs/nginx.pid") {
        last if defined($master = <$p>);
    }
    sleep 0.05;
}
ok($master, 'nginx was started') or diag `cat $dir/sleeper.out`;
sleep 0.5;    # the workers are up, init is sleeping
kill 'INT', $pid;
my $deadline = time + 20;
sleep 0.05 until waitpid($pid, WNOHANG) == $pid || time > $deadline;
ok(time <= $deadline, 'SIGINT ends the run');
chomp $master if $master;
ok(!($master && running($master)), 'the nginx master is gone');
my $helper = do { open my $h, '<', "$dir/helper.pid" or die $!; <$h> };
ok($helper && !running($helper), "the .t file's cleanup handler ran");
no_leftovers('after SIGINT');

done_testing();
