# The authorization server fails in the middle of CIBA flows: killed
# (SIGKILL: connections refused or cut), paused (SIGSTOP: the kernel still
# accepts connections, nothing answers) and restarted (a new mock AS on
# the same port, which forgets every auth_req_id), with nginx run by
# t/CibaNginx.pm (two workers) and the mock AS (t/fixtures/mock-as) as a
# process of its own.
#
# What must hold (DESIGN.md section 3, README "Answers"):
#
# - an AS that does not answer is 503 approval_unavailable with
#   Retry-After (reason as_server_error: nginx's own 502 or 504), JSON,
#   never 2xx, never a hang: each request ends within the configured
#   proxy timeouts (connect 2 s, read 3 s here) plus a margin; a request
#   that can be answered from the zone (a poll not due, another request
#   asking for the same action) is answered at once meanwhile;
# - nothing is lost: a pending approval outlives an AS outage, and once
#   the AS is back a retry with the same handle continues the same
#   approval (no new backchannel request), which then passes once;
#   a backchannel request that failed leaves no placeholder behind;
# - a restarted AS forgets its auth_req_ids and answers invalid_grant: the
#   module answers 403 approval_replayed (reason invalid_grant), remembers
#   it, and a bare request asks the human again.  That is the right
#   answer: the approval cannot be continued (the AS may have redeemed
#   the id; RFC 6749 gives one error for "unknown" and "redeemed"), it
#   fails closed, and the agent's documented next step (a request without
#   the handle) starts a new approval;
# - an approval whose token request timed out while the AS was paused,
#   and which the AS then answered into the closed connection, is
#   redeemed at the AS: the next poll gets invalid_grant and the request
#   is refused the same way, never admitted twice;
# - wait mode (ciba_wait): a held request ends with 503 when a poll fails,
#   within the wait plus the read timeout;
# - no worker crashes, no [alert], [crit] or [emerg], the same workers
#   throughout.
#
# nginx on TEST_NGINX_SERVER_PORT, the mock AS on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use CibaLoad qw(kind summary decision_lines mock_kill mock_signal as
                as_reqs as_count plan_skip wait_until timed health_ok
                stop_ok);
use MockAS ();

plan_skip('timing-based (AS paused, timeouts)');

my $CONNECT = 2;        # proxy_connect_timeout to the AS, seconds
my $READ = 3;           # proxy_read_timeout and proxy_send_timeout
my $WAIT = 8;           # ciba_wait
my $MARGIN = 2;         # allowed beyond a timeout (a loaded machine)
my $QUICK = 1 + $MARGIN;  # an answer that needs no timeout

my $T0 = time;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $mport = $port + 1;
my $state = warm_state();
my $logs = $ng->servroot . '/logs';
my $BODY = '{"amount":10}';
my @USERS = map { ("a$_", "b$_", "c$_", "d$_", "e$_", "f$_", "g$_") } 1 .. 30;

my $mock_starts = 0;

sub mock_up {
    CibaLoad::mock_up($ng, log => "$logs/mock-as-" . ++$mock_starts . '.log',
                      users => \@USERS);
}

mock_up();

$ng->write_config(
    http   => "    ciba_zone faults:1m state=$state;\n",
    server => "        ciba_action refund;\n\n"
              . MockAS::ciba_location('= /ciba/refund', $port,
                                      'ciba_max_pending 40;')
              . MockAS::ciba_location('= /wait/refund', $port,
                                      'ciba_max_pending 40;',
                                      "ciba_wait ${WAIT}s;")
              . MockAS::locations($mport,
                                  "proxy_connect_timeout ${CONNECT}s;",
                                  "proxy_send_timeout ${READ}s;",
                                  "proxy_read_timeout ${READ}s;")
              . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran \$arg_order\\n";
        }
_EOC_

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);
my @workers = $ng->worker_pids;


# ---- helpers -----------------------------------------------------------------

# a request description for timed(): the user is the order
sub rq {
    my ($order, %o) = @_;
    return { method => 'POST',
             uri => '/' . ($o{loc} // 'ciba') . "/refund?order=$order",
             headers => [ 'X-User' => $order,
                          $o{handle} ? ('Approval-Handle' => $o{handle}) : () ],
             body => $BODY, at => $o{at} // 0 };
}

sub req {
    my ($order, %o) = @_;
    my ($r) = timed($ng, [ rq($order, %o) ], timeout => 60);
    return $r;
}

my @times;      # [ what, seconds ] of the requests that met a fault

# 503 approval_unavailable, as DESIGN.md section 3 says, within $max s
sub unavailable_ok {
    my ($r, $reason, $name, $max) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{kind}, "503 approval_unavailable $reason",
       "$name: 503 approval_unavailable, $reason")
        or diag "$r->{kind} $r->{body}";
    is($r->{headers}{'retry-after'}, 5, "$name: Retry-After 5");
    is($r->{headers}{'content-type'}, 'application/json', "$name: JSON");
    is($r->{headers}{'cache-control'}, 'no-store', "$name: no-store");
    ok(!exists $r->{headers}{'www-authenticate'},
       "$name: no WWW-Authenticate");
    ok(defined $r->{elapsed} && $r->{elapsed} <= $max,
       sprintf '%s: answered within %.0f s', $name, $max)
        or diag sprintf 'after %.2f s', $r->{elapsed} // -1;
    push @times, [ $name, $r->{elapsed} ];
}

sub pending_ok {
    my ($r, $reason, $name, $handle) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{kind}, "401 approval_pending $reason",
       "$name: 401 approval_pending, $reason")
        or diag "$r->{kind} $r->{body}";
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         "$name: Retry-After");
    is($r->{json}{approval_handle}, $handle, "$name: the handle")
        if defined $handle;
}

sub upstream_ok {
    my ($r, $order, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{status}, 200, "$name: 200") or diag "$r->{kind} $r->{body}";
    is($r->{body}, "upstream ran $order\n", "$name: the upstream's answer");
}

# the requests the (current) mock got for a user, and the token requests
# for an auth_req_id
sub bc_for {
    my ($user) = @_;
    return grep { ($_->{form}{login_hint} // '') eq $user }
           as_reqs('/bc-authorize');
}

sub tokens_for {
    my ($id) = @_;
    return grep { ($_->{form}{auth_req_id} // '') eq $id } as_reqs('/token');
}

# the poll is due from nginx's second of $t plus the interval plus one
sub wait_due {
    my ($t) = @_;
    my $due = int($t) + 2.1;
    sleep($due - time) if time < $due;
}

# retries with the handle until the answer is not "not yet"
sub retry_until_decided {
    my ($order, $handle, $timeout) = @_;
    my $r;
    wait_until(sub {
        $r = req($order, handle => $handle);
        $r->{kind} !~ /^401 approval_pending (?:not_yet|authorization_pending)$/;
    }, $timeout // 10);
    return $r;
}

# asks: (handle, auth_req_id, time)
sub ask {
    my ($order, $name) = @_;
    my $r = req($order);
    pending_ok($r, 'asked', $name);
    my @bc = bc_for($order);
    return ($r->{json}{approval_handle}, @bc ? $bc[-1]{answer}{auth_req_id}
                                             : undef, time);
}

sub log_like {
    my ($off, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    like($ng->log_since($off), $re, $name);
}


# ---- killed: new approvals -----------------------------------------------------

subtest 'the AS is down: new approvals' => sub {
    mock_kill();
    my $off = $ng->log_offset;

    my $r = req('a1');
    unavailable_ok($r, 'as_server_error', 'AS down, a bare request', $QUICK);
    log_like($off, qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream.* subrequest: "\/_as\/bc"/,
             'nginx: connection refused');
    log_like($off, qr/\[error\].*ciba: the authorization server gave no usable answer to the backchannel request \(status 502/,
             'the module: no usable answer (502)');
    log_like($off, qr/ciba: decision=unavailable reason=as_server_error action="refund" subject="a1" /,
             'the decision line');

    my @res = timed($ng, [ map { rq("a$_") } 2 .. 21 ]);
    is(summary(map { [ $_->{status}, $_->{headers}, $_->{body} ] } @res),
       '503 approval_unavailable as_server_error: 20',
       '20 concurrent bare requests: all 503');
    my ($max) = sort { $b <=> $a } map { $_->{elapsed} // 99 } @res;
    ok($max <= $QUICK, sprintf '... the slowest within %d s (%.2f s)',
                               $QUICK, $max);
    push @times, [ '20 concurrent, AS down (slowest)', $max ];

    $r = req('a1');
    unavailable_ok($r, 'as_server_error',
                   'the same request again: asks again, no placeholder left',
                   $QUICK);

    mock_up();
    my ($h, $id) = ask('a1', 'the AS is back: asked');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    upstream_ok(retry_until_decided('a1', $h), 'a1',
                'approved: the handle passes');
    is(scalar(bc_for('a1')), 1, 'one backchannel request at the new AS');
};


# ---- killed during a pending approval, restarted --------------------------------

subtest 'the AS is killed during a pending approval, then restarted' => sub {
    my ($h, $id, $t) = ask('b1', 'first request');
    mock_kill();
    wait_due($t);
    my $off = $ng->log_offset;

    my $r = req('b1', handle => $h);
    unavailable_ok($r, 'as_server_error', 'AS down, a retry with the handle',
                   $QUICK);
    log_like($off, qr/ciba: the authorization server gave no usable answer to the token request \(status 502/,
             'the module: no usable answer to the token request');

    $r = req('b1', handle => $h);
    pending_ok($r, 'not_yet', 'a retry at once: the failed poll took its turn',
               $h);
    $r = req('b1');
    pending_ok($r, 'not_yet', 'a bare retry: the approval is still there', $h);
    ok($r->{elapsed} <= $QUICK, 'answered from the zone, at once');

    # the restarted AS knows nothing of the auth_req_id
    mock_up();
    wait_due(time);
    $off = $ng->log_offset;
    $r = req('b1', handle => $h);
    is($r->{kind}, '403 approval_replayed invalid_grant',
       'the restarted AS says invalid_grant: 403 approval_replayed');
    ok(!exists $r->{headers}{'www-authenticate'}, '403: no WWW-Authenticate');
    is(scalar(tokens_for($id)), 1, 'one token request at the new AS');
    is((tokens_for($id))[0]{answer}{error}, 'invalid_grant',
       '... answered invalid_grant');
    log_like($off, qr/ciba: decision=replayed reason=invalid_grant action="refund" subject="b1" /,
             'the decision line: replayed, invalid_grant');

    $r = req('b1', handle => $h);
    is($r->{kind}, '403 approval_replayed auth_req_id_replayed',
       'the handle again: remembered, refused');
    is(scalar(tokens_for($id)), 1, '... without asking the AS');

    my ($h2, $id2) = ask('b1', 'a bare request asks the human again');
    isnt($h2, $h, 'a new handle');
    isnt($id2, $id, 'a new auth_req_id');
    as(POST => '/_admin/approve', { auth_req_id => $id2 });
    upstream_ok(retry_until_decided('b1', $h2), 'b1',
                'the new approval passes');
    is(req('b1', handle => $h2)->{kind},
       '403 approval_replayed auth_req_id_replayed', 'once');
};


# ---- paused during a pending approval ---------------------------------------------

subtest 'the AS is paused during a pending approval' => sub {
    my ($h, $id, $t) = ask('c1', 'first request');
    mock_signal('STOP');
    wait_due($t);
    my $off = $ng->log_offset;

    # the retries come while the first one's token request is in flight,
    # the second and third more than an interval (1 s) after it began:
    # none of them starts a second token request
    my @r = timed($ng, [ rq('c1', handle => $h),
                         rq('c1', handle => $h, at => 1.3),
                         rq('c1', at => 1.8) ], timeout => 30);
    unavailable_ok($r[0], 'as_server_error',
                   'AS paused, a retry with the handle', $READ + $MARGIN);
    ok($r[0]{elapsed} >= $READ - 0.5,
       sprintf 'it waited for the read timeout (%.2f s)', $r[0]{elapsed});
    pending_ok($r[1], 'not_yet', 'meanwhile, a retry with the handle', $h);
    ok($r[1]{elapsed} <= $QUICK, '... answered at once');
    pending_ok($r[2], 'not_yet', 'meanwhile, a bare retry', $h);
    ok($r[2]{elapsed} <= $QUICK, '... answered at once');
    log_like($off, qr/upstream timed out \(110: Connection timed out\) while reading response header from upstream.* subrequest: "\/_as\/token"/,
             'nginx: read timeout');
    log_like($off, qr/ciba: the authorization server gave no usable answer to the token request \(status 504/,
             'the module: no usable answer (504)');

    my $failed = time;
    mock_signal('CONT');
    wait_until(sub { eval { as(GET => '/_admin/config'); 1 } }, 10);

    sleep 0.5;
    ok(scalar(tokens_for($id)) <= 1,
       'at most the one token request reached the paused AS');

    # the next poll is due an interval after the failed one ended
    my $r = req('c1', handle => $h);
    pending_ok($r, 'not_yet', 'the AS is back, at once: not yet', $h)
        if time < $failed + 0.6;
    wait_due($failed);
    $r = req('c1', handle => $h);
    pending_ok($r, 'authorization_pending',
               'the AS is back: the same handle polls it', $h);
    is((tokens_for($id))[-1]{answer}{error}, 'authorization_pending',
       '... for the same auth_req_id');
    is(scalar(bc_for('c1')), 1, 'still one backchannel request');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    $r = retry_until_decided('c1', $h);
    upstream_ok($r, 'c1', 'approved: the same handle passes');
    my @tok = tokens_for($id);
    is(scalar(grep { ($_->{status} // 0) == 200 } @tok), 1,
       'the AS issued tokens once');
    note 'token requests for c1: '
         . join ', ', map { $_->{status} // 'no answer' } @tok;
};


subtest 'approved, the AS pauses during the token request' => sub {
    # the token request times out at nginx; when the AS runs again it
    # answers that request into the closed connection (the tokens are
    # issued, the auth_req_id redeemed), unless it sees the connection
    # closed first
    my ($h, $id, $t) = ask('d1', 'first request');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    mock_signal('STOP');
    wait_due($t);

    my $r = req('d1', handle => $h);
    unavailable_ok($r, 'as_server_error', 'AS paused, a retry with the handle',
                   $READ + $MARGIN);

    mock_signal('CONT');
    wait_until(sub { eval { as(GET => '/_admin/config'); 1 } }, 10);
    sleep 0.5;
    my @tok = tokens_for($id);
    my $redeemed = grep { ($_->{status} // 0) == 200 } @tok;
    note 'the AS ' . ($redeemed ? 'answered' : 'dropped')
         . ' the timed-out token request';

    wait_due(time);
    $r = retry_until_decided('d1', $h);
    if ($redeemed) {
        is($r->{kind}, '403 approval_replayed invalid_grant',
           'the AS redeemed it for nobody: 403 approval_replayed');
        my ($h2, $id2) = ask('d1', 'a bare request asks the human again');
        as(POST => '/_admin/approve', { auth_req_id => $id2 });
        upstream_ok(retry_until_decided('d1', $h2), 'd1',
                    'the new approval passes');
    } else {
        upstream_ok($r, 'd1', 'the same handle passes');
    }
    @tok = tokens_for($id);
    is(scalar(grep { ($_->{status} // 0) == 200 } @tok), 1,
       'the AS issued tokens for the first approval once');
};


# ---- paused during new approvals ------------------------------------------------------

subtest 'the AS is paused during new approvals' => sub {
    mock_signal('STOP');
    my $off = $ng->log_offset;

    my @r = timed($ng, [ rq('e1'), rq('e1', at => 0.5), rq('e2', at => 0.2) ],
                  timeout => 30);
    unavailable_ok($r[0], 'as_server_error', 'AS paused, a bare request',
                   $READ + $MARGIN);
    ok($r[0]{elapsed} >= $READ - 0.5,
       sprintf 'it waited for the read timeout (%.2f s)', $r[0]{elapsed});
    pending_ok($r[1], 'requesting',
               'meanwhile the same request: the AS is being asked');
    is($r[1]{headers}{'retry-after'}, 1, '... Retry-After 1');
    ok($r[1]{elapsed} <= $QUICK, '... answered at once');
    unavailable_ok($r[2], 'as_server_error', 'another subject meanwhile',
                   $READ + $MARGIN);
    log_like($off, qr/upstream timed out \(110: Connection timed out\) while reading response header from upstream.* subrequest: "\/_as\/bc"/,
             'nginx: read timeout');

    mock_signal('CONT');
    wait_until(sub { eval { as(GET => '/_admin/config'); 1 } }, 10);
    my $stale = bc_for('e1');
    note "the AS processed $stale timed-out backchannel request(s) for e1 "
         . 'after it ran again (an approval nginx never continues)';

    my ($h, $id) = ask('e1', 'the AS is back: the placeholder is gone, asked');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    upstream_ok(retry_until_decided('e1', $h), 'e1', 'approved, it passes');
    my %polled = map { ($_->{form}{auth_req_id} => 1) } as_reqs('/token');
    my @never = grep { $_ ne $id } map { $_->{answer}{auth_req_id} // () }
                bc_for('e1');
    is(scalar(grep { $polled{$_} } @never), 0,
       'the stale approvals were never polled');
};


# ---- wait mode -----------------------------------------------------------------------

subtest 'wait mode: the AS pauses while a request is held' => sub {
    my @r = timed($ng, [ rq('f1', loc => 'wait') ],
                  actions => [ [ 1, sub { mock_signal('STOP') } ] ],
                  timeout => 40);
    unavailable_ok($r[0], 'as_server_error',
                   'held, then the AS paused: the poll failed',
                   $WAIT + $READ + $MARGIN);
    ok($r[0]{elapsed} >= $READ, sprintf 'after the read timeout (%.2f s)',
                                        $r[0]{elapsed});

    mock_signal('CONT');
    wait_until(sub { eval { as(GET => '/_admin/config'); 1 } }, 10);
    my @bc = bc_for('f1');
    is(scalar @bc, 1, 'one backchannel request');
    my $id = $bc[0]{answer}{auth_req_id};

    @r = timed($ng, [ rq('f1', loc => 'wait') ],
               actions => [ [ 1, sub {
                   as(POST => '/_admin/approve', { auth_req_id => $id }) } ] ],
               timeout => 40);
    upstream_ok($r[0], 'f1', 'the same request, held again: approved, passes');
    ok($r[0]{elapsed} <= $WAIT, sprintf 'within the wait (%.2f s)',
                                        $r[0]{elapsed});
    is(scalar(bc_for('f1')), 1, 'the same approval was continued');

    mock_kill();
    @r = timed($ng, [ rq('f2', loc => 'wait') ], timeout => 40);
    unavailable_ok($r[0], 'as_server_error', 'wait mode, AS down', $QUICK);
    mock_up();
};


# ---- killed in the middle of an answer -------------------------------------------------

subtest 'the AS is killed while it answers' => sub {
    as(POST => '/_admin/script', { endpoint => '/bc-authorize',
                                   responses => [ { delay_ms => 2000 } ] });
    my $off = $ng->log_offset;
    my @r = timed($ng, [ rq('g1') ],
                  actions => [ [ 0.5, sub { mock_kill() } ] ]);
    unavailable_ok($r[0], 'as_server_error',
                   'killed during the backchannel request', 0.5 + $QUICK);
    log_like($off, qr/upstream prematurely closed connection while reading response header from upstream.* subrequest: "\/_as\/bc"/,
             'nginx: the connection was closed');

    mock_up();
    my ($h, $id, $t) = ask('g1', 'the same request asks again');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    as(POST => '/_admin/script', { endpoint => '/token',
                                   responses => [ { delay_ms => 2000 } ] });
    wait_due($t);
    @r = timed($ng, [ rq('g1', handle => $h) ],
               actions => [ [ 0.5, sub { mock_kill() } ] ]);
    unavailable_ok($r[0], 'as_server_error',
                   'killed during the token request', 0.5 + $QUICK);

    mock_up();
    wait_due(time);
    my $r = retry_until_decided('g1', $h);
    is($r->{kind}, '403 approval_replayed invalid_grant',
       'the restarted AS forgot it: 403 approval_replayed');
    ($h, $id) = ask('g1', 'a bare request asks again');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    upstream_ok(retry_until_decided('g1', $h), 'g1', 'and passes');
};


# ---- health --------------------------------------------------------------------------

diag join "\n", 'requests that met a fault, seconds:',
     map { sprintf '  %5.2f  %s', $_->[1] // -1, $_->[0] } @times;

health_ok($ng, @workers);
stop_ok($ng, $state);

note sprintf 'took %.1f s', time - $T0;

done_testing;
