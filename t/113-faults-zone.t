# The shared zone exhausted by live records of both kinds: consumed
# tokens and pending CIBA approvals (t/060-zone.t fills it with tokens
# only).  A full zone refuses (503 approval_unavailable, reason zone_full,
# Retry-After, an error line naming the zone) and never evicts:
#
# - long-lived token records, then pending approvals (one per subject,
#   the mock AS asked each time) until a new approval is refused, then
#   long-lived tokens until a token is refused;
# - while it is full: a new approval is refused without asking the AS, a
#   new token is refused, every earlier token is still a replay, every
#   earlier pending approval is still there (a retry with its handle, or
#   a bare one, is pending with that handle; the AS is not asked again),
#   and one that the human approves still passes, once;
# - recovery: when the pending approvals expire (ciba_requested_expiry
#   10s), new approvals and tokens pass again; the expired handles are
#   refused (approval_expired); the token records, still live, still
#   refuse replays;
# - then short-lived token records fill the zone: pending approvals are
#   refused until those records expire (3 s), then asked again.
#
# Also: the refusal of a new approval says Retry-After = the seconds
# until the earliest record expires, and the AS is asked only for
# approvals the zone keeps (the placeholder has room for the answer), so a
# refused approval and its retries never prompt the human.
#
# nginx on TEST_NGINX_SERVER_PORT (2 workers, a 32k zone), the mock AS on
# the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state token_location);
use CibaLoad qw(kind tally summary json_of decision_lines mock_up as
                as_reqs as_count plan_skip wait_until fast_mint health_ok
                stop_ok);
use MockAS ();

plan_skip('filling the zone takes hundreds of requests, timed');

my $T0 = time;
my $EXPIRY = 10;            # ciba_requested_expiry: pending records' life
my $LONG_LIFE = 120 + 10 + 1;   # a default token's record (t/060)
my $SHORT_LIFE = 2 + 0 + 1;     # /tools/short: exp 2 s after iat, leeway 0

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $state = warm_state(epoch => int(time) - 3600);
my $logs = $ng->servroot . '/logs';
my $ARGS = 'order=42&amount=10';
my $BODY = '{"reason":"duplicate charge"}';

my $mport = mock_up($ng, users => [ map { sprintf 'z%03d', $_ } 1 .. 600 ]);

$ng->write_config(
    http   => "    ciba_zone z:32k state=$state;\n",
    server => "        ciba_action refund;\n\n"
              . token_location('= /tools/refund', $port)
              . token_location('= /tools/short', $port, 'ciba_leeway 0;',
                               'ciba_token_max_age 2s;')
              . MockAS::ciba_location('= /ciba/refund', $port,
                                      "ciba_requested_expiry ${EXPIRY}s;")
              . MockAS::locations($mport, 'proxy_read_timeout 10s;')
              . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran\\n";
        }
_EOC_

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);
my @workers = $ng->worker_pids;


# ---- helpers -----------------------------------------------------------------

sub token {
    my ($path, %claims) = @_;
    return fast_mint(path => $path, args => $ARGS, body => $BODY,
                     claims => { iat => int(time), %claims });
}

sub send_token {
    my ($path, $token) = @_;
    return [ $ng->request('POST', "$path?$ARGS", body => $BODY,
                          headers => [ 'Content-Type' => 'application/json',
                                       'Approval-Token' => $token ]) ];
}

sub user { sprintf 'z%03d', $_[0] }

# a CIBA request of subject N (each subject its own approval)
sub ciba {
    my ($n, $handle) = @_;
    return [ $ng->request('POST', "/ciba/refund?order=$n", body => $BODY,
                          headers => [ 'X-User' => user($n),
                                       $handle ? ('Approval-Handle' => $handle)
                                               : () ]) ];
}

# 503 zone_full: JSON, Retry-After a number of seconds from 1 to $max
sub zone_full_ok {
    my ($res, $name, $max) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is(kind($res), '503 approval_unavailable zone_full', "$name: 503 zone_full")
        or diag $res->[2];
    is($res->[1]{'content-type'}, 'application/json', "$name: JSON");
    my $ra = $res->[1]{'retry-after'} // '';
    ok($ra =~ /^\d+$/ && $ra >= 1 && $ra <= $max,
       "$name: Retry-After, 1 to $max s") or diag "Retry-After: \"$ra\"";
    return $ra;
}

sub first_expiry_in { my ($t) = @_; my $s = int($t - time + 0.999); $s }


# ---- long-lived token records ------------------------------------------------

my @used = map { token('/tools/refund') } 1 .. 20;
is(summary(map { send_token('/tools/refund', $_) } @used), '200: 20',
   '20 long-lived tokens pass');


# ---- pending approvals until the zone is full -----------------------------------

my $off = $ng->log_offset;
my (@handles, $first_full, %answers);
my $t_first = time;
for my $n (1 .. 500) {
    my $r = ciba($n);
    my $k = kind($r);
    $answers{$k}++;
    if ($k eq '401 approval_pending asked') {
        push @handles, json_of($r->[2])->{approval_handle};
        next;
    }
    $first_full = [ $n, $r ];
    last;
}
my $pending = @handles;
my $pending_expire = $t_first + $EXPIRY;
my $next_user = $first_full ? $first_full->[0] + 1 : 501;

ok($first_full, "pending approvals were taken until the zone was full "
                . "($pending)") or BAIL_OUT('the zone never filled');
diag "a 32k zone with 20 token records took $pending pending approvals";
cmp_ok($pending, '>=', 10, 'at least 10 of them');
is(scalar keys %answers, 2, 'every answer was "asked" until the first 503')
    or diag join ', ', map { "$_: $answers{$_}" } sort keys %answers;

my $ra = zone_full_ok($first_full->[1], 'the first approval refused',
                      $LONG_LIFE);
{
    my $want = first_expiry_in($pending_expire);
    ok(abs($ra - $want) <= 1, "Retry-After says when the first pending "
                              . "record goes ($want s), got $ra");
}

{
    my $log = $ng->log_since($off);
    like($log, qr/\[error\].*ciba: zone "z" is full, no room for a pending approval/,
         'the error log names the zone');
    like($log, qr/ciba: decision=unavailable reason=zone_full action="refund" subject="${\ user($first_full->[0]) }"/,
         'the decision line: unavailable, zone_full');
}

my $asked = as_count('/bc-authorize');
diag "backchannel requests: $asked for $pending pending approvals";
{
    is($asked, $pending, 'the AS was asked only for approvals that were kept');
}
cmp_ok($asked - $pending, '<=', 1, 'at most the refused approval asked the AS');

# the agent retries the refused request twice
{
    my $u = user($first_full->[0]);
    my $before = grep { $_->{form}{login_hint} eq $u } as_reqs('/bc-authorize');
    zone_full_ok(ciba($first_full->[0]), "the refused approval, retry $_",
                 $LONG_LIFE) for 1 .. 2;
    my $after = grep { $_->{form}{login_hint} eq $u } as_reqs('/bc-authorize');
    {
        is($after - $before, 0, 'the retries did not ask the AS');
    }
    diag "two retries of the refused approval: @{[ $after - $before ]} "
         . 'more backchannel request(s)';
}

# now tokens, until the zone has no room for them either
my @fill;
{
    my $r;
    for (1 .. 3000) {
        my $t = token('/tools/refund');
        $r = send_token('/tools/refund', $t);
        last if kind($r) ne '200';
        push @fill, $t;
    }
    diag scalar(@fill) . ' more token records fit';
    $ra = zone_full_ok($r, 'the first token refused', $LONG_LIFE);
    my $want = first_expiry_in($pending_expire);
    ok($ra <= $want + 1, "... Retry-After: when the first pending record "
                         . "goes ($want s), got $ra");
}


# ---- while it is full ------------------------------------------------------------

{
    my $bc = as_count('/bc-authorize');
    my $r = ciba($next_user);
    zone_full_ok($r, 'another new approval', $LONG_LIFE);
    is(as_count('/bc-authorize'), $bc, '... refused without asking the AS');
    zone_full_ok(ciba($next_user), '... and again (no placeholder left)',
                 $LONG_LIFE);
    $next_user++;
    $bc = as_count('/bc-authorize');

    zone_full_ok(send_token('/tools/refund', token('/tools/refund')),
                 'a new token', $LONG_LIFE);

    is(summary(map { send_token('/tools/refund', $_) } @used, @fill),
       '403 approval_replayed jti_replayed: ' . (@used + @fill),
       'the ' . (@used + @fill) . ' earlier tokens are still replays (none '
       . 'evicted)');

    my @r = map { ciba($_, $handles[$_ - 1]) } 1 .. $pending;
    is(scalar(grep {
           kind($r[$_ - 1]) =~ /^401 approval_pending (?:not_yet|authorization_pending)$/
           && (json_of($r[$_ - 1][2])->{approval_handle} // '')
              eq $handles[$_ - 1] } 1 .. $pending), $pending,
       "the $pending pending approvals: a retry with the handle is pending")
        or diag summary(@r);

    @r = map { ciba($_) } 1 .. $pending;
    is(scalar(grep { (json_of($r[$_ - 1][2])->{approval_handle} // '')
                     eq $handles[$_ - 1] } 1 .. $pending), $pending,
       '... a bare retry is continued with the same handle')
        or diag summary(@r);
    is(as_count('/bc-authorize'), $bc, 'the AS was not asked again');
}

# one the human approves while the zone is full
{
    my ($id) = map { $_->{answer}{auth_req_id} }
               grep { $_->{form}{login_hint} eq user(1) }
               as_reqs('/bc-authorize');
    as(POST => '/_admin/approve', { auth_req_id => $id });
    my $r;
    wait_until(sub { $r = ciba(1, $handles[0]); ($r->[0] // 0) != 401 }, 10);
    is(kind($r), '200', 'an approval approved while the zone is full passes');
    is($r->[2], "upstream ran\n", '... to the upstream');
    my $again = kind(ciba(1, $handles[0]));
    like($again, qr/^403 approval_replayed /, '... then never again')
        or diag $again;
}


# ---- recovery: the pending approvals expire ----------------------------------------

{
    my $wait = $pending_expire + 1.2 - time;
    note sprintf 'waiting %.1f s for the pending approvals to expire', $wait;
    sleep $wait if $wait > 0;
}

$off = $ng->log_offset;
{
    my $r = ciba($next_user++);
    is(kind($r), '401 approval_pending asked',
       'the pending approvals expired: a new approval is asked');
    is(kind(send_token('/tools/refund', token('/tools/refund'))), '200',
       '... a new token passes');
    is(summary(map { send_token('/tools/refund', $_) } @used, @fill),
       '403 approval_replayed jti_replayed: ' . (@used + @fill),
       '... the earlier tokens are still replays');
    is(kind(ciba(2, $handles[1])), '403 approval_expired handle_expired',
       '... an expired approval\'s handle is refused');
    $r = ciba(2);
    is(kind($r), '401 approval_pending asked',
       '... a bare retry of it asks anew');
    isnt(json_of($r->[2])->{approval_handle}, $handles[1], '... a new handle');
}
unlike($ng->log_since($off), qr/is full/, 'no "zone is full" since');


# ---- short-lived token records fill the zone ----------------------------------------

# tokens issued in second T and valid until T + 2 (records until T + 3),
# minted ahead and sent in second T
my $T = int(time) + 3;
my @short = map { token('/tools/short', iat => $T, exp => $T + 2) } 1 .. 400;
sleep($T + 0.05 - time) if time < $T + 0.05;
my @res = $ng->parallel([ map { {
    method => 'POST', uri => "/tools/short?$ARGS", body => $BODY,
    headers => [ 'Content-Type' => 'application/json',
                 'Approval-Token' => $_ ] } } @short ]);
my %n = tally(@res);
{
    my $bc = as_count('/bc-authorize');
    my $r = ciba($next_user);
    my $filled = time;
    cmp_ok($filled, '<', $T + 3, 'the zone was filled while the short-lived '
                                 . 'tokens were valid');
    ok($n{200} && $n{'503 approval_unavailable zone_full'},
       'short-lived tokens filled the zone: ' . summary(@res));
    zone_full_ok($r, 'a new approval in a zone full of short-lived token '
                     . 'records', $LONG_LIFE);
    is(as_count('/bc-authorize'), $bc, '... the AS not asked');

    sleep($T + 4.2 - time) if time < $T + 4.2;
    $bc = as_count('/bc-authorize');
    $r = ciba($next_user);
    is(kind($r), '401 approval_pending asked',
       'the short-lived records expired: the same approval is asked now');
    is(as_count('/bc-authorize'), $bc + 1, '... one backchannel request');
}


# ---- health ----------------------------------------------------------------------------

health_ok($ng, @workers);
stop_ok($ng, $state);

note sprintf 'took %.1f s', time - $T0;

done_testing;
