# The agent CLI (tools/ciba-agent) against nginx with the module in poll
# mode (t/CibaNginx.pm, 2 workers) and the scriptable mock AS
# (t/fixtures/mock-as, t/MockAS.pm), the CLI run as a child process:
#
# (a) pending, then approved at the mock: exit 0, the upstream's answer on
#     stdout, the binding message and the shortened handle on stderr (never
#     the whole handle), the decision "approved" in the logs, one
#     backchannel request, polls paced (the CLI's retries at least a
#     second apart, the token requests an interval apart);
# (b) denied: exit 3; (c) expired: exit 4; (d) --max-wait: exit 6 on time;
# (e) connection refused and a name that does not resolve: exit 7 with one
#     clear line; (f) bad arguments: exit 2 with the usage line, nothing
#     sent; (g) --json: one JSON object (also for --no-retry and errors);
# (h) the method, target, body and headers are resent identically: every
#     request of a flow has the same action digest, the one computed here
#     independently; a handle sent with another body or method is refused
#     (approval_mismatch, exit 5), with the same bytes (from --data-file)
#     it is approved;
# and: slow_down (the grown interval is respected), a 503
# approval_unavailable retried per Retry-After (and not, with
# --unavailable-retries 0), a non-JSON refusal (exit 5), --quiet, the
# single updating countdown line on a terminal (script(1)) and plain
# lines without one.
#
# Ports: nginx on TEST_NGINX_SERVER_PORT, the mock AS on that port + 1, a
# closed port at + 2 (connection refused).

use strict;
use warnings;

use lib 't';

use Test::More;

use CibaTest qw(digest node_ok);

BEGIN {
    plan skip_all => 'node >= 20 is needed for the mock AS and the CLI'
        unless node_ok();
    plan skip_all => 'not run under valgrind (TEST_NGINX_USE_VALGRIND)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use MockAS;

my $TOP = abs_path(dirname(__FILE__) . '/../..');
my $CLI = "$TOP/tools/ciba-agent";
my $TMP = tempdir(CLEANUP => 1);

my $ng = CibaNginx->new(servroot => ($ENV{TEST_NGINX_SERVROOT}
                                     || 't/servroot') . '-agent',
                        workers => 2);
my $PORT = $ng->port;
my $AS_PORT = $PORT + 1;
my $CLOSED = $PORT + 2;
my $BASE = "http://127.0.0.1:$PORT";


# ---- nginx and the mock AS ---------------------------------------------------

eval { MockAS::start($AS_PORT); 1 } or BAIL_OUT($@);

$ng->write_config(http => <<"_EOC_", server => <<"_EOC_"
    ciba_zone ciba_agent:1m;

    map \$http_approval_handle \$agent_handle {
        ""       no;
        default  yes;
    }

    log_format agent 'agent: \$msec \$request_method \$request_uri '
                     'status=\$status decision=\$ciba_decision '
                     'reason=\$ciba_reason digest=\$ciba_digest '
                     'handle=\$agent_handle user=\$http_x_user '
                     'ct=\$http_content_type tag=\$http_x_tag '
                     'len=\$content_length';
    access_log logs/error.log agent;
_EOC_
        location /backend {
            return 200 "upstream ran \$request_method \$arg_order\\n";
        }
_EOC_
        . MockAS::ciba_location(
            '/tools/refund', $PORT, 'ciba_action refund;',
            'ciba_binding_message "Refund $arg_amount EUR";',
            'ciba_binding_message_chars "A-Za-z0-9-._+/!?# ";',
            'ciba_binding_message_max 40;', 'ciba_max_pending 50;')
        . MockAS::locations($AS_PORT, 'proxy_read_timeout 5s;'));

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);


# ---- helpers -------------------------------------------------------------------

sub as_call { MockAS::call(@_) }

sub as_setup { MockAS::setup(@_) }

sub as_reqs { MockAS::requests(@_) }

sub as_count { MockAS::count(@_) }

# waits until the mock has a pending auth request (and at least $polls
# token requests for it); its auth_req_id, or undef after the timeout
sub wait_pending {
    my (%o) = @_;
    my $deadline = time + ($o{timeout} // 10);
    while (time < $deadline) {
        my @p = @{ as_call(GET => '/_admin/pending')->{pending} };
        if (@p && as_count('/token') >= ($o{polls} // 0)) {
            return $p[-1]{auth_req_id};
        }
        sleep 0.1;
    }
    return undef;
}

# decide at the mock once the CLI's approval is pending
sub decide {
    my ($what, %o) = @_;
    return sub {
        my $id = wait_pending(%o);
        ok(defined $id, "the approval is pending at the AS ($what)")
            or return;
        as_call(POST => "/_admin/$what", { auth_req_id => $id });
    };
}

# Runs the CLI: { code, out, err, elapsed, signal }.  "during" runs while
# the CLI runs; "tty" runs it on a pseudo-terminal (script(1)), with
# stdout and stderr both in "err".
sub cli {
    my (%o) = @_;
    my @args = @{ $o{args} };
    my ($out, $err) = ("$TMP/out", "$TMP/err");
    my $t0 = time;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', $o{stdin} // '/dev/null' or POSIX::_exit(126);
        open STDOUT, '>', $out or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        if ($o{tty}) {
            my $cmd = join ' ', map { "'" . s/'/'\\''/gr . "'" } $CLI, @args;
            $ENV{COLUMNS} = 200;
            exec 'script', '-qfec', $cmd, '/dev/null';
        } else {
            exec $CLI, @args;
        }
        POSIX::_exit(127);
    }

    $o{during}->() if $o{during};

    my $deadline = time + ($o{timeout} // 30);
    my $done;
    while (!($done = waitpid($pid, POSIX::WNOHANG())) || $done < 0) {
        last if $done < 0;
        if (time > $deadline) {
            kill 'TERM', $pid;
            waitpid $pid, 0;
            fail('the CLI did not finish in time: killed');
            last;
        }
        sleep 0.05;
    }
    my $status = $?;

    my %r = (code => $status >> 8, signal => $status & 127,
             elapsed => time - $t0);
    for my $k (qw(out err)) {
        open my $fh, '<', "$TMP/$k" or die "$TMP/$k: $!";
        local $/;
        $r{$k} = <$fh> // '';
    }
    return \%r;
}

sub exits {
    my ($r, $code, $what) = @_;
    is($r->{code}, $code, "$what: exit $code")
        or diag("stdout:\n$r->{out}\nstderr:\n$r->{err}");
}

sub std_digest {
    my (%o) = @_;
    return digest(action => 'refund', method => $o{method} // 'POST',
                  path => '/tools/refund', args => $o{args},
                  body => $o{body});
}

# the access lines of the requests the CLI sent for this order
sub agent_lines {
    my ($off, $order) = @_;
    my @l;
    for (split /^/, $ng->log_since($off)) {
        next unless /agent: (\S+) (\S+) (\S+) status=(\d+) decision=(\S+) reason=(\S+) digest=(\S+) handle=(\S+) user=(\S+) ct=(\S+) tag=(\S+) len=(\S+)/;
        my %l = (time => $1, method => $2, uri => $3, status => $4,
                 decision => $5, reason => $6, digest => $7, handle => $8,
                 user => $9, ct => $10, tag => $11, len => $12);
        push @l, \%l if $l{uri} =~ m{^/tools/refund\?(?:.*&)?order=\Q$order\E(?:&|$)};
    }
    return @l;
}

sub gaps {
    my @t = map { $_->{time} } @_;
    return map { $t[$_] - $t[$_ - 1] } 1 .. $#t;
}

sub refund_url {
    my ($order, $amount) = @_;
    return "$BASE/tools/refund?order=$order&amount=" . ($amount // 30);
}

sub std_args {
    my ($order, $body, @more) = @_;
    return ('-X', 'POST', '-H', 'X-User: alice',
            '-H', 'Content-Type: application/json',
            '-d', $body // '{"amount":30}', @more, refund_url($order));
}

sub no_whole_handle {
    my ($text, $what) = @_;
    unlike($text, qr/h1\.[A-Za-z0-9_-]{9,}/, "$what: no whole handle");
}


# ---- (a) pending, then approved --------------------------------------------

subtest '(a) pending, then approved' => sub {
    as_setup();
    my $off = $ng->log_offset;

    my $r = cli(args => [ std_args(1) ],
                during => decide('approve', polls => 1));

    exits($r, 0, 'approved');
    is($r->{signal}, 0, 'no signal');
    like($r->{out}, qr{\AHTTP/1\.1 200 OK\n}, 'stdout: the status line');
    like($r->{out}, qr{^Content-Type: text/plain$}m, 'stdout: the headers');
    like($r->{out}, qr{\n\nupstream ran POST 1\n\z}, "stdout: the upstream's body");
    unlike($r->{out}, qr/^Date:/m, 'stdout: no Date (a summary)');

    like($r->{err}, qr/^Approval needed: a person must approve this action\.$/m,
         'stderr: approval needed');
    like($r->{err}, qr/^\s+Message\s+Refund 30 EUR$/m,
         'stderr: the binding message');
    like($r->{err}, qr/^\s+Action\s+refund$/m, 'stderr: the action');
    like($r->{err}, qr/^\s+Digest\s+\Q${\ std_digest(args => 'order=1&amount=30', body => '{"amount":30}')}\E$/m,
         'stderr: the action digest');
    like($r->{err}, qr/^\s+Handle\s+h1\.[A-Za-z0-9_-]{5}\x{e2}\x{80}\x{a6}$/m,
         'stderr: the handle, first 8 characters and an ellipsis');
    like($r->{err}, qr/^\s+Expires\s+in 5:00$/m, 'stderr: the expiry');
    like($r->{err}, qr/^ciba-agent: waiting for approval \(the approver was asked\): approval expires in [45]:\d\d, next try in 1 s$/m,
         'stderr (no TTY): plain progress lines');
    unlike($r->{err}, qr/\e|\r/, 'stderr (no TTY): no escape sequences');
    like($r->{err}, qr/^ciba-agent: Approved \x{e2}\x{80}\x{94} 200 OK after \d+s \(\d+ requests\)$/m,
         'stderr: approved');
    no_whole_handle($r->{err} . $r->{out}, 'stdout and stderr');

    is(as_count('/bc-authorize'), 1, 'exactly one backchannel request');
    my @bc = as_reqs('/bc-authorize');
    is($bc[0]{form}{binding_message}, 'Refund 30 EUR',
       'the binding message sent to the AS');
    my @tok = as_reqs('/token');
    cmp_ok(scalar @tok, '>=', 2, 'polled until approved');
    ok(!grep({ $_ < 1000 } map { $tok[$_]{time} - $tok[$_ - 1]{time} }
                               1 .. $#tok),
       'the token requests are at least an interval apart');

    my @l = agent_lines($off, 1);
    cmp_ok(scalar @l, '>=', 3, 'several requests to nginx');
    is($l[0]{handle}, 'no', 'the first request has no handle');
    is_deeply([ map { $_->{handle} } @l[1 .. $#l] ], [ ('yes') x $#l ],
              'the retries carry the handle');
    is_deeply([ map { $_->{decision} } @l ],
              [ ('pending') x $#l, 'approved' ], 'pending, then approved');
    ok(!grep({ $_ < 0.95 } gaps(@l)),
       'the retries are at least a second apart (Retry-After 1)')
        or diag(join ' ', gaps(@l));
    cmp_ok(scalar @l, '<=', $r->{elapsed} + 2, 'no more than one a second');
    is($l[-1]{status}, 200, 'the access log: 200');
    like($ng->log_since($off),
         qr/ciba: decision=approved reason=approved_by_as action="refund" subject="alice" /,
         'the decision line: approved');
};


# ---- (b) denied -------------------------------------------------------------------

subtest '(b) denied: exit 3' => sub {
    as_setup();
    my $off = $ng->log_offset;
    my $r = cli(args => [ std_args(2) ], during => decide('deny'));

    exits($r, 3, 'denied');
    like($r->{err}, qr/^ciba-agent: denied \x{e2}\x{80}\x{94} the approver \(or the authorization server\) refused this action \(access_denied\)$/m,
         'stderr: denied, one line');
    like($r->{out}, qr{\AHTTP/1\.1 403 Forbidden\n}, 'stdout: 403');
    like($r->{out}, qr/"error":"approval_denied"/, 'stdout: the answer');
    like($ng->log_since($off), qr/ciba: decision=denied reason=access_denied /,
         'the decision line: denied');
    is((agent_lines($off, 2))[-1]{status}, 403, 'the access log: 403');
};


# ---- (c) expired ----------------------------------------------------------------

subtest '(c) expired: exit 4' => sub {
    as_setup();
    my $off = $ng->log_offset;
    my $r = cli(args => [ std_args(3) ], during => decide('expire'));

    exits($r, 4, 'expired');
    like($r->{err}, qr/^ciba-agent: expired \x{e2}\x{80}\x{94} nobody approved in time \(expired_token\)$/m,
         'stderr: expired');
    like($r->{out}, qr/"error":"approval_expired"/, 'stdout: the answer');
    like($ng->log_since($off), qr/ciba: decision=expired reason=expired_token /,
         'the decision line: expired');
};


# ---- (d) --max-wait ---------------------------------------------------------------

subtest '(d) --max-wait: exit 6 on time' => sub {
    as_setup();
    my $off = $ng->log_offset;
    my $r = cli(args => [ '--max-wait', '3', std_args(4) ]);

    exits($r, 6, 'max-wait');
    cmp_ok($r->{elapsed}, '>=', 2.9, 'waited 3 s');
    cmp_ok($r->{elapsed}, '<', 6, 'gave up soon after');
    like($r->{err}, qr/^ciba-agent: gave up after --max-wait 3 s: the approval is still pending; continue with --handle \(the whole handle is in the --json output; it starts h1\.[A-Za-z0-9_-]{5}\x{e2}\x{80}\x{a6}\)$/m,
         'stderr: gave up, how to continue');
    like($r->{out}, qr{\AHTTP/1\.1 401 Unauthorized\n}, 'stdout: the last answer');
    like($r->{out}, qr/"approval_handle":"h1\.[A-Za-z0-9_-]{5}\x{e2}\x{80}\x{a6}"/,
         'stdout: the handle shortened in the body');
    no_whole_handle($r->{err} . $r->{out}, 'stdout and stderr');
    my @l = agent_lines($off, 4);
    ok(@l >= 2 && @l <= 5, 'a few requests in 3 s') or diag(scalar @l);
    is(as_count('/bc-authorize'), 1, 'one backchannel request');
};


# ---- (e) no connection ----------------------------------------------------------

subtest '(e) connection refused, unknown name: exit 7' => sub {
    my $probe = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $CLOSED, Proto => 'tcp');
    BAIL_OUT("port $CLOSED is in use") if $probe;

    my $r = cli(args => [ "http://127.0.0.1:$CLOSED/tools/refund" ]);
    exits($r, 7, 'connection refused');
    is($r->{err}, "ciba-agent: GET http://127.0.0.1:$CLOSED/tools/refund\n"
                  . "ciba-agent: cannot connect to 127.0.0.1:$CLOSED: "
                  . "connection refused\n", 'stderr: one clear line');
    is($r->{out}, '', 'stdout: nothing');

    $r = cli(args => [ '-q', "http://127.0.0.1:$CLOSED/x" ]);
    exits($r, 7, 'connection refused, --quiet');
    is($r->{err}, "ciba-agent: cannot connect to 127.0.0.1:$CLOSED: "
                  . "connection refused\n", '--quiet: the error only');

    $r = cli(args => [ '-q', 'http://no-such-host.invalid/tools/refund' ]);
    exits($r, 7, 'unknown name');
    like($r->{err}, qr/\Aciba-agent: cannot resolve no-such-host\.invalid: (?:no such host|the name lookup failed \(temporary DNS failure\))\n\z/,
         'stderr: cannot resolve');
};


# ---- (f) bad arguments ------------------------------------------------------------

subtest '(f) bad arguments: exit 2 with the usage line' => sub {
    my $off = $ng->log_offset;
    my $usage = qr/\nUsage: ciba-agent \[options\] URL   \(ciba-agent --help for more\)\n\z/;
    my $url = refund_url(6);

    for my $c (
        [ [], 'no URL given' ],
        [ [ $url, $url ], 'one URL only (got 2: ' ],
        [ [ '--frobnicate', $url ], 'unknown option "--frobnicate"' ],
        [ [ 'ftp://127.0.0.1/x' ], 'bad URL "ftp://127.0.0.1/x": only http and https are supported' ],
        [ [ 'not a url' ], 'bad URL "not a url": expected http://host[:port]/path or https://...' ],
        [ [ "$BASE/a b" ], "bad URL \"$BASE/a b\": spaces and control characters must be percent-encoded" ],
        [ [ '-H', 'NoColon', $url ], q{bad header "NoColon": write it as 'Name: value'} ],
        [ [ '-H', 'Approval-Handle: h1.x', $url ], 'send Approval-Handle with --token or --handle, not with -H' ],
        [ [ '-X', 'GE T', $url ], '"GE T" is not an HTTP method' ],
        [ [ '-d', 'x', '--data-file', '/dev/null', $url ], '-d and --data-file: give one body' ],
        [ [ '-d', '@/nonexistent/body', $url ], 'cannot read the body file "/nonexistent/body": no such file' ],
        [ [ '--max-wait', 'soon', $url ], '--max-wait needs a number of seconds, not "soon"' ],
        [ [ '--max-wait', '0', $url ], '--max-wait must be >= 1, not 0' ],
        [ [ '--timeout', '-1', $url ], '--timeout needs a number of seconds, not "-1"' ],
        [ [ $url, '-X' ], 'option -X needs a value' ],
        [ [ '--no-retry=1', $url ], 'option --no-retry takes no value' ],
        [ [ '--json', '--json', $url ], 'option --json given twice' ],
    ) {
        my ($args, $msg) = @$c;
        my $r = cli(args => $args);
        my $what = "@$args" || '(none)';
        exits($r, 2, $what);
        like($r->{err}, qr/\Aciba-agent: \Q$msg\E.*$usage/s,
             "$what: the message and the usage line");
        if (grep { $_ eq '--json' } @$args) {
            like($r->{out}, qr/\A\{"result":"usage_error","exit_code":2,/,
                 "$what: the error as JSON on stdout");
        } else {
            is($r->{out}, '', "$what: stdout empty");
        }
    }

    my $r = cli(args => [ '--json', '-X' ]);
    exits($r, 2, '--json, a usage error');
    my $j = eval { JSON::PP::decode_json($r->{out}) } || {};
    is_deeply($j, { result => 'usage_error', exit_code => 2,
                    message => 'option -X needs a value' },
              '--json: the usage error as JSON');

    $r = cli(args => [ '--help' ]);
    exits($r, 0, '--help');
    like($r->{out}, qr/^Usage: ciba-agent \[options\] URL$/m, '--help: usage');
    for my $code (0, 2 .. 7) {
        like($r->{out}, qr/^  $code  \S/m, "--help documents exit code $code");
    }

    is(agent_lines($off, 6), 0, 'nothing was sent');
};


# ---- (g) --json ------------------------------------------------------------------

subtest '(g) --json: one JSON object' => sub {
    as_setup();
    my $r = cli(args => [ '--json', std_args(7) ],
                during => decide('approve'));
    exits($r, 0, '--json approved');
    my $j = eval { JSON::PP::decode_json($r->{out}) };
    ok($j, 'stdout is one JSON object') or diag($r->{out});
    $j ||= {};
    is($j->{result}, 'ok', 'result ok');
    is($j->{exit_code}, 0, 'exit_code 0');
    is($j->{status}, 200, 'status 200');
    is($j->{body}, "upstream ran POST 7\n", 'the body');
    is($j->{headers}{'content-type'}, 'text/plain', 'the headers');
    cmp_ok($j->{requests}, '>=', 2, 'requests');
    like($j->{elapsed_ms}, qr/^\d+$/, 'elapsed_ms');
    is($j->{approval}{binding_message}, 'Refund 30 EUR',
       'approval: the binding message');
    is($j->{approval}{action}, 'refund', 'approval: the action');
    like($j->{approval}{handle} // '', qr/^h1\.[A-Za-z0-9_-]{100,}$/,
         'approval: the whole handle');
    like($r->{err}, qr/Approval needed/, 'progress still on stderr');
    no_whole_handle($r->{err}, 'stderr');

    # --no-retry: one request, the pending answer
    as_setup();
    $r = cli(args => [ '--json', '--no-retry', '-q', std_args(8) ]);
    exits($r, 6, '--json --no-retry, pending');
    $j = eval { JSON::PP::decode_json($r->{out}) } || {};
    is($j->{result}, 'pending', 'result pending');
    is($j->{status}, 401, 'status 401');
    is($j->{error}, 'approval_pending', 'error approval_pending');
    is($j->{reason}, 'asked', 'reason asked');
    is($j->{requests}, 1, 'one request');
    is($j->{approval}{handle}, $j->{json}{approval_handle},
       'approval: the handle of the answer');
    like($r->{err}, qr/\Aciba-agent: the approval is pending \(--no-retry\); continue with --handle/,
         '-q: only the final line on stderr');

    $r = cli(args => [ '--json', "http://127.0.0.1:$CLOSED/" ]);
    exits($r, 7, '--json, connection refused');
    $j = eval { JSON::PP::decode_json($r->{out}) } || {};
    is($j->{result}, 'connection_error', 'result connection_error');
    is($j->{status}, undef, 'no status');
    is($j->{message}, "cannot connect to 127.0.0.1:$CLOSED: connection refused",
       'the message');
};


# ---- (h) the same request, resent identically ---------------------------------

subtest '(h) the same method, target, body and headers on every retry' => sub {
    as_setup();
    my $off = $ng->log_offset;
    # bytes that a careless client would change: CR LF, NUL, UTF-8, no
    # final newline
    my $body = qq({"amount":30,\r\n"note":"caf\x{c3}\x{a9}\x00"}\t);
    my $bfile = "$TMP/body.bin";
    open my $fh, '>:raw', $bfile or die $!;
    print $fh $body;
    close $fh;
    my $args = 'order=9&amount=30';
    my $want = std_digest(args => $args, body => $body);

    my $r = cli(args => [ '--json', '--no-retry', '-q',
                          std_args(9, "\@$bfile", '-H', 'X-Tag: t9') ]);
    exits($r, 6, 'pending');
    my $j = eval { JSON::PP::decode_json($r->{out}) } || {};
    my $h = $j->{approval}{handle} // '';
    is($j->{json}{action_digest}, $want,
       'the digest of the exact bytes (computed here)');

    # the handle with another body or method: refused
    $r = cli(args => [ '--handle', $h, std_args(9, '{"amount":3000}') ]);
    exits($r, 5, 'the handle with another body');
    like($r->{err}, qr/^ciba-agent: refused with 403 Forbidden: approval_mismatch: .* \(reason handle_mismatch\)$/m,
         'stderr: approval_mismatch');
    $r = cli(args => [ '--handle', $h, '-X', 'PUT', '-H', 'X-User: alice',
                       '--data-file', $bfile, refund_url(9) ]);
    exits($r, 5, 'the handle with another method');
    like($r->{err}, qr/reason handle_mismatch/, 'stderr: handle_mismatch');

    # the same bytes (--data-file): pending on, then approved
    $r = cli(args => [ '--handle', $h, '-X', 'POST', '-H', 'X-User: alice',
                       '-H', 'Content-Type: application/json',
                       '-H', 'X-Tag: t9', '--data-file', $bfile,
                       refund_url(9) ],
             during => decide('approve', polls => 1));
    exits($r, 0, 'the same bytes, approved');
    like($r->{out}, qr/\n\nupstream ran POST 9\n\z/, "the upstream's answer");
    is(as_count('/bc-authorize'), 1, 'one backchannel request in all');
    like((as_reqs('/bc-authorize'))[0]{form}{authorization_details} // '',
         qr/"identifier":"\Q$want\E"/, 'the AS was asked for this digest');

    my @l = agent_lines($off, 9);
    my @same = grep { $_->{digest} eq $want } @l;
    is(scalar @l, scalar(@same) + 2, 'all but the two mismatches have the digest');
    my @flow = grep { $_->{reason} ne 'handle_mismatch' } @l;
    is_deeply([ map { "$_->{method} $_->{uri} $_->{user} $_->{ct} $_->{tag} $_->{len}" } @flow ],
              [ ("POST /tools/refund?order=9&amount=30 alice application/json t9 "
                 . length $body) x @flow ],
              'every request: the same method, target, headers and length');
    is($flow[-1]{decision}, 'approved', 'the last one approved');
};


# ---- slow_down ---------------------------------------------------------------------

subtest 'slow_down: the grown interval is kept' => sub {
    as_setup(script => { '/token' => [
        { status => 400, json => { error => 'slow_down' } } ] });
    my $off = $ng->log_offset;
    my $r = cli(args => [ std_args(10) ], timeout => 40, during => sub {
        my $deadline = time + 10;
        sleep 0.1 while as_count('/token') < 1 && time < $deadline;
        # approve once the slowed poll is the next one
        decide('approve')->();
    });
    exits($r, 0, 'approved after slow_down');
    like($r->{err}, qr/^ciba-agent: the authorization server asked to slow down; checking every 6 s now$/m,
         'stderr: slowed down');
    my @l = agent_lines($off, 10);
    my ($i) = grep { $l[$_]{reason} eq 'slow_down' } 0 .. $#l;
    ok(defined $i && $i < $#l, 'a slow_down answer, then more');
    cmp_ok($l[$i + 1]{time} - $l[$i]{time}, '>=', 5.95,
           'the next request 6 s after the slow_down (Retry-After 6)')
        if defined $i && $i < $#l;
    is($l[-1]{decision}, 'approved', 'then approved');
};


# ---- approval_unavailable and other refusals ---------------------------------

subtest '503 approval_unavailable: retried per Retry-After, bounded' => sub {
    as_setup(script => { '/bc-authorize' => [ { status => 500, body => 'x' } ] });
    my $r = cli(args => [ '--unavailable-retries', '0', std_args(11) ]);
    exits($r, 5, 'no retries');
    like($r->{err}, qr/^ciba-agent: refused with 503 Service Temporarily Unavailable: approval_unavailable: .* \(reason as_server_error\)$/m,
         'stderr: unavailable');

    as_setup(script => { '/bc-authorize' => [ { status => 500, body => 'x' } ] });
    my $off = $ng->log_offset;
    $r = cli(args => [ std_args(12) ], during => decide('approve'));
    exits($r, 0, 'retried, then approved');
    like($r->{err}, qr/^ciba-agent: approval service unavailable \(as_server_error\); trying again in 5 s \(1\/3\)$/m,
         'stderr: trying again');
    my @l = agent_lines($off, 12);
    is($l[0]{status}, 503, 'the first answer: 503');
    cmp_ok($l[1]{time} - $l[0]{time}, '>=', 4.95, 'retried after Retry-After 5');
};

subtest 'a refusal that is not JSON: exit 5' => sub {
    my $r = cli(args => [ "$BASE/nowhere" ]);
    exits($r, 5, '404');
    like($r->{err}, qr{^ciba-agent: refused with 404 Not Found \(not an approval answer: text/html\)$}m,
         'stderr: one clear line');
    like($r->{out}, qr{\AHTTP/1\.1 404 Not Found\n}, 'stdout: the answer');

    $r = cli(args => [ '-q', '--token', 'not.a.jwt', std_args(13) ]);
    exits($r, 5, 'a token where none is accepted');
    like($r->{err}, qr/\Aciba-agent: refused with 401 Unauthorized: invalid_approval: .*\(reason tokens_not_accepted\)\n\z/,
         'stderr: invalid_approval, nothing else with -q');
    unlike($r->{err} . $r->{out}, qr/not\.a\.jwt/, 'the token is never printed');
};


# ---- a terminal ------------------------------------------------------------------

subtest 'on a terminal: one updating countdown line' => sub {
    plan skip_all => 'script(1) is missing'
        unless system('script -V > /dev/null 2>&1') == 0;
    as_setup();
    my $r = cli(args => [ std_args(14) ], tty => 1,
                during => decide('approve', polls => 1));
    my $all = $r->{out} . $r->{err};
    like($all, qr/\r\e\[2K\e\[36m\S+ Waiting for approval \x{c2}\x{b7} expires in [45]:\d\d \x{c2}\x{b7} next check in 1s\e\[0m/,
         'the countdown line is redrawn in place');
    unlike($all, qr/^ciba-agent: waiting for approval \(/m,
           'no plain progress lines');
    like($all, qr/\x{e2}\x{9c}\x{94} Approved \x{e2}\x{80}\x{94} 200 OK/,
         'approved');
    like($all, qr/upstream ran POST 14/, "the upstream's answer");
    no_whole_handle($all, 'the terminal');
};


is($ng->crash_reports, '', 'no worker crashed');

done_testing();
