# Single use under heavy concurrency, two workers (the listen socket has
# "reuseport", so the kernel spreads the connections over both and every
# race is a cross-process one):
#
# - 500 concurrent uses of one approval token: exactly one reaches the
#   upstream, the other 499 are 403 approval_replayed (reason
#   jti_replayed); the error log has one decision=approved and 499
#   decision=replayed lines for the jti, and the upstream saw one request;
# - 500 concurrent retries with the handle of one approved CIBA approval
#   (poll mode, the mock AS): exactly one is admitted and the AS issues
#   tokens once.  The others are refused: 403 approval_replayed once the
#   auth_req_id is consumed, or, while the one token request is in
#   flight, 401 approval_pending (not_yet: the poll is taken; none of
#   them is admitted).  The decision lines match the answers one for one.
#   A second wave of 500 with the same handle: all 403 approval_replayed
#   (auth_req_id_replayed), the AS not asked;
# - 500 concurrent bare requests for one new action: one backchannel
#   request (the human is asked once), every answer 401 approval_pending
#   with the one handle (or "requesting" while the AS is asked), and the
#   approval then passes once.
#
# SOAK=1 repeats each part (20 token rounds, 10 handle rounds, 5 bare
# rounds); the default run (3, 2 and 1) takes about 10-20 s.
#
# nginx on TEST_NGINX_SERVER_PORT, the mock AS on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use JSON::PP ();
use MIME::Base64 qw(decode_base64url);
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(mint warm_state);
use CibaLoad qw(kind tally summary json_of decision_lines mock_up as
                as_reqs as_count plan_skip wait_until health_ok stop_ok
                write_soak_config);

plan_skip('hundreds of concurrent requests are meaningless');

my $N = 500;
my $SOAK = $ENV{SOAK} ? 1 : 0;
my $TOKEN_ROUNDS = $SOAK ? 20 : 3;
my $HANDLE_ROUNDS = $SOAK ? 10 : 2;
my $BARE_ROUNDS = $SOAK ? 5 : 1;

my $T0 = time;

my $ng = CibaNginx->new(workers => 2, worker_connections => 4096);
my $state = warm_state(epoch => int(time) - 3600);
my $logs = $ng->servroot . '/logs';

my $mport = mock_up($ng, users => [ map { "u$_" } 1 .. 20 ]);

my $BODY = '{"reason":"duplicate charge"}';

write_soak_config($ng, $mport, state => $state, zone => '4m',
                  as_timeout => '20s');

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);

my @workers = $ng->worker_pids;

# what the upstream saw (one line per request: its order) since $off
sub upstream_hits {
    my ($off, $order) = @_;
    open my $in, '<', "$logs/upstream.log" or return 0;
    seek $in, $off, 0;
    return scalar grep { $_ eq "$order\n" } <$in>;
}

sub upstream_offset { return -s "$logs/upstream.log" // 0 }

sub jti_of {
    my $payload = (split /\./, shift)[1];
    return JSON::PP::decode_json(decode_base64url($payload))->{jti};
}

sub pids_of { my %p = map { /\[\w+\] (\d+)#/ ? ($1 => 1) : () } @_; %p }

# the upstream's answer to order N
sub upstream_ok {
    my ($res, $order) = @_;
    return ($res->[0] // 0) == 200 && $res->[2] eq "upstream ran $order\n";
}


# ---- one token, 500 concurrent uses ------------------------------------------

for my $round (1 .. $TOKEN_ROUNDS) {
    my $order = "t$round";
    my $args = "order=$order&amount=10";
    my $token = mint(path => '/tools/refund', args => $args, body => $BODY,
                     claims => { iat => int(time) });
    my $jti = jti_of($token);
    my $off = $ng->log_offset;
    my $uoff = upstream_offset();

    my $t = time;
    my @res = $ng->parallel([ ({
        method => 'POST', uri => "/tools/refund?$args", body => $BODY,
        headers => [ 'Content-Type' => 'application/json',
                     'Approval-Token' => $token ] }) x $N ], timeout => 60);
    my $took = time - $t;

    my %n = tally(@res);
    is($n{200}, 1, "token round $round: exactly one of $N uses admitted")
        or diag summary(@res) . "\n" . $ng->error;
    is(scalar(grep { upstream_ok($_, $order) } @res), 1,
       "token round $round: ... with the upstream's answer");
    is($n{'403 approval_replayed jti_replayed'}, $N - 1,
       "token round $round: the other " . ($N - 1)
       . ' are 403 approval_replayed, reason jti_replayed')
        or diag summary(@res);
    is(scalar(keys %n), 2, "token round $round: no other answer")
        or diag summary(@res);

    my @refused = grep { ($_->[0] // 0) == 403 } @res;
    is(scalar(grep { ($_->[1]{'content-type'} // '') eq 'application/json'
                     && !exists $_->[1]{'www-authenticate'}
                     && $_->[2] !~ /\Q$token\E/ } @refused), $N - 1,
       "token round $round: the refusals are JSON, no WWW-Authenticate, "
       . 'no token in the body');

    my @lines = decision_lines($ng->log_since($off), qr/jti="\Q$jti\E"/);
    is(scalar(grep { /decision=approved reason=token_valid / } @lines), 1,
       "token round $round: one decision=approved line for the jti");
    is(scalar(grep { /decision=replayed reason=jti_replayed / } @lines),
       $N - 1, "token round $round: " . ($N - 1) . ' decision=replayed '
       . 'lines');
    is(scalar @lines, $N, "token round $round: $N decision lines in all");
    is(upstream_hits($uoff, $order), 1,
       "token round $round: the upstream saw one request");

    my %p = pids_of(@lines);
    ok(keys %p == 2, "token round $round: both workers decided")
        or diag 'workers: ' . join ' ', sort keys %p;

    note sprintf 'token round %d: %d requests in %.2f s, per worker: %s',
                 $round, $N, $took,
                 join ' ', map { my $w = $_;
                                 "$w=" . grep { /\] $w#/ } @lines } sort keys %p;
}


# ---- one handle, 500 concurrent retries --------------------------------------

# a bare request that asks the human; returns the handle and the answer
sub ask {
    my ($order, $user) = @_;
    my ($st, $h, $body) = $ng->request('POST', "/ciba/refund?order=$order",
        headers => [ 'X-User' => $user ], body => $BODY);
    return (json_of($body)->{approval_handle}, $st, $h, $body);
}

sub handle_reqs {
    my ($order, $user, $handle, $n) = @_;
    return [ ({ method => 'POST', uri => "/ciba/refund?order=$order",
                body => $BODY,
                headers => [ 'X-User' => $user,
                             $handle ? ('Approval-Handle' => $handle) : () ],
              }) x $n ];
}

# the auth_req_id the mock gave for a user's latest backchannel request
sub areq_of {
    my ($user) = @_;
    my @bc = grep { ($_->{form}{login_hint} // '') eq $user }
             as_reqs('/bc-authorize');
    return @bc ? $bc[-1]{answer}{auth_req_id} : undef;
}

sub token_reqs_for {
    my ($id) = @_;
    return grep { ($_->{form}{auth_req_id} // '') eq $id } as_reqs('/token');
}

my %handle_kinds;

for my $round (1 .. $HANDLE_ROUNDS) {
    my $order = "h$round";
    my $user = "u$round";
    my ($handle, $st, undef, $body) = ask($order, $user);
    is($st, 401, "handle round $round: asked") or diag $body;
    my $id = areq_of($user);
    ok($handle && $id, "handle round $round: a handle, an auth_req_id")
        or next;
    my $ask_time = time;

    as(POST => '/_admin/approve', { auth_req_id => $id });

    # the poll is due from nginx's second of the answer + interval + 1
    my $due = int($ask_time) + 2.1;
    sleep($due - time) if time < $due;

    my $off = $ng->log_offset;
    my $uoff = upstream_offset();
    my $t = time;
    my @res = $ng->parallel(handle_reqs($order, $user, $handle, $N),
                            timeout => 60);
    my $took = time - $t;

    my %n = tally(@res);
    $handle_kinds{$_} += $n{$_} for keys %n;

    is($n{200}, 1, "handle round $round: exactly one of $N retries "
                   . 'admitted')
        or diag summary(@res) . "\n" . $ng->error;
    is(scalar(grep { upstream_ok($_, $order) } @res), 1,
       "handle round $round: ... with the upstream's answer");

    my @other = grep { $_ ne '200' } keys %n;
    my @unexpected = grep {
        !/^403 approval_replayed (?:auth_req_id_replayed|invalid_grant)$/
        && !/^401 approval_pending (?:not_yet|requesting)$/ } @other;
    is_deeply(\@unexpected, [],
              "handle round $round: the others are 403 approval_replayed "
              . 'or 401 approval_pending (poll in flight)')
        or diag summary(@res);

    my $replayed = 0;
    $replayed += $n{$_} for grep { /^403 / } @other;
    my $pending = 0;
    $pending += $n{$_} for grep { /^401 / } @other;
    is($replayed + $pending, $N - 1, "handle round $round: "
       . ($N - 1) . ' refused')
        or diag summary(@res);

    # pending answers during the poll: the handle, Retry-After
    my @p = grep { ($_->[0] // 0) == 401 } @res;
    is(scalar(grep { json_of($_->[2])->{approval_handle}
                     && ($_->[1]{'retry-after'} // '') =~ /^[1-9]\d*$/ } @p),
       scalar @p, "handle round $round: the pending answers carry the "
                  . 'handle and Retry-After');

    # what the AS saw: tokens issued once (a second token request, in the
    # race before the consumption, is refused by the AS: invalid_grant)
    my @tok = token_reqs_for($id);
    is(scalar(grep { ($_->{status} // 0) == 200 } @tok), 1,
       "handle round $round: the AS issued tokens once");
    is(scalar(grep { ($_->{status} // 0) != 200
                     && ($_->{answer}{error} // '') ne 'invalid_grant' } @tok),
       0, "handle round $round: any other token request got invalid_grant");

    my @lines = decision_lines($ng->log_since($off),
                               qr{"POST /ciba/refund\?order=\Q$order\E });
    is(scalar(grep { /decision=approved reason=approved_by_as / } @lines), 1,
       "handle round $round: one decision=approved line");
    is(scalar(grep { /decision=replayed / } @lines), $replayed,
       "handle round $round: a decision=replayed line per 403 ($replayed)");
    is(scalar(grep { /decision=pending / } @lines), $pending,
       "handle round $round: a decision=pending line per 401 ($pending)");
    is(upstream_hits($uoff, $order), 1,
       "handle round $round: the upstream saw one request");

    note sprintf 'handle round %d: %d retries in %.2f s: %s; %d token '
                 . 'request(s)', $round, $N, $took, summary(@res),
                 scalar @tok;

    # a second wave: the approval is used, every retry is a replay
    $off = $ng->log_offset;
    my $ntok = as_count('/token');
    @res = $ng->parallel(handle_reqs($order, $user, $handle, $N),
                         timeout => 60);
    %n = tally(@res);
    is($n{'403 approval_replayed auth_req_id_replayed'}, $N,
       "handle round $round: a second wave of $N: all 403 "
       . 'approval_replayed, auth_req_id_replayed')
        or diag summary(@res);
    is(as_count('/token'), $ntok, "handle round $round: the AS not asked");
    @lines = decision_lines($ng->log_since($off),
                            qr{"POST /ciba/refund\?order=\Q$order\E });
    is(scalar(grep { /decision=replayed reason=auth_req_id_replayed / }
              @lines), $N,
       "handle round $round: $N decision=replayed lines");
}

diag 'handle rounds, first waves: '
     . join ', ', map { "$_: $handle_kinds{$_}" } sort keys %handle_kinds;


# ---- one new action, 500 concurrent bare requests ----------------------------

for my $round (1 .. $BARE_ROUNDS) {
    my $order = "b$round";
    my $user = 'u' . (10 + $round);
    my $nbc = grep { ($_->{form}{login_hint} // '') eq $user }
              as_reqs('/bc-authorize');
    my $off = $ng->log_offset;

    my @res = $ng->parallel(handle_reqs($order, $user, undef, $N),
                            timeout => 60);
    my %n = tally(@res);
    my @bad = grep { !/^401 approval_pending (?:asked|requesting|not_yet)$/ }
              keys %n;
    is_deeply(\@bad, [], "bare round $round: $N concurrent bare requests: "
                         . 'all 401 approval_pending')
        or diag summary(@res);
    is($n{'401 approval_pending asked'}, 1,
       "bare round $round: one of them asked the AS")
        or diag summary(@res);

    my @bc = grep { ($_->{form}{login_hint} // '') eq $user }
             as_reqs('/bc-authorize');
    is(scalar @bc - $nbc, 1, "bare round $round: one backchannel request");

    my %handles = map { (json_of($_->[2])->{approval_handle} // '-') => 1 }
                  grep { kind($_) !~ /requesting/ } @res;
    is(scalar keys %handles, 1,
       "bare round $round: every handle given is the same");
    my ($handle) = keys %handles;

    my @lines = decision_lines($ng->log_since($off),
                               qr{"POST /ciba/refund\?order=\Q$order\E });
    is(scalar(grep { /decision=pending / } @lines), $N,
       "bare round $round: $N decision=pending lines");

    # the approval then passes, once
    as(POST => '/_admin/approve', { auth_req_id => $bc[-1]{answer}{auth_req_id} });
    my $r;
    wait_until(sub {
        $r = [ $ng->request('POST', "/ciba/refund?order=$order",
                            headers => [ 'X-User' => $user,
                                         'Approval-Handle' => $handle ],
                            body => $BODY) ];
        ($r->[0] // 0) != 401;
    }, 10);
    ok(upstream_ok($r, $order), "bare round $round: approved, it passes")
        or diag kind($r);
    $r = [ $ng->request('POST', "/ciba/refund?order=$order",
                        headers => [ 'X-User' => $user,
                                     'Approval-Handle' => $handle ],
                        body => $BODY) ];
    is(kind($r), '403 approval_replayed auth_req_id_replayed',
       "bare round $round: then a replay");
}


# ---- health ------------------------------------------------------------------

health_ok($ng, @workers);
stop_ok($ng, $state);

note sprintf 'took %.1f s', time - $T0;

done_testing;
