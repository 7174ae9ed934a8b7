# ciba_max_pending counts live approvals only.  An approval that expired
# but is still in the zone (the zone removes expired records a few at a
# time, oldest first) must not count towards its subject's limit: when
# the limit is reached, the zone is swept of every expired record before a
# new approval is refused.  Here other subjects' approvals expired before
# alice's, so a partial sweep would leave hers in place (and answer a
# spurious 429 too_many_pending).
#
# nginx on TEST_NGINX_SERVER_PORT (1 worker), the mock AS on the next port.
use strict;
use warnings;

use lib 't';

use Test::More;

use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use CibaLoad qw(kind mock_up as_count plan_skip);
use MockAS ();

plan_skip('timed (approvals that expire after 2 s)');

my $ng = CibaNginx->new(workers => 1);
my $port = $ng->port;
my $state = warm_state(epoch => int(time) - 3600);
my @fillers = map { "filler$_" } 1 .. 4;

my $mport = mock_up($ng, users => [ 'alice', @fillers ]);

$ng->write_config(
    http   => "    ciba_zone z:1m state=$state;\n",
    server => "        ciba_action refund;\n\n"
              . MockAS::ciba_location('= /ciba/one', $port,
                                      'ciba_requested_expiry 2s;',
                                      'ciba_max_pending 1;')
              . MockAS::ciba_location('= /ciba/filler', $port,
                                      'ciba_requested_expiry 2s;')
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

# other subjects' approvals first: they expire first, and are swept first
for my $u (@fillers) {
    is(kind(ciba('/ciba/filler', $u, 'f')), '401 approval_pending asked',
       "$u: asked");
}

is(kind(ciba('/ciba/one', 'alice', 1)), '401 approval_pending asked',
   'alice, order 1: asked');
is(kind(ciba('/ciba/one', 'alice', 2)), '429 approval_rate_limited too_many_pending',
   'alice, order 2, while order 1 is pending: one too many');

my $asked = as_count('/bc-authorize');

sleep 3.2;

is(kind(ciba('/ciba/one', 'alice', 2)), '401 approval_pending asked',
   'alice, order 2, after order 1 expired: asked, not rate limited');
is(as_count('/bc-authorize'), $asked + 1, 'the AS was asked once more');
is(kind(ciba('/ciba/one', 'alice', 3)), '429 approval_rate_limited too_many_pending',
   'alice, order 3, while order 2 is pending: the limit still holds');

like($ng->error_log,
     qr/ciba: decision=pending reason=asked action="refund" subject="alice"(?s:.*)ciba: decision=rate_limited reason=too_many_pending action="refund" subject="alice"/,
     'the decision lines');
unlike($ng->error_log, qr/\[(alert|crit|emerg)\]/, 'no alert');

$ng->stop;

done_testing();
