# Clients that go away in the middle, many at once, with nginx run by
# t/CibaNginx.pm (two workers) and the mock AS (t/fixtures/mock-as):
#
# - while sending the body (headers and part of the body, then the
#   connection closed): 100 identical CIBA requests, 50 for 50 subjects,
#   50 with one approval token; and 20 that stall until
#   client_body_timeout.  Nothing is decided (no decision line, no
#   backchannel request), the token is not consumed, and afterwards the
#   same requests, complete, are asked (or, the token, admitted) as if
#   nothing had happened;
# - while held in wait mode (ciba_wait): 30 subjects, plus 20 identical
#   requests of one more; each ends with 499 and no decision, the polls
#   stop, no connection is left; the same requests again continue the
#   same approvals (no new backchannel request) and pass once approved;
# - while the AS is asked (the backchannel answer delayed): 30 subjects;
#   the placeholders are given up, the same requests ask again at once
#   (not "requesting");
# - while a token request is in flight in wait mode: 10 subjects; the
#   same requests then continue their approvals and pass once approved.
#
# Throughout: the same two workers, no [alert], [crit] or [emerg], no
# crash; at the end stub_status shows no connection but its own.
#
# nginx on TEST_NGINX_SERVER_PORT, the mock AS on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state token_location);
use CibaLoad qw(kind summary decision_lines mock_up as as_reqs plan_skip
                wait_until timed build_request fast_mint health_ok stop_ok);
use MockAS ();

plan_skip('timing-based (held requests, disconnects)');

my $WAIT = 10;          # ciba_wait
my $BODY_TIMEOUT = 2;   # client_body_timeout

my $T0 = time;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $state = warm_state();
my $logs = $ng->servroot . '/logs';
my $acclog = "$logs/ciba-access.log";
my $BODY = '{"note":"' . ('x' x 1980) . '"}';     # 2000 bytes

my $mport = mock_up($ng, users => [ map { ("p$_", "w$_", "c$_", "t$_") }
                                    1 .. 60 ]);

$ng->write_config(
    http   => <<"_EOC_",
    ciba_zone disc:1m state=$state;
    client_body_timeout ${BODY_TIMEOUT}s;
    log_format ciba '\$status \$request_method \$request_uri '
                    'user=\$http_x_user decision=\$ciba_decision '
                    'reason=\$ciba_reason';
_EOC_
    server => MockAS::locations($mport, 'proxy_read_timeout 10s;')
              . "        access_log $acclog ciba;\n"
              . "        ciba_action refund;\n\n"
              . MockAS::ciba_location('= /ciba/refund', $port)
              . MockAS::ciba_location('= /wait/refund', $port,
                                      "ciba_wait ${WAIT}s;")
              . token_location('= /tools/refund', $port)
              . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran \$arg_order\\n";
        }

        location = /status {
            access_log off;
            stub_status;
        }
_EOC_

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);
my @workers = $ng->worker_pids;


# ---- helpers -----------------------------------------------------------------

sub rq {
    my ($loc, $user, %o) = @_;
    return { method => 'POST', uri => "/$loc/refund?order=$user",
             headers => [ 'X-User' => $user, 'Content-Type' => 'application/json',
                          @{ $o{headers} || [] } ],
             body => $BODY, at => $o{at} // 0, close_at => $o{close_at} };
}

# the request with only the first half of its body, closed at $close_at
# (never when undef: the client stalls)
sub partial {
    my ($loc, $user, $close_at, @headers) = @_;
    my $raw = build_request(%{ rq($loc, $user, headers => \@headers) });
    return { raw => substr($raw, 0, length($raw) - length($BODY) / 2),
             close_at => $close_at };
}

sub acc_offset { return -s $acclog // 0 }

# the access log lines since $off (waits until there are $want of them)
sub access_lines {
    my ($off, $re, $want) = @_;
    my @l;
    wait_until(sub {
        open my $in, '<', $acclog or return 0;
        seek $in, $off, 0;
        @l = grep { /$re/ } <$in>;
        @l >= ($want // 1);
    }, 10);
    return @l;
}

sub bc_count {
    my ($user) = @_;
    return scalar grep { ($_->{form}{login_hint} // '') eq $user }
                  as_reqs('/bc-authorize');
}

sub auth_ids {
    my ($user) = @_;
    return map { $_->{answer}{auth_req_id} }
           grep { ($_->{form}{login_hint} // '') eq $user }
           as_reqs('/bc-authorize');
}

sub active_connections {
    my ($st, $h, $body) = $ng->request('GET', '/status');
    return ($body // '') =~ /Active connections:\s*(\d+)/ ? $1 : -1;
}

sub quiet_log {
    my ($off, $name) = @_;
    my $log = $ng->log_since($off);
    unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal/,
           "$name: no [alert], [crit], [emerg] or crash")
        or diag join '', grep { /\[(?:alert|crit|emerg)\]|exited on/ }
                         split /^/, $log;
}

sub approve_all {
    my (@users) = @_;
    for my $u (@users) {
        as(POST => '/_admin/approve', { auth_req_id => $_ })
            for (auth_ids($u))[-1];
    }
}


# ---- while sending the body -----------------------------------------------------

subtest 'clients that go away while sending the body' => sub {
    my $off = $ng->log_offset;
    my $aoff = acc_offset();
    my $token = fast_mint(path => '/tools/refund', args => 'order=tok',
                          body => $BODY);

    my @r = timed($ng, [
        (map { partial('ciba', 'p1', 0.5) } 1 .. 100),
        (map { partial('ciba', "p$_", 0.5) } 2 .. 51),
        (map { partial('tools', 'tok', 0.5, 'Approval-Token' => $token) }
         1 .. 50),
    ], timeout => 30);
    is(scalar(grep { $_->{closed} } @r), 200,
       '200 requests sent half their body and went away');

    my @acc = access_lines($aoff, qr{ /(?:ciba|tools)/refund\?order=(?:p\d+|tok) },
                           200);
    is(scalar @acc, 200, 'an access log line for each');
    is(scalar(grep { /^(?:400|499) .* decision=- reason=-$/ } @acc), 200,
       '... each 400 or 499, nothing decided')
        or diag @acc[0 .. 4];
    is(scalar(decision_lines($ng->log_since($off))), 0, 'no decision line');
    is(scalar(() = $ng->log_since($off) =~ /\[info\] .*client prematurely closed connection, .*request: "POST \/(?:ciba|tools)\/refund\?order=(?:p\d+|tok) /g),
       200, 'nginx: "client prematurely closed connection", 200 times');
    is(bc_count('p1') + bc_count('p2'), 0, 'the AS was not asked');

    # stalled: the body never completes, client_body_timeout ends them
    $aoff = acc_offset();
    @r = timed($ng, [ map { partial('ciba', 'p1', undef) } 1 .. 20 ],
               timeout => 30);
    is(scalar(grep { !defined $_->{status} && !$_->{closed} } @r), 20,
       '20 stalled bodies: nginx closed them (no answer, as nginx does '
       . 'after client_body_timeout)');
    ok(!grep({ ($_->{elapsed} // 99) < $BODY_TIMEOUT - 0.5
               || ($_->{elapsed} // 99) > $BODY_TIMEOUT + 2 } @r),
       "... after client_body_timeout ($BODY_TIMEOUT s), within a margin");
    @acc = access_lines($aoff, qr{ /ciba/refund\?order=p1 }, 20);
    is(scalar(grep { /^408 .* decision=- reason=-$/ } @acc), 20,
       '... access log: 408 each, nothing decided') or diag @acc[0 .. 4];
    is(bc_count('p1'), 0, '... the AS not asked');

    # complete now: as if nothing had happened
    my ($r) = timed($ng, [ rq('ciba', 'p1') ]);
    is($r->{kind}, '401 approval_pending asked',
       'the same request, complete: asked');
    is(bc_count('p1'), 1, 'one backchannel request');
    ($r) = timed($ng, [ rq('ciba', 'p2') ]);
    is($r->{kind}, '401 approval_pending asked', 'another subject: asked');

    ($r) = timed($ng, [ rq('tools', 'tok',
                           headers => [ 'Approval-Token' => $token ]) ]);
    is($r->{kind}, '200', 'the token, with the whole body: admitted, it '
                          . 'was not consumed');
    is($r->{body}, "upstream ran tok\n", '... the upstream\'s answer');
    ($r) = timed($ng, [ rq('tools', 'tok',
                           headers => [ 'Approval-Token' => $token ]) ]);
    is($r->{kind}, '403 approval_replayed jti_replayed', '... once');

    approve_all('p1');
    my $h = $r = undef;
    ($r) = timed($ng, [ rq('ciba', 'p1') ]);
    $h = $r->{json}{approval_handle};
    wait_until(sub {
        ($r) = timed($ng, [ rq('ciba', 'p1',
                               headers => [ 'Approval-Handle' => $h ]) ]);
        $r->{status} != 401;
    }, 10);
    is($r->{kind}, '200', 'approved: it passes');
    quiet_log($off, 'bodies');
};


# ---- while held in wait mode ------------------------------------------------------

my @WAITERS = map { "w$_" } 1 .. 30;

subtest 'clients that go away while held in wait mode' => sub {
    my $off = $ng->log_offset;
    my $aoff = acc_offset();

    my @r = timed($ng, [ (map { rq('wait', $_, close_at => 2.5) } @WAITERS),
                         (map { rq('wait', 'w31', close_at => 2.5) } 1 .. 20) ],
                  timeout => 30);
    is(scalar(grep { $_->{closed} } @r), 50, '50 held requests went away');

    my @acc = access_lines($aoff, qr{ /wait/refund\?order=w\d+ }, 50);
    is(scalar(grep { /^499 .* decision=- / } @acc), 50,
       'access log: 499 each, no decision') or diag @acc[0 .. 4];
    is(scalar(decision_lines($ng->log_since($off), qr{/wait/refund})), 0,
       'no decision line');
    is(scalar(grep { bc_count($_) == 1 } @WAITERS, 'w31'), 31,
       'one backchannel request per subject (31)');

    my $n = () = as_reqs('/token');
    sleep 2.5;
    is(scalar(() = as_reqs('/token')), $n, 'the polls stopped');
    my $active;
    wait_until(sub { ($active = active_connections()) == 1 }, 5);
    is($active, 1, 'no connection left but the status request');

    # the same requests again: the approvals continue; approved at 1 s
    my @users = (@WAITERS, 'w31');
    @r = timed($ng, [ map { rq('wait', $_) } @users ],
               actions => [ [ 1, sub { approve_all(@users) } ] ],
               timeout => 30);
    is(scalar(grep { $r[$_]{kind} eq '200'
                     && $r[$_]{body} eq "upstream ran $users[$_]\n" }
              0 .. $#users), 31,
       'the same requests again: all 31 pass once approved')
        or diag summary(map { [ $_->{status}, $_->{headers}, $_->{body} ] } @r);
    ok(!grep({ $_->{elapsed} > $WAIT } @r), '... within the wait');
    is(scalar(grep { bc_count($_) == 1 } @users), 31,
       '... the same approvals (no new backchannel request)');
    quiet_log($off, 'wait mode');
};


# ---- while the AS is asked ----------------------------------------------------------

subtest 'a client that goes away while held is noticed at once, not at the next poll' => sub {
    # polls every 6 s: the held request's timer fires at 6 s; the client
    # leaves at 1 s, and the read side says so right then
    as(POST => '/_admin/config', { interval => 6 });
    my $aoff = acc_offset();
    my $t0 = time;
    my @r = timed($ng, [ rq('wait', 'w45', close_at => 1.0) ], timeout => 15);
    ok($r[0]{closed}, 'the client went away');
    my @acc = access_lines($aoff, qr{ /wait/refund\?order=w45 }, 1);
    my $seen = time - $t0;
    like($acc[0] // '', qr/^499 /, 'access log: 499');
    cmp_ok($seen, '<', 3.5, sprintf('logged %.1f s after the request '
                                    . '(it left at 1 s; the poll is at 6 s)',
                                    $seen));
    as(POST => '/_admin/config', { interval => 1 });
};

subtest 'clients that go away during the backchannel request' => sub {
    my @users = map { "c$_" } 1 .. 30;
    as(POST => '/_admin/script', { endpoint => '/bc-authorize',
                                   responses => [ { delay_ms => 1500,
                                                    times => 30 } ] });
    my $off = $ng->log_offset;
    my $aoff = acc_offset();

    my @r = timed($ng, [ map { rq('ciba', $_, close_at => 0.4) } @users ],
                  timeout => 30);
    is(scalar(grep { $_->{closed} } @r), 30, '30 requests went away');
    my @acc = access_lines($aoff, qr{ /ciba/refund\?order=c\d+ }, 30);
    is(scalar(grep { /^499 .* decision=- / } @acc), 30,
       'access log: 499 each, no decision') or diag @acc[0 .. 4];

    wait_until(sub { !as(GET => '/_admin/script')->{scripts}{'/bc-authorize'} }, 5);
    is(scalar(grep { bc_count($_) == 1 } @users), 30,
       'the AS got the 30 backchannel requests');

    @r = timed($ng, [ map { rq('ciba', $_) } @users ], timeout => 30);
    is(summary(map { [ $_->{status}, $_->{headers}, $_->{body} ] } @r),
       '401 approval_pending asked: 30',
       'the same requests at once: asked again (no placeholder left)');
    is(scalar(grep { bc_count($_) == 2 } @users), 30,
       '... a second backchannel request each');
    quiet_log($off, 'backchannel');
};


# ---- while a token request is in flight -------------------------------------------

subtest 'clients that go away during a token request (wait mode)' => sub {
    my @users = map { "t$_" } 1 .. 10;
    my $off = $ng->log_offset;

    # held: asked at once, polled after 2 s, the poll answered after 3 s
    # more; the clients go away at 3.5 s, while the poll is in flight
    as(POST => '/_admin/script', { endpoint => '/token',
                                   responses => [ { delay_ms => 3000,
                                                    times => 10 } ] });
    my $n = () = as_reqs('/token');
    my $aoff = acc_offset();
    my @r = timed($ng, [ map { rq('wait', $_, close_at => 3.5) } @users ],
                  timeout => 30);
    is(scalar(grep { $_->{closed} } @r), 10, '10 held requests went away');
    my $polled = () = as_reqs('/token');
    is($polled - $n, 10, '... each while its poll was in flight');
    is(scalar(grep { bc_count($_) == 1 } @users), 10,
       '... each had asked the AS once');
    my @acc = access_lines($aoff, qr{ /wait/refund\?order=t\d+ }, 10);
    is(scalar(grep { /^499 .* decision=- / } @acc), 10,
       'access log: 499 each, no decision') or diag @acc[0 .. 4];
    like($ng->log_since($off),
         qr/ciba: the client closed the connection while the token request was in flight/,
         'the module noted it; the token requests went on');

    wait_until(sub { !as(GET => '/_admin/script')->{scripts}{'/token'} }, 5);
    @r = timed($ng, [ map { rq('wait', $_) } @users ],
               actions => [ [ 0.5, sub { approve_all(@users) } ] ],
               timeout => 30);
    is(scalar(grep { $r[$_]{kind} eq '200'
                     && $r[$_]{body} eq "upstream ran $users[$_]\n" }
              0 .. $#users), 10,
       'the same requests again: all pass once approved')
        or diag summary(map { [ $_->{status}, $_->{headers}, $_->{body} ] } @r);
    is(scalar(grep { bc_count($_) == 1 } @users), 10,
       '... the same approvals');
    quiet_log($off, 'token requests');
};


# ---- health ----------------------------------------------------------------------

{
    my $active;
    wait_until(sub { ($active = active_connections()) == 1 }, 5);
    is($active, 1, 'at the end: no connection left but the status request');
}
{
    my $t = fast_mint(path => '/tools/refund', args => 'order=end',
                      body => $BODY);
    my ($r) = timed($ng, [ rq('tools', 'end',
                              headers => [ 'Approval-Token' => $t ]) ]);
    is($r->{kind}, '200', 'a fresh token still passes');
}
health_ok($ng, @workers);
stop_ok($ng, $state);

note sprintf 'took %.1f s', time - $T0;

done_testing;
