# Regressions of what the fuzz targets (tools/fuzz) found, one case per
# finding, each through nginx as a client meets it.  The fuzz input of
# each case is in tools/fuzz/corpus/<target>/ under the name given.
#
# 1. store: a new approval in a full zone lost its subject's counter
#    (tools/fuzz/corpus/store/regression-counter-freed).  Making room for
#    a subject's new pending approval expired that subject's last
#    (expired) approval, which removed the subject's counter while the new
#    approval was being counted on it: the new approval was then counted
#    nowhere (and the counter written after it was freed), so
#    ciba_max_pending no longer held for that subject.  Here: alice
#    (ciba_max_pending 2) has an approval that expired, behind two expired
#    token records, in a zone full of live approvals; her next approval
#    is asked (the expired one makes the room); when one more approval
#    (another subject's) expires, her third is asked in its room; her
#    fourth is then one too many: 429 too_many_pending (with the bug the
#    second was counted nowhere, and the fourth got as far as a full
#    zone: 503 zone_full).
#
# nginx on TEST_NGINX_SERVER_PORT (1 worker, a 32k zone), the mock AS on
# the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state token_location);
use CibaLoad qw(kind json_of mock_up as_count plan_skip fast_mint);
use MockAS ();

plan_skip('filling the zone takes hundreds of requests, timed');

my $ng = CibaNginx->new(workers => 1);
my $port = $ng->port;
my $state = warm_state(epoch => int(time) - 3600);
my $SHORT = 5;              # ciba_requested_expiry of /ciba/short
my $MID = 8;                # ... of /ciba/mid

my $mport = mock_up($ng, users => [ 'alice', 'filler' ]);

$ng->write_config(
    http   => "    ciba_zone z:32k state=$state;\n",
    server => "        ciba_action refund;\n\n"
              . token_location('= /tools/short', $port, 'ciba_leeway 0;',
                               'ciba_token_max_age 2s;')
              . MockAS::ciba_location('= /ciba/short', $port,
                                      "ciba_requested_expiry ${SHORT}s;",
                                      'ciba_max_pending 2;')
              . MockAS::ciba_location('= /ciba/mid', $port,
                                      "ciba_requested_expiry ${MID}s;",
                                      'ciba_max_pending 1000;')
              . MockAS::ciba_location('= /ciba/long', $port,
                                      'ciba_requested_expiry 300s;',
                                      'ciba_max_pending 1000;')
              . MockAS::locations($mport) . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran\\n";
        }
_EOC_

$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);

sub ciba {
    my ($path, $user, $order) = @_;
    return [ $ng->request('POST', "$path?order=$order", body => '{}',
                          headers => [ 'X-User' => $user ]) ];
}


# ---- 1. store: the counter of a subject whose last approval expired ----------

# two token records that expire first (iat + 2 s max age + 1)
for my $n (1 .. 2) {
    my $t = fast_mint(path => '/tools/short', args => '', body => '',
                      claims => { iat => int(time) });
    my @r = $ng->request('POST', '/tools/short', body => '',
                         headers => [ 'Approval-Token' => $t ]);
    is(kind(\@r), '200', "1: short-lived token $n passes") or diag $r[2];
}

# alice's approval, expiring after them; another subject's, later
my $t0 = time;
is(kind(ciba('/ciba/short', 'alice', 1)), '401 approval_pending asked',
   '1: alice is asked');
is(kind(ciba('/ciba/mid', 'filler', 0)), '401 approval_pending asked',
   '1: a filler approval that expires a little later');

# live approvals until the zone is full
my ($fill, $full) = (0, undef);
for my $n (1 .. 500) {
    my $r = ciba('/ciba/long', 'filler', $n);
    if (kind($r) eq '401 approval_pending asked') {
        $fill++;
        next;
    }
    $full = $r;
    last;
}
ok($full, "1: the zone is full after $fill live approvals")
    or BAIL_OUT('the zone never filled');
is(kind($full), '503 approval_unavailable zone_full',
   '1: ... and refuses the next one');

sub sleep_until { my ($t) = @_; sleep($t - time) if time < $t }

# alice's approval and the token records expire (not yet removed)
sleep_until($t0 + $SHORT + 1.2);

my $asked = as_count('/bc-authorize');
my $off = $ng->log_offset;

is(kind(ciba('/ciba/short', 'alice', 2)), '401 approval_pending asked',
   '1: alice\'s second approval is asked (her expired one made room)');

# the filler approval expires: room for one more
sleep_until($t0 + $MID + 1.2);

is(kind(ciba('/ciba/short', 'alice', 3)), '401 approval_pending asked',
   '1: alice\'s third approval is asked (in the expired filler\'s room)');

# two live approvals: with ciba_max_pending 2, a third is too many
my $r = ciba('/ciba/short', 'alice', 4);
is(kind($r), '429 approval_rate_limited too_many_pending',
   '1: alice\'s fourth approval is refused: too many pending')
    or diag $r->[2];
is($r->[1]{'content-type'}, 'application/json', '1: ... as JSON');
is(as_count('/bc-authorize') - $asked, 2,
   '1: the AS was asked for the second and third approvals only');

{
    my $log = $ng->log_since($off);
    like($log, qr/ciba: decision=rate_limited reason=too_many_pending action="refund" subject="alice"/,
         '1: the decision line: rate_limited, too_many_pending');
    unlike($log, qr/reason=zone_full/, '1: no zone_full');
    unlike($ng->log_since(0), qr/\[alert\]|\[crit\]|\[emerg\]/,
           '1: no alert (a double free in the zone would log one)');
}

$ng->stop;

done_testing();
