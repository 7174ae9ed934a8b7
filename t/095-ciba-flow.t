# Asking the human (CIBA, poll mode): flows of several requests against the
# scriptable mock AS (t/fixtures/mock-as/mock-as.mjs, started here), with nginx
# run by t/CibaNginx.pm (master process, 2 workers):
#
# - the poll flow with the handle: retries within the interval are answered
#   from the zone (no token request), one token request per interval (and
#   its margin, below), authorization_pending, approval, the request
#   upstream once, then approval_replayed without asking the AS;
# - the same with bare retries: ten retries, one backchannel request;
# - a handle with another request or subject (handle_mismatch);
# - slow_down (+5 s, and the AS is not polled before; retries with the
#   handle see the slowed interval): scripted at the mock, because a module
#   that keeps to the interval never provokes the mock's own slow_down (the
#   pacing check below turns that on);
# - denial (remembered), expiry (remembered for the handle; a new bare
#   request asks anew; the old handle is then stale and neither polls nor
#   disturbs the newer approval), invalid_grant (remembered: a replay);
# - 30 concurrent retries with the handle of an approved request: one 200;
# - JWT access tokens validated against the AS's JWKS when keys are
#   configured (good, and five corruptions refused: 502
#   approval_misconfigured naming the failed check, then as_token_refused
#   for the same handle), and taken as opaque without keys;
# - polls never less than an interval apart as the AS measures them (a
#   strict AS never says slow_down);
# - the placeholder of an approval being requested is given up when the
#   client goes away during the backchannel request, and when the AS's
#   answer is over subrequest_output_buffer_size (503 as_answer_too_large).
#
# Timing: the interval is 1 s.  The module's clock has whole seconds
# (ngx_time()), so it keeps a margin of one second: the next poll is
# allowed from nginx's second of the previous poll (or of the backchannel
# answer, or of a slow_down) plus the interval plus one.  Retry-After and
# "interval" still say the interval.  Flows that count polls therefore
# start right after a second begins (sync_second()), so that "within the
# interval" and "due" mean the same in nginx and here.

use strict;
use warnings;

use lib 't';

use Test::More;

use CibaTest qw(digest warm_state node_ok);

BEGIN {
    plan skip_all => 'node >= 20 is needed for the mock AS'
        unless node_ok();
    plan skip_all => 'not run under valgrind (TEST_NGINX_USE_VALGRIND)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
}

use Digest::SHA qw(sha256);
use FindBin ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use POSIX ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use MockAS;

my $AS_PORT = MockAS::free_port();
my $ISSUER = "http://127.0.0.1:$AS_PORT";
my $JSON = JSON::PP->new->canonical;

my $T0 = time;


# ---- the mock AS -------------------------------------------------------------

sub start_mock {
    eval { MockAS::start($AS_PORT); 1 } or BAIL_OUT($@);
}

sub as_call { MockAS::call(@_) }

sub as_setup { MockAS::setup(@_) }

# the requests the mock received on a path, in order
sub as_reqs { MockAS::requests(@_) }

sub as_count { MockAS::count(@_) }

# the auth_req_id of the n-th backchannel request the mock answered
sub areq_id {
    my ($n) = @_;
    my @bc = as_reqs('/bc-authorize');
    return $bc[$n // -1]{answer}{auth_req_id};
}


# ---- nginx ---------------------------------------------------------------------

my $ng = CibaNginx->new(servroot => ($ENV{TEST_NGINX_SERVROOT}
                                     || 't/servroot') . '-flow',
                        workers => 2);
my $PORT = $ng->port;

sub config {
    my (%o) = @_;
    my $state = warm_state();
    my @keys = $o{keys} ? ("ciba_key_file $o{keys};",
                           "ciba_issuer $ISSUER;",
                           'ciba_audience https://tools.example;') : ();

    $ng->write_config(http => <<"_EOC_", server => <<"_EOC_"
    ciba_zone ciba_flow:1m state=$state;

    log_format ciba_flow 'access: \$request_method \$uri status=\$status '
                         'decision=\$ciba_decision reason=\$ciba_reason '
                         'approver=\$ciba_approver ref=\$ciba_request_ref';
    access_log logs/error.log ciba_flow;
_EOC_
        location /backend {
            return 200 "upstream ran \$request_method \$arg_order\\n";
        }
_EOC_
        . MockAS::ciba_location('/tools/refund', $PORT, 'ciba_action refund;',
                                'ciba_max_pending 20;', @keys)
        . MockAS::locations($AS_PORT, 'proxy_read_timeout 5s;'));
}

sub restart {
    my (%o) = @_;
    $ng->stop;
    config(%o);
    $ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);
}

# each flow has a request of its own (order=N), so that what one leaves in
# the zone (a pending approval, a placeholder) cannot answer another
our $ORDER = 42;

# one request to the protected location: { status, headers, body, json }
sub req {
    my (%o) = @_;
    my @h = ('X-User' => $o{user} // 'alice');
    push @h, 'Approval-Handle' => $o{handle} if defined $o{handle};
    my ($status, $headers, $body) = $ng->request(
        'POST', '/tools/refund?order=' . ($o{order} // $ORDER),
        headers => \@h, body => $o{body} // '{"amount":10}');
    return { status => $status // 0, headers => $headers, body => $body,
             json => eval { JSON::PP::decode_json($body) } || {},
             time => time };
}

sub std_digest {
    my (%o) = @_;
    return digest(action => 'refund', method => 'POST',
                  path => '/tools/refund', args => 'order=' . ($o{order} // $ORDER),
                  body => $o{body} // '{"amount":10}');
}

# checks an answer of the module: status, error, reason (and more fields)
sub answer_is {
    my ($r, $status, $error, $reason, $what, %more) = @_;
    my $ok = is($r->{status}, $status, "$what: status $status");
    is($r->{json}{error}, $error, "$what: error $error");
    is($r->{json}{reason}, $reason, "$what: reason $reason");
    for my $k (sort keys %more) {
        is($r->{json}{$k}, $more{$k}, "$what: $k");
    }
    diag("answer: $r->{status} $r->{body}") unless $ok;
    return $ok;
}

sub pending_ok {
    my ($r, $reason, $what, %more) = @_;
    answer_is($r, 401, 'approval_pending', $reason, $what, %more);
    is($r->{headers}{'www-authenticate'},
       'Approval realm="ciba", error="approval_pending"',
       "$what: WWW-Authenticate");
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         "$what: Retry-After");
}

sub upstream_ok {
    my ($r, $what, $order) = @_;
    is($r->{status}, 200, "$what: 200 from the upstream")
        or diag("answer: $r->{status} $r->{body}");
    is($r->{body}, 'upstream ran POST ' . ($order // $ORDER) . "\n",
       "$what: the upstream's answer");
}

# waits until a new second has just begun
sub sync_second {
    my ($frac) = @_;
    $frac //= 0.05;
    my $t = time;
    my $target = int($t) + $frac;
    $target += 1 if $target <= $t + 0.02;
    sleep $target - $t;
    return int $target;
}

sub sleep_until { my $t = shift; my $d = $t - time; sleep $d if $d > 0 }

# the poll due after an answer that gives the interval (asked,
# authorization_pending, slow_down): allowed from nginx's whole second of
# the answer plus Retry-After (the interval) plus the one-second margin;
# nginx's second is not later than the second the answer was received in
sub wait_poll_due {
    my ($r) = @_;
    sleep_until($r->{time} + ($r->{headers}{'retry-after'} // 1) + 0.05);
}

sub ms_gaps {
    my @t = map { $_->{time} } @_;
    return map { $t[$_] - $t[$_ - 1] } 1 .. $#t;
}

sub log_has {
    my ($off, $re, $what) = @_;
    like($ng->log_since($off), $re, $what);
}

start_mock();
config();
$ng->start or BAIL_OUT('nginx did not start: ' . $ng->error);


# ---- the poll flow with the handle --------------------------------------------

subtest 'poll flow with the handle' => sub {
    local $ORDER = 1;
    as_setup();
    my $off = $ng->log_offset;
    my $s = sync_second();

    my $r = req();
    pending_ok($r, 'asked', 'first request', interval => 1,
               expires_in => 300);
    my $h = $r->{json}{approval_handle};
    like($h // '', qr/^h1\.[A-Za-z0-9_-]{100,}$/, 'a handle');
    is($r->{json}{action_digest}, std_digest(), 'the action digest');
    is(as_count('/bc-authorize'), 1, 'one backchannel request');

    # polls are paced in milliseconds from when the previous answer came
    # (the backchannel answer here): the next one is due an interval on
    my $t0 = time;

    # within the interval: from the zone, the AS is not asked
    for my $i (1 .. 4) {
        sleep_until($t0 + 0.15 * $i);
        $r = req(handle => $h);
        pending_ok($r, 'not_yet', "retry $i within the interval",
                   approval_handle => $h, interval => 1);
        is($r->{headers}{'retry-after'}, 1,
           "retry $i: Retry-After 1, to the poll");
    }
    is(as_count('/token'), 0, 'no token request within the interval');

    # an interval after the answer: polled, not approved yet
    sleep_until($t0 + 1.05);
    $r = req(handle => $h);
    my $t1 = time;
    pending_ok($r, 'authorization_pending', 'retry once the poll is due',
               approval_handle => $h, interval => 1);
    is($r->{headers}{'retry-after'}, 1, 'Retry-After is the interval');
    is(as_count('/token'), 1, 'one token request');

    as_call(POST => '/_admin/approve', { auth_req_id => areq_id() });

    # approved at the AS, but the next poll is not due yet
    $r = req(handle => $h);
    pending_ok($r, 'not_yet', 'retry right after the approval: not yet',
               approval_handle => $h, interval => 1);
    is($r->{headers}{'retry-after'}, 1,
       'not yet: Retry-After 1, to the poll (no extra second)');
    is(as_count('/token'), 1, 'still one token request');

    # exactly what Retry-After said: the poll is due
    sleep_until($t1 + 1.02);
    $r = req(handle => $h);
    upstream_ok($r, 'retry with the handle once the poll is due');

    my @tok = as_reqs('/token');
    is(scalar @tok, 2, 'two token requests');
    is_deeply([ map { $_->{form} } @tok ],
              [ ({ grant_type => 'urn:openid:params:grant-type:ciba',
                   auth_req_id => areq_id() }) x 2 ],
              'the token requests: the grant type and the auth_req_id');
    ok(!grep({ $_ < 1000 } ms_gaps(@tok)),
       'the token requests are at least an interval apart')
        or diag(join ' ', ms_gaps(@tok));
    ok($tok[0]{time} - (as_reqs('/bc-authorize'))[0]{time} >= 1000,
       'the first one at least an interval after the backchannel request');
    ok($tok[1]{answer}{access_token}, 'the AS issued the tokens');

    my $ref = encode_base64url(substr sha256("urn:ngx-ciba:request_ref\0"
                                             . areq_id()), 0, 12);
    log_has($off, qr/ciba: decision=approved reason=approved_by_as action="refund" subject="alice" approver="" jti="" kid="" alg= digest=\Q${\ std_digest()}\E request_ref=\Q$ref\E/,
            'the decision line: approved, with the request_ref');
    log_has($off, qr{access: POST /tools/refund status=200 decision=approved reason=approved_by_as approver=- ref=\Q$ref\E},
            'the access log: approved');
    unlike($ng->log_since($off), qr/\Q${\ areq_id()}\E/,
           'the auth_req_id is never logged');

    # used once: a second retry with the handle is a replay
    $r = req(handle => $h);
    answer_is($r, 403, 'approval_replayed', 'auth_req_id_replayed',
              'second retry with the same handle');
    ok(!$r->{headers}{'www-authenticate'}, '403: no WWW-Authenticate');
    is(as_count('/token'), 2, 'the replay did not ask the AS');
    log_has($off, qr/ciba: decision=replayed reason=auth_req_id_replayed .* request_ref=\Q$ref\E/,
            'the decision line: replayed');

    # the same request without the handle is a new action: asked anew
    $r = req();
    pending_ok($r, 'asked', 'a bare request after the approval');
    isnt($r->{json}{approval_handle}, $h, 'with a new handle');
    is(as_count('/bc-authorize'), 2, 'a second backchannel request');
};


# ---- bare retries ----------------------------------------------------------------

subtest 'bare retries continue the pending approval' => sub {
    local $ORDER = 2;
    as_setup();
    my $s = sync_second();

    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};

    my @reasons;
    for my $i (1 .. 10) {
        $r = req();
        push @reasons, $r->{json}{reason};
        is($r->{status}, 401, "bare retry $i: 401");
        is($r->{json}{approval_handle}, $h, "bare retry $i: the same handle");
    }
    is(as_count('/bc-authorize'), 1,
       'ten bare retries, one backchannel request');
    ok(time < $s + 1, 'the retries were within the interval');
    is_deeply(\@reasons, [ ('not_yet') x 10 ],
              'answered from the zone: not_yet');
    is(as_count('/token'), 0, 'no token request within the interval');

    as_call(POST => '/_admin/approve', { login_hint => 'alice' });
    sleep_until($s + 2.05);     # interval + 1

    $r = req();
    upstream_ok($r, 'a bare retry once approved');
    is(as_count('/token'), 1, 'one token request');
    is(as_count('/bc-authorize'), 1, 'still one backchannel request');

    $r = req();
    pending_ok($r, 'asked', 'the next bare request is a new approval');
    is(as_count('/bc-authorize'), 2, 'a second backchannel request');
};


# ---- mismatches --------------------------------------------------------------------

subtest 'a handle for another request or subject' => sub {
    local $ORDER = 3;
    as_setup();
    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};

    $r = req(handle => $h, order => 33);
    answer_is($r, 403, 'approval_mismatch', 'handle_mismatch',
              'the handle with other args',
              action_digest => std_digest(order => 33));

    $r = req(handle => $h, body => '{"amount":1000}');
    answer_is($r, 403, 'approval_mismatch', 'handle_mismatch',
              'the handle with another body');

    $r = req(handle => $h, user => 'bob');
    answer_is($r, 403, 'approval_mismatch', 'handle_mismatch',
              'the handle for another subject');

    is(as_count('/token'), 0, 'no token request for a mismatch');
    is(as_count('/bc-authorize'), 1, 'no new backchannel request');
};


# ---- slow_down ---------------------------------------------------------------------

subtest 'slow_down: the interval grows by 5 s' => sub {
    local $ORDER = 4;
    as_setup(script => { '/token' => [
        { status => 400, json => { error => 'slow_down' } },
        { status => 400, json => { error => 'slow_down' } } ] });
    my $s = sync_second();

    my $r = req();
    pending_ok($r, 'asked', 'first request', interval => 1);
    my $h = $r->{json}{approval_handle};

    sleep_until($s + 1.2);      # an interval after the answer
    $r = req(handle => $h);
    my $p = time;
    pending_ok($r, 'slow_down', 'the AS says slow_down', interval => 6);
    is($r->{headers}{'retry-after'}, 6, 'Retry-After: 1 + 5');
    is(as_count('/token'), 1, 'one token request');

    # the next poll: 6 s after the slow_down answer, no margin
    for my $t (2, 4, 5.5) {
        sleep_until($p + $t + 0.05);
        $r = req(handle => $h);
        pending_ok($r, 'not_yet', "retry at +$t s, before the new interval");
        is($r->{headers}{'retry-after'}, int(6 - $t + 0.999),
           "retry at +$t s: Retry-After counts down to the next poll");
        is($r->{json}{interval}, 6, "retry at +$t s: interval 6");
    }
    is(as_count('/token'), 1, 'the AS was not polled before the new interval');

    sleep_until($p + 6.05);
    $r = req(handle => $h);
    is($r->{json}{reason}, 'slow_down', 'polled again once 6 s passed');
    my @tok = as_reqs('/token');
    is(scalar @tok, 2, 'two token requests');
    ok((ms_gaps(@tok))[0] >= 6000,
       'the second poll came at least 6 s after the first')
        or diag(join ' ', ms_gaps(@tok));
    is($r->{json}{interval}, 11, 'a second slow_down: interval 11');
    is($r->{headers}{'retry-after'}, 11, 'a second slow_down: Retry-After 11');
};


# ---- denial -------------------------------------------------------------------------

subtest 'denied: remembered, the AS is not asked again' => sub {
    local $ORDER = 5;
    as_setup();
    my $off = $ng->log_offset;
    my $s = sync_second();

    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};

    as_call(POST => '/_admin/deny', { auth_req_id => areq_id() });
    sleep_until($s + 2.05);     # interval + 1

    $r = req(handle => $h);
    answer_is($r, 403, 'approval_denied', 'access_denied', 'retry after the denial');
    is(as_count('/token'), 1, 'one token request');
    log_has($off, qr/ciba: decision=denied reason=access_denied action="refund" subject="alice" .* request_ref=\S{16}/,
            'the decision line: denied');

    $r = req(handle => $h);
    answer_is($r, 403, 'approval_denied', 'access_denied', 'retry with the handle');
    $r = req();
    answer_is($r, 403, 'approval_denied', 'access_denied', 'a bare retry');
    sleep_until($s + 4.05);
    $r = req(handle => $h);
    answer_is($r, 403, 'approval_denied', 'access_denied',
              'retry with the handle when the next poll would be due');

    is(as_count('/token'), 1, 'the denial is remembered: no more token requests');
    is(as_count('/bc-authorize'), 1, 'and no new backchannel request');
};


# ---- expiry ------------------------------------------------------------------------

subtest 'expired: a later bare request asks anew' => sub {
    local $ORDER = 6;
    as_setup();
    my $s = sync_second();

    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h1 = $r->{json}{approval_handle};

    as_call(POST => '/_admin/expire', { auth_req_id => areq_id() });
    sleep_until($s + 2.05);     # interval + 1

    $r = req(handle => $h1);
    answer_is($r, 403, 'approval_expired', 'expired_token', 'retry after the expiry');
    is(as_count('/token'), 1, 'one token request');

    for my $i (1 .. 3) {
        $r = req(handle => $h1);
        answer_is($r, 403, 'approval_expired', 'expired_token',
                  "retry $i with the expired handle at once");
    }
    is(as_count('/token'), 1, 'no token request for them: the expiry is kept');

    $r = req();
    pending_ok($r, 'asked', 'a later bare request: a new approval');
    my $h2 = $r->{json}{approval_handle};
    isnt($h2, $h1, 'with a new handle');
    is(as_count('/bc-authorize'), 2, 'a second backchannel request');
    my $a2 = areq_id(1);

    # the old handle once more, when the newer approval's poll is due
    sleep_until($s + 4.05);
    $r = req(handle => $h1);
    answer_is($r, 403, 'approval_expired', 'stale_handle',
              'the old handle is stale: a newer approval of the same request lives');
    ok(!$r->{headers}{'www-authenticate'}, 'stale: no WWW-Authenticate');
    is(as_count('/token'), 1, 'the stale handle was not polled');

    $r = req();
    pending_ok($r, 'authorization_pending',
               'a bare retry continues the newer approval, its poll still due');
    is($r->{json}{approval_handle}, $h2, 'with its handle');
    is(as_count('/bc-authorize'), 2, 'no third backchannel request');
    my @ids = map { $_->{form}{auth_req_id} } as_reqs('/token');
    is(scalar @ids, 2, 'one token request for it');
    is($ids[-1], $a2, 'the newer approval was polled');
};


# ---- a handle the AS no longer knows ------------------------------------------------

subtest 'a handle whose auth_req_id the AS no longer knows' => sub {
    local $ORDER = 9;
    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};

    as_setup();                 # the AS forgets every auth_req_id
    wait_poll_due($r);

    $r = req(handle => $h);
    answer_is($r, 403, 'approval_replayed', 'invalid_grant',
              'retry with the handle: invalid_grant');
    for my $i (2 .. 3) {
        $r = req(handle => $h);
        answer_is($r, 403, 'approval_replayed', 'auth_req_id_replayed',
                  "retry $i with the handle: remembered as used");
    }
    ok(as_count('/token') >= 1, 'the AS was asked');
    is(as_count('/token'), 1, 'one token request for three retries');

    $r = req();
    pending_ok($r, 'asked', 'a bare request then asks anew');
    is(as_count('/bc-authorize'), 1, 'a new backchannel request');
};


# ---- concurrency --------------------------------------------------------------------

subtest '30 concurrent retries with the handle of an approved request' => sub {
    local $ORDER = 7;
    as_setup();
    my $off = $ng->log_offset;

    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};
    as_call(POST => '/_admin/approve', { auth_req_id => areq_id() });
    wait_poll_due($r);

    my @res = $ng->parallel([ map { {
        method => 'POST', uri => "/tools/refund?order=$ORDER",
        headers => [ 'X-User' => 'alice', 'Approval-Handle' => $h ],
        body => '{"amount":10}' } } 1 .. 30 ]);

    my %by;
    for my $x (@res) {
        my ($status, $headers, $body) = @$x;
        my $j = eval { JSON::PP::decode_json($body // '') } || {};
        my $kind = ($status // 0) == 200 ? '200'
                 : join ' ', $status // 'none', $j->{error} // '?',
                             $j->{reason} // '?';
        $by{$kind}++;
    }
    diag(join ', ', map { "$_: $by{$_}" } sort keys %by);
    is($by{200}, 1, 'exactly one 200');
    my $refused = grep { /^403 approval_replayed auth_req_id_replayed$/
                         || /^401 approval_pending (?:not_yet|requesting)$/ }
                  keys %by;
    is($refused + ($by{200} ? 1 : 0), scalar keys %by,
       'the others: approval_replayed or still pending');
    is(as_count('/token'), 1, 'one token request');

    # and once it is used, every retry is a replay, without asking the AS
    @res = $ng->parallel([ map { {
        method => 'POST', uri => "/tools/refund?order=$ORDER",
        headers => [ 'X-User' => 'alice', 'Approval-Handle' => $h ],
        body => '{"amount":10}' } } 1 .. 30 ]);
    my @replayed = grep { ($_->[0] // 0) == 403
                          && $_->[2] =~ /"reason":"auth_req_id_replayed"/ }
                   @res;
    is(scalar @replayed, 30, 'a second wave of 30: all approval_replayed');
    is(as_count('/token'), 1, 'still one token request');

    my @approved = $ng->log_since($off) =~ /ciba: decision=approved/g;
    is(scalar @approved, 1, 'one approved decision in the log');
    is($ng->crash_reports, '', 'no crashed worker');
};


# ---- JWT access tokens: validated with keys, opaque without ------------------------

# the mock's corruptions of the access token: the agent sent no token, so
# a token from the AS that this location's settings refuse is a
# configuration problem (or a misbehaving AS): 502 approval_misconfigured,
# with the failed check as the reason, and so for that handle from then on
my %CORRUPT = (
    'access_token.signature'             => [ 502, 'approval_misconfigured', 'bad_signature' ],
    'access_token.iss'                   => [ 502, 'approval_misconfigured', 'bad_issuer' ],
    'access_token.aud'                   => [ 502, 'approval_misconfigured', 'bad_audience' ],
    'access_token.exp'                   => [ 502, 'approval_misconfigured', 'token_expired' ],
    'access_token.authorization_details' => [ 502, 'approval_misconfigured', 'digest_mismatch' ],
);
my @CASES = ('good', sort keys %CORRUPT);

# asks once per case (each its own request: order=101...), has the mock
# approve each with its corruption, then retries them all: the answers
sub approvals {
    as_setup();
    my (%h, $last);
    for my $i (0 .. $#CASES) {
        $last = req(order => 101 + $i);
        is($last->{json}{reason}, 'asked', "$CASES[$i]: asked");
        $h{ $CASES[$i] } = $last->{json}{approval_handle};
    }
    for my $i (0 .. $#CASES) {
        as_call(POST => '/_admin/approve', {
            auth_req_id => areq_id($i),
            ($CASES[$i] eq 'good' ? () : (corrupt => $CASES[$i])) });
    }
    wait_poll_due($last);
    return map { my $r = req(order => 101 + $_, handle => $h{ $CASES[$_] });
                 $r->{handle} = $h{ $CASES[$_] };
                 ($CASES[$_] => $r) } 0 .. $#CASES;
}

subtest 'JWT access tokens: validated against the AS keys' => sub {
    my $jwks = $ng->servroot . '/state/as-jwks.json';
    my $res = HTTP::Tiny->new->get("http://127.0.0.1:$AS_PORT/jwks");
    ok($res->{success}, 'the JWKS of the AS') or return;
    open my $fh, '>', $jwks or die "$jwks: $!";
    print $fh $res->{content};
    close $fh;

    restart(keys => $jwks);
    my $off = $ng->log_offset;

    my %r = approvals();

    upstream_ok($r{good}, 'a good JWT access token', 101);
    log_has($off, qr{access: POST /tools/refund status=200 decision=approved reason=approved_by_as approver=alice ref=\S{16}},
            '$ciba_approver is the access token\'s sub');
    log_has($off, qr/ciba: decision=approved reason=approved_by_as action="refund" subject="alice" approver="alice" /,
            'the decision line names the approver');

    for my $i (1 .. $#CASES) {
        my $c = $CASES[$i];
        my ($status, $error, $reason) = @{ $CORRUPT{$c} };
        answer_is($r{$c}, $status, $error, $reason, "corrupt $c");
        log_has($off, qr/\[error\] .*ciba: the access token the authorization server issued for this approval was refused by this location's settings: \Q$reason\E; check ciba_issuer/,
                "corrupt $c: an error line");
        log_has($off, qr/ciba: decision=misconfigured reason=\Q$reason\E action="refund" subject="alice" .* request_ref=\S{16}/,
                "corrupt $c: the decision line");
        unlike($r{$c}{body}, qr/upstream ran/, "corrupt $c: not upstream");

        # the approval is redeemed at the AS: the handle keeps its answer
        my $again = req(order => 101 + $i, handle => $r{$c}{handle});
        answer_is($again, 502, 'approval_misconfigured', 'as_token_refused',
                  "corrupt $c: the same handle again");
    }
    is(as_count('/token'), scalar @CASES, 'one token request each');
    unlike($ng->log_since($off), qr/eyJ[A-Za-z0-9_-]{20,}\./,
           'no token in the logs');
};

subtest 'without keys: the same tokens are taken as opaque' => sub {
    # Without ciba_key_file the module cannot check a JWT; it accepts the
    # access token only because it came from the token endpoint, over the
    # internal location's connection, in answer to the auth_req_id of this
    # handle (its digest and subject checked): even a token whose signature,
    # iss, aud, exp or authorization_details are wrong passes.
    restart();
    my $off = $ng->log_offset;

    my %r = approvals();
    for my $i (0 .. $#CASES) {
        upstream_ok($r{ $CASES[$i] }, "$CASES[$i] token, no keys: opaque",
                    101 + $i);
    }
    my @lines = $ng->log_since($off) =~ /(ciba: decision=approved reason=approved_by_as [^,]*)/g;
    is(scalar @lines, scalar @CASES, 'approved, each');
    ok(!grep({ !/approver=""/ } @lines), 'no approver: the token is opaque');
};


# ---- pacing, abandoned and failed backchannel requests -------------------------------

subtest 'polls are an interval apart, as the AS measures it' => sub {
    local $ORDER = 8;
    # the backchannel answer comes late in a second; the agent retries
    # every 50 ms; the mock answers slow_down to a poll less than an
    # interval after the previous one (or the backchannel answer)
    as_setup(config => { slow_down => JSON::PP::true });
    my $s = sync_second(0.8);
    my $r = req();
    pending_ok($r, 'asked', 'first request');
    my $h = $r->{json}{approval_handle};
    my $bc_time = (as_reqs('/bc-authorize'))[0]{time};

    my %reasons;
    while (time < $s + 4.3) {
        $r = req(handle => $h);
        $reasons{ $r->{json}{reason} // $r->{status} }++;
        sleep 0.05;
    }
    my @tok = as_reqs('/token');
    ok(@tok >= 2, 'the token endpoint was polled twice at least')
        or diag(scalar(@tok) . ' token request(s)');

    # CIBA 7.3: at least "interval" seconds; the module's whole seconds
    # plus its margin of one keep to that
    ok(@tok && $tok[0]{time} - $bc_time >= 1000,
       'the first poll waited an interval after the backchannel answer')
        or diag('first poll after ' . (@tok ? $tok[0]{time} - $bc_time : '-')
                . ' ms');
    ok(!grep({ $_ < 1000 } ms_gaps(@tok)),
       'the polls are an interval apart')
        or diag(join ' ', ms_gaps(@tok));
    ok(!$reasons{slow_down}, 'the AS never said slow_down')
        or diag(join ', ', map { "$_: $reasons{$_}" } sort keys %reasons);
    is_deeply([ sort keys %reasons ], [ 'authorization_pending', 'not_yet' ],
              'the retries: not_yet, or authorization_pending when polled')
        or diag(join ', ', map { "$_: $reasons{$_}" } sort keys %reasons);
};

# each uses a request of its own (order=201, 202), so that a placeholder
# left behind could not answer another flow

subtest 'a client that goes away during the backchannel request' => sub {
    local $ORDER = 201;
    as_setup(script => { '/bc-authorize' => [ { delay_ms => 1500 } ] });
    my $off = $ng->log_offset;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $PORT, Proto => 'tcp')
        or die "connect: $!";
    print $sock "POST /tools/refund?order=$ORDER HTTP/1.1\r\nHost: localhost\r\n"
              . "X-User: alice\r\nContent-Length: 13\r\n"
              . "Connection: close\r\n\r\n{\"amount\":10}";
    sleep 0.3;
    close $sock;
    sleep 1.6;      # the AS has answered by now

    is(as_count('/bc-authorize'), 1, 'the backchannel request was sent');
    my $r = req();
    # the placeholder ("requesting") was given up with the request: the
    # next request asks anew instead of waiting for it to expire (60 s)
    pending_ok($r, 'asked', 'the next request asks anew');
    ok(defined $r->{json}{approval_handle}, 'with a handle');
    is(as_count('/bc-authorize'), 2, 'a second backchannel request');
    unlike($ng->log_since($off), qr/reason=requesting/,
           'no answer "requesting"');
};

subtest 'a 10 MiB answer to the backchannel request' => sub {
    local $ORDER = 202;
    as_setup(script => { '/bc-authorize' => [ { fault => 'huge' } ] });
    my $off = $ng->log_offset;
    my $r = req();
    answer_is($r, 503, 'approval_unavailable', 'as_answer_too_large',
              'an answer over subrequest_output_buffer_size');
    is($r->{headers}{'retry-after'}, 5, 'Retry-After');
    log_has($off, qr/ciba: the authorization server's answer to "\/_as\/bc" \(status 200\) is 10485760 bytes, over the subrequest_output_buffer_size/,
            'the module says why');
    log_has($off, qr/ciba: decision=unavailable reason=as_answer_too_large action="refund" subject="alice" /,
            'the decision line: unavailable, as_answer_too_large');

    # and no placeholder is left ("requesting", for 60 s)
    $r = req();
    pending_ok($r, 'asked', 'the next request asks anew');
    is(as_count('/bc-authorize'), 2, 'a second backchannel request');
};


is($ng->crash_reports, '', 'no worker crashed');
$ng->stop;

note(sprintf 'took %.1f s', time - $T0);

done_testing();
