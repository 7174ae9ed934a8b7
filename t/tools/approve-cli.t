#!/usr/bin/perl
#
# tools/ciba-approve, the command-line approver, against the development
# AS (tools/dev-as/dev-as.mjs, started here on a free port): list, show,
# approve, deny, watch, --json, --user, --latest, id prefixes; its errors
# and exit statuses (2 wrong arguments, 3 unknown id or nothing pending,
# 4 already decided or expired, 5 the AS unreachable, 1 a refusal); what
# the AS holds afterwards; control characters from a request printed
# escaped, never raw.  Also the admin API's refusals of browser-style
# cross-site requests (the reason the CLI sends JSON).
#
# Needs node >= 20 and tools/dev-as/node_modules (make deps); skipped
# otherwise.  Ports: the AS on a free port (--port 0); "unreachable" uses
# TEST_NGINX_SERVER_PORT + 9 (checked to be closed first).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/..";

use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Time::HiRes qw(sleep time);

use DevAS;

my $ROOT = "$FindBin::Bin/../..";
my $CLI = "$ROOT/tools/ciba-approve";

{
    my @missing = DevAS::missing();
    plan skip_all => 'missing: ' . join(', ', @missing)
                     . ' (run "make deps")'
        if @missing;
}

my $PORT = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
$PORT =~ s/.*://;
my $CLOSED = $PORT + 9;

my $JSON = JSON::PP->new->canonical;
my $tmp = tempdir('ciba-approve-cli-XXXXXX', TMPDIR => 1, CLEANUP => 1);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);


# ---- running the CLI ---------------------------------------------------------

# start_cli({ env => {...}, stdin => $file, tag => 'cli' }, @args): the
# CLI started with its stdout and stderr into files, $CIBA_AS_URL only
# as given: (pid, stdout file, stderr file)
my $Seq = 0;
sub start_cli {
    my ($o, @args) = @_;
    my ($out, $err) = map { "$tmp/$o->{tag}-" . ++$Seq . ".$_" } qw(out err);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', $out or POSIX::_exit(127);
        open STDERR, '>', $err or POSIX::_exit(127);
        if ($o->{stdin}) {
            open STDIN, '<', $o->{stdin} or POSIX::_exit(127);
        }
        delete $ENV{CIBA_AS_URL};
        $ENV{$_} = $o->{env}{$_} for keys %{ $o->{env} || {} };
        exec $CLI, @args or POSIX::_exit(127);
    }
    return ($pid, $out, $err);
}

# cli([env => {...}], @args): (exit status, stdout, stderr)
sub cli {
    my %env = ref $_[0] eq 'HASH' ? %{ shift() } : ();
    my ($pid, $out, $err) = start_cli({ env => \%env, stdin => '/dev/null',
                                        tag => 'cli' }, @_);
    my $done = wait_for($pid, 30);
    my $rc = $done ? $? >> 8 : -1;
    return ($rc, slurp($out), slurp($err));
}

# the CLI in the background: (pid, stdout file, stderr file)
sub cli_bg { return start_cli({ tag => 'bg' }, @_) }

# waits up to $secs for $pid; kills it (TERM) when it is still there
sub wait_for {
    my ($pid, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return 1 if waitpid($pid, POSIX::WNOHANG()) == $pid;
        sleep 0.05;
    }
    kill 'TERM', $pid;
    waitpid $pid, 0;
    diag "ciba-approve did not finish in $secs s: killed";
    return 0;
}

sub slurp {
    my ($f) = @_;
    open my $in, '<:raw', $f or return '';
    local $/;
    return <$in> // '';
}


# ---- arguments, before any AS -------------------------------------------------

{
    my ($rc, $out, $err) = cli('--help');
    is $rc, 0, '--help: exit 0';
    like $out, qr/^usage: ciba-approve \[--as URL\] \[--json\] COMMAND/,
        '--help: the usage';
    like $out, qr/\$CIBA_AS_URL, else\s+http:\/\/127\.0\.0\.1:9000/,
        '--help: the default AS';
    for my $c (qw(list show approve deny watch)) {
        like $out, qr/^  \Q$c\E /m, "--help: $c";
    }
    is $err, '', '--help: nothing on stderr';

    my @bad = (
        [ [], qr/a command is required/, 'no command' ],
        [ ['frob'], qr/unknown command "frob"/, 'an unknown command' ],
        [ ['list', '--frob'], qr/Unknown option '--frob'/,
          'an unknown option' ],
        [ ['list', 'x'], qr/list takes no argument/, 'list with an argument' ],
        [ ['list', '--auto', 'approve'], qr/--auto is not an option of "list"/,
          '--auto with list' ],
        [ ['approve'], qr/approve takes one request id \(or --latest\)/,
          'approve without an id' ],
        [ ['deny', 'a', 'b'], qr/deny takes one request id/,
          'deny with two ids' ],
        [ ['approve', 'x', '--latest'], qr/an id or --latest, not both/,
          'an id and --latest' ],
        [ ['--as', 'ftp://127.0.0.1/', 'list'],
          qr/--as must be the AS's http\(s\) base URL, not "ftp:/,
          '--as not http' ],
        [ ['--as', 'http://127.0.0.1:1/?x', 'list'], qr/--as must be/,
          '--as with a query' ],
        [ ['watch', '--auto', 'maybe', '--as', "http://127.0.0.1:$CLOSED"],
          qr/--auto must be "approve" or "deny"/, 'watch --auto maybe' ],
        [ ['watch', '--interval', '0', '--as', "http://127.0.0.1:$CLOSED"],
          qr/--interval must be from 0\.1 to 3600/, 'watch --interval 0' ],
        [ ['watch', '--count', '-1', '--as', "http://127.0.0.1:$CLOSED"],
          qr/--count/, 'watch --count -1' ],
    );
    for my $b (@bad) {
        my ($args, $re, $name) = @$b;
        my ($rc, $out, $err) = cli(@$args);
        is $rc, 2, "$name: exit 2";
        like $err, qr/^ciba-approve: .*$re/s, "$name: says why";
        like $err, qr/\(ciba-approve --help for the usage\)\n\z/,
            "$name: points to --help";
        is $out, '', "$name: nothing on stdout";
    }
}

# unreachable: nothing listens on $CLOSED
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $CLOSED, Timeout => 2);
    BAIL_OUT("something listens on 127.0.0.1:$CLOSED") if $s;

    for my $c (['list'], ['approve', '--latest'], ['deny', 'abc'],
               ['watch'], ['show', 'abc'])
    {
        my ($rc, $out, $err) = cli('--as', "http://127.0.0.1:$CLOSED", @$c);
        is $rc, 5, "unreachable: $c->[0]: exit 5";
        is $err, "ciba-approve: cannot reach the development AS at "
                 . "http://127.0.0.1:$CLOSED: connection refused\n",
            "unreachable: $c->[0]: says so";
        is $out, '', "unreachable: $c->[0]: nothing on stdout";
    }

    # CIBA_AS_URL is the default; --as wins over it
    my ($rc, $out, $err) = cli({ CIBA_AS_URL => "http://127.0.0.1:$CLOSED/" },
                               'list');
    is $rc, 5, 'CIBA_AS_URL: used';
    like $err, qr{at http://127\.0\.0\.1:$CLOSED: connection refused},
        'CIBA_AS_URL: the AS named (trailing / dropped)';
}


# ---- the development AS ------------------------------------------------------

my $AS = eval { DevAS::start(log => "$tmp/dev-as.log") } or BAIL_OUT($@);

sub as { return DevAS::call(@_) }

my %SUB = DevAS::subs();
ok $SUB{alice} && $SUB{bob}, 'the AS has alice and bob'
    or BAIL_OUT('no demo users');

sub state_of { return as(GET => "/admin/requests/$_[0]")->{state} // 'none' }

my $BASIC = encode_base64('nginx-poll:poll-secret', '');

# a backchannel request straight to the AS: its auth_req_id (detail =>
# {...}: more members of the authorization_details entry)
sub backchannel {
    my ($user, $bm, %o) = @_;
    my $ad = $JSON->encode([ {
        type => 'nginx_ciba_action', actions => [ $o{action} // 'refund' ],
        identifier => $o{digest} // 'uEWPVbMc1DJRgNm6CWAdhXMDfzdUfKij4fUkDBCmWwg',
        method => 'POST', path => $o{path} // '/tools/refund',
        locations => [ 'https://tools.example' . ($o{path} // '/tools/refund') ],
        %{ $o{detail} || {} },
    } ]);
    my $res = DevAS::form('/backchannel', {
        scope => 'openid', login_hint => $user, binding_message => $bm,
        authorization_details => $ad,
        $o{expiry} ? (requested_expiry => $o{expiry}) : () },
        Authorization => "Basic $BASIC");
    my $id = eval { $JSON->decode($res->{content})->{auth_req_id} };
    $id or BAIL_OUT("backchannel request refused: $res->{content}");
    return $id;
}

sub short { return substr($_[0], 0, 12) . "\x{2026}" }


# ---- list, show -------------------------------------------------------------------

{
    my ($rc, $out, $err) = cli('--as', $AS, 'list');
    is $rc, 0, 'list, nothing pending: exit 0';
    is $out, "no pending approvals\n", 'list: "no pending approvals"';
    is $err, '', 'list: nothing on stderr';

    ($rc, $out) = cli('--as', $AS, '--json', 'list');
    is $rc, 0, 'list --json: exit 0';
    is_deeply eval { $JSON->decode($out) }, { pending => [] },
        'list --json: {"pending": []}';
}

# an escape sequence and a right-to-left override in the path
my $EVIL_PATH = "/tools/x\e[2J\x{202e}gnp.exe";

my $A1 = backchannel('alice', 'Refund_30_EUR_order_A1');
# what nginx sends: a percent-encoded path, the arguments decoded (a
# repeated one as an array, an escape sequence in one), args_truncated,
# the body's hash, an operator's field (ciba_authorization_detail uri ...)
my $B1 = backchannel('bob', 'Pay 10 EUR to B1', action => 'pay',
                     path => '/tools/pay%C3%A9', detail => {
                         args => { to => "B1 \e[31m", amount => [ '10', '10000' ],
                                   note => '' },
                         args_truncated => JSON::PP::true(),
                         body_sha256 => 'ab' x 32,
                         uri => 'https://tools.example/tools/pay%C3%A9?to=B1',
                     });
my $A2 = backchannel('alice', 'Refund_99_EUR_order_A2', path => $EVIL_PATH);

{
    my ($rc, $out, $err) = cli('--as', $AS, 'list');
    is $rc, 0, 'list: exit 0';
    is $err, '', 'list: nothing on stderr';
    utf8::decode($out);
    my @l = split /\n/, $out;
    is scalar @l, 4, 'list: a header and three rows' or diag $out;
    like $l[0], qr/^ID +USER +BINDING MESSAGE +ACTION +METHOD +PATH +EXPIRES IN$/,
        'list: the header';
    my $shown = '/tools/x\x1b[2J\u202egnp.exe';
    like $l[1], qr/^\Q${\ short($A2)}\E +alice \($SUB{alice}\) +Refund_99_EUR_order_A2 +refund +POST +\Q$shown\E +[45]:\d\d$/,
        'list: newest first, with the escapes shown as text';
    like $l[2], qr/^\Q${\ short($B1)}\E +bob \($SUB{bob}\) +Pay 10 EUR to B1 +pay +POST +\/tools\/pay%C3%A9 +[45]:\d\d$/,
        'list: bob\'s';
    like $l[3], qr/^\Q${\ short($A1)}\E +alice \($SUB{alice}\) +Refund_30_EUR_order_A1 +refund +POST +\/tools\/refund +[45]:\d\d$/,
        'list: the oldest last';
    unlike $out, qr/[\x00-\x09\x0b-\x1f\x7f-\x9f\x{202a}-\x{202e}]/,
        'list: no raw control character';

    ($rc, $out) = cli('--as', $AS, 'list', '--user', 'bob');
    my @b = split /\n/, $out;
    is scalar @b, 2, 'list --user bob: one row';
    like $b[1] // '', qr/^\Q$B1\E|^\Q${\ substr($B1, 0, 12)}\E/,
        'list --user bob: bob\'s';

    ($rc, $out) = cli('--as', $AS, 'list', '--user', $SUB{alice});
    is scalar(split /\n/, $out), 3, 'list --user SUB: alice\'s two';

    ($rc, $out, $err) = cli('--as', $AS, '--json', 'list');
    is $rc, 0, 'list --json: exit 0';
    unlike $out, qr/\x1b|\xe2\x80\xae/, 'list --json: no raw ESC or RLO';
    my $j = eval { $JSON->decode($out) } // {};
    is_deeply [ map { $_->{auth_req_id} } @{ $j->{pending} // [] } ],
        [ $A2, $B1, $A1 ], 'list --json: the three, newest first';
    is $j->{pending}[0]{authorization_details}[0]{path}, $EVIL_PATH,
        'list --json: the raw value, JSON-escaped';

    ($rc, $out, $err) = cli('--as', $AS, 'show', substr($B1, 0, 8));
    is $rc, 0, 'show PREFIX: exit 0';
    like $out, qr/^request +\Q$B1\E$/m, 'show: the full id';
    like $out, qr/^state +pending$/m, 'show: pending';
    like $out, qr/^user +bob \($SUB{bob}\)$/m, 'show: the user';
    like $out, qr/^client +nginx-poll \(poll mode\)$/m, 'show: the client';
    utf8::decode($out);
    like $out, qr/^binding message +Pay 10 EUR to B1$/m, 'show: the message';
    like $out, qr/^actions +pay$/m, 'show: the action';
    like $out, qr/^method +POST$/m, 'show: the method';
    like $out, qr{^url +https://tools\.example/tools/pay%C3%A9$}m,
        'show: the URL';
    like $out, qr{^path +/tools/pay%C3%A9$}m, 'show: the path as sent';
    like $out, qr{^path \(decoded\) +/tools/pay\x{e9}$}m,
        'show: the path decoded';
    like $out, qr{^args +amount = "10" \| "10000" \(2 values, in request order\)\n +note = ""\n +to = B1 \\x1b\[31m\n +\(more arguments not shown: args_truncated; the action digest covers them all\)$}m,
        'show: the arguments, repeated, empty, escaped, truncated'
        or diag $out;
    like $out, qr/^body sha-256 +(?:ab){32}$/m, 'show: the body hash';
    like $out, qr/^action digest +uEWPVbMc1DJRgNm6CWAdhXMDfzdUfKij4fUkDBCmWwg$/m,
        'show: the digest';
    like $out, qr{^uri +https://tools\.example/tools/pay%C3%A9\?to=B1$}m,
        'show: a further string field';
    like $out, qr/^expires in +[45]:\d\d$/m, 'show: the countdown';
    unlike $out, qr/[\x00-\x09\x0b-\x1f\x7f-\x9f]/,
        'show: no raw control character';

    ($rc, $out) = cli('--as', $AS, 'show', $A1);
    like $out, qr/^args +-$/m, 'show, no args: "-"';
    like $out, qr/^body sha-256 +-$/m, 'show, no body hash: "-"';
    unlike $out, qr/^path \(decoded\)/m, 'show: no decoded path when equal';

    ($rc, $out, $err) = cli('--as', $AS, 'show', 'no-such-id');
    is $rc, 3, 'show an unknown id: exit 3';
    is $err, "ciba-approve: no such request: no-such-id\n",
        'show an unknown id: says so';
}


# ---- approve, deny ------------------------------------------------------------------

{
    # an id of bob's with --user alice: refused, nothing decided
    my ($rc, $out, $err) = cli('--as', $AS, 'approve', $B1, '--user', 'alice');
    is $rc, 1, 'approve bob\'s id --user alice: exit 1';
    like $err, qr/^ciba-approve: \Q$B1\E is for bob \($SUB{bob}\), not alice: not approved\n\z/,
        'approve bob\'s id --user alice: says why';
    is state_of($B1), 'pending', 'approve bob\'s id --user alice: still pending';

    # the newest of alice's
    ($rc, $out, $err) = cli('--as', $AS, 'approve', '--latest', '--user',
                            'alice');
    is $rc, 0, 'approve --latest --user alice: exit 0';
    like $out, qr/^approved: \Q$A2\E for alice \($SUB{alice}\): "Refund_99_EUR_order_A2", refund POST \/tools\/x\\x1b\[2J\\u202egnp\.exe\n\z/,
        'approve --latest --user alice: the newest of alice\'s';
    is $err, '', 'approve --latest: nothing on stderr';
    is state_of($A2), 'approved', 'approve --latest: approved at the AS';
    is state_of($A1), 'pending', 'approve --latest: alice\'s older one waits';

    # by a unique prefix, JSON out
    ($rc, $out, $err) = cli('--as', $AS, '--json', 'approve',
                            substr($B1, 0, 10));
    is $rc, 0, 'approve PREFIX --json: exit 0';
    my $j = eval { $JSON->decode($out) } // {};
    is $j->{auth_req_id}, $B1, 'approve --json: the full id';
    is $j->{state}, 'approved', 'approve --json: approved';
    is $j->{account}, $SUB{bob}, 'approve --json: the account';
    is state_of($B1), 'approved', 'approve PREFIX: approved at the AS';

    # again: 409
    ($rc, $out, $err) = cli('--as', $AS, 'approve', $B1);
    is $rc, 4, 'approve an approved one: exit 4';
    is $err, "ciba-approve: cannot approve $B1: it is not pending any more "
             . "(approved)\n", 'approve an approved one: says so';
    is $out, '', 'approve an approved one: nothing on stdout';
    ($rc, $out, $err) = cli('--as', $AS, 'deny', $B1);
    is $rc, 4, 'deny an approved one: exit 4';
    is state_of($B1), 'approved', 'deny an approved one: still approved';

    # deny
    ($rc, $out, $err) = cli('--as', $AS, 'deny', $A1);
    is $rc, 0, 'deny ID: exit 0';
    like $out, qr/^denied: \Q$A1\E for alice \($SUB{alice}\): "Refund_30_EUR_order_A1", refund POST \/tools\/refund\n\z/,
        'deny ID: says what it denied';
    is state_of($A1), 'denied', 'deny ID: denied at the AS';
    ($rc, $out, $err) = cli('--as', $AS, 'deny', $A1);
    is $rc, 4, 'deny a denied one: exit 4';
    like $err, qr/it is not pending any more \(denied\)\n\z/,
        'deny a denied one: says so';

    # unknown: 404
    ($rc, $out, $err) = cli('--as', $AS, 'approve', 'no-such-request-id');
    is $rc, 3, 'approve an unknown id: exit 3';
    is $err, "ciba-approve: cannot approve no-such-request-id: no such "
             . "request at the AS\n", 'approve an unknown id: says so';
    ($rc, $out, $err) = cli('--as', $AS, 'deny', 'no-such-request-id');
    is $rc, 3, 'deny an unknown id: exit 3';

    # auth_req_ids are base64url: one may start with "-" (not an option)
    ($rc, $out, $err) = cli('--as', $AS, 'approve', '-no-such-request-id');
    is $rc, 3, 'approve an unknown id starting with "-": exit 3 (not usage)';
    is $err, "ciba-approve: cannot approve -no-such-request-id: no such "
             . "request at the AS\n",
        'approve an unknown id starting with "-": says so';
    ($rc, $out, $err) = cli('--as', $AS, 'show', '--', '-x');
    is $rc, 3, 'show -- -x: an id after --: exit 3';
    ($rc, $out, $err) = cli('--as', $AS, 'deny', '--no-such-request-id');
    is $rc, 3, 'deny an unknown id starting with "--": exit 3 (not usage)';

    # nothing pending
    ($rc, $out, $err) = cli('--as', $AS, 'approve', '--latest');
    is $rc, 3, 'approve --latest, nothing pending: exit 3';
    is $err, "ciba-approve: no pending approvals\n",
        'approve --latest, nothing pending: says so';
    ($rc, $out, $err) = cli('--as', $AS, 'deny', '--latest', '--user', 'bob');
    is $rc, 3, 'deny --latest --user bob, nothing pending: exit 3';
    is $err, "ciba-approve: no pending approvals for bob\n",
        'deny --latest --user bob: says so';

    # an ambiguous prefix ("" begins them all)
    ($rc, $out, $err) = cli('--as', $AS, 'approve', '');
    is $rc, 2, 'an ambiguous prefix: exit 2';
    like $err, qr/is ambiguous: it begins 3 request ids/,
        'an ambiguous prefix: says so';

    # expired: 409
    my $E = backchannel('bob', 'Short_E1', expiry => 1);
    sleep 2.2;
    ($rc, $out, $err) = cli('--as', $AS, 'approve', $E);
    is $rc, 4, 'approve an expired one: exit 4';
    like $err, qr/cannot approve \Q$E\E: it is not pending any more \(expired\)\n\z/,
        'approve an expired one: says so';

    ($rc, $out) = cli('--as', $AS, 'list', '--all');
    like $out, qr/^ID +USER +BINDING MESSAGE +ACTION +METHOD +PATH +STATE$/m,
        'list --all: the header';
    like $out, qr/Short_E1 .* expired$/m, 'list --all: the expired one';
    like $out, qr/Pay 10 EUR to B1 .* approved$/m,
        'list --all: the approved one';
    like $out, qr/Refund_30_EUR_order_A1 .* denied$/m,
        'list --all: the denied one';
}


# ---- watch ------------------------------------------------------------------------

{
    # --auto deny --user carol: bob's request is printed by nobody, carol's
    # is denied
    my ($pid, $out, $err) = cli_bg('--as', $AS, '--json', 'watch',
                                   '--auto', 'deny', '--user', 'carol',
                                   '--interval', '0.2', '--count', '1');
    sleep 0.8;
    my $Bw = backchannel('bob', 'Watch_bob');
    my $Cw = backchannel('carol', 'Watch_carol');
    ok wait_for($pid, 20), 'watch --count 1: ends by itself';
    is $? >> 8, 0, 'watch: exit 0';
    my @ev = map { eval { $JSON->decode($_) } // { raw => $_ } }
             split /\n/, slurp($out);
    is scalar @ev, 2, 'watch --json: two events' or diag explain \@ev;
    is $ev[0]{event}, 'pending', 'watch: the pending event';
    is $ev[0]{request}{auth_req_id}, $Cw, 'watch: carol\'s request';
    is $ev[0]{request}{binding_message}, 'Watch_carol',
        'watch: its binding message';
    is $ev[1]{event}, 'denied', 'watch --auto deny: the denied event';
    is $ev[1]{result}{auth_req_id}, $Cw, 'watch --auto deny: carol\'s';
    is state_of($Cw), 'denied', 'watch --auto deny: denied at the AS';
    is state_of($Bw), 'pending', 'watch --user carol: bob\'s left alone';

    # text output, --auto approve: what is pending already counts too
    ($pid, $out, $err) = cli_bg('--as', $AS, 'watch', '--auto', 'approve',
                                '--interval', '0.2', '--count', '2');
    sleep 0.8;
    my $Aw = backchannel('alice', 'Watch_alice');
    ok wait_for($pid, 20), 'watch --auto approve --count 2: ends';
    is $? >> 8, 0, 'watch --auto approve: exit 0';
    my $o = slurp($out);
    like $o, qr/^\S.* pending: \Q$Bw\E for bob \($SUB{bob}\): "Watch_bob", refund POST \/tools\/refund, expires in [45]:\d\d$/m,
        'watch: prints the one pending already';
    like $o, qr/^\S.* approved: \Q$Bw\E for bob/m, 'watch: approves it';
    like $o, qr/^\S.* pending: \Q$Aw\E for alice/m, 'watch: prints the new one';
    like $o, qr/^\S.* approved: \Q$Aw\E for alice/m, 'watch: approves it';
    like slurp($err), qr/^watching \Q$AS\E for pending approvals \(--auto approve\): Ctrl-C to stop$/m,
        'watch: says what it does on stderr';
    is state_of($Bw), 'approved', 'watch --auto approve: bob\'s approved';
    is state_of($Aw), 'approved', 'watch --auto approve: alice\'s approved';
}


# ---- the admin API refuses what a cross-site web page could send ------------------

{
    my $X = backchannel('alice', 'Csrf_check');
    my $body = $JSON->encode({ auth_req_id => $X });

    my ($st, $out) = as(POST => '/admin/approve', $body,
                        'Content-Type' => 'text/plain');
    is $st, 415, 'admin: text/plain body: 415';
    is $out->{error}, 'unsupported_media_type',
        'admin: text/plain: unsupported_media_type';

    ($st) = as(POST => '/admin/approve', "auth_req_id=$X",
               'Content-Type' => 'application/x-www-form-urlencoded');
    is $st, 415, 'admin: a form post: 415';

    ($st, $out) = as(POST => '/admin/approve', $body,
                     Origin => 'http://evil.example');
    is $st, 403, 'admin: a foreign Origin: 403';
    like $out->{error_description}, qr/cross-origin request refused/,
        'admin: a foreign Origin: says why';

    ($st) = as(POST => '/admin/deny', $body, Origin => 'null');
    is $st, 403, 'admin: Origin null: 403';

    ($st) = as(POST => '/admin/approve', $body,
               'Sec-Fetch-Site' => 'same-site');
    is $st, 403, 'admin: Sec-Fetch-Site same-site (another port): 403';

    is state_of($X), 'pending', 'admin: none of these decided anything';

    # the page's own origin, as the approver page sends it
    (my $origin = $AS) =~ s{/$}{};
    ($st, $out) = as(POST => '/admin/approve', $body, Origin => $origin,
                     'Sec-Fetch-Site' => 'same-origin');
    is $st, 200, 'admin: its own Origin, same-origin: 200';
    is state_of($X), 'approved', 'admin: approved';
}

done_testing;
