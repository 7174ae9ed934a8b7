# CIBA push mode against the mock AS (t/fixtures/mock-as/mock-as.mjs), README
# "Asking the human" and the rows of "ciba_delivery push" and
# "ciba_callback":
#
# - a bare request is pending with a handle; the backchannel form carries a
#   fresh client_notification_token (256 bits, 43 base64url characters);
#   retries stay pending and the token endpoint is never asked, not even
#   after several intervals;
# - the AS pushes the tokens to the callback (204); the next retry, with
#   the handle or bare, goes upstream once (approved_by_as, $ciba_approver
#   = the access token's sub); a second retry is approval_replayed, and a
#   second push of the same tokens is not taken (400);
# - pushed tokens whose id_token does not verify (at_hash, auth_req_id,
#   signature, iss, aud, exp, iat, kid) are refused with 400 and an error
#   line "pushed tokens refused: <reason>", and the approval stays pending;
# - a wrong bearer is 401 and stores nothing; a push without id_token or
#   access_token is 400;
# - pushed errors: access_denied and transaction_failed end the approval as
#   denied, expired_token as expired (a later bare request asks anew);
# - a callback location without ciba_client_id answers pushed tokens 500
#   with an error line naming the directives it needs;
# - the pushed access token is validated when keys are configured: a wrong
#   aud, a bad signature or a tampered binding is refused on the retry.
#
# Plain Perl (not a data-driven Test::Nginx file): the mock AS must run
# beside nginx, and the tests drive both in turn.  Ports: nginx on
# TEST_NGINX_SERVER_PORT (19980 by default here), a second server block
# on port + 1 (a callback without ciba_client_id), the mock on port + 10.
use strict;
use warnings;

use lib 't';

use Test::More;

BEGIN {
    my $v = `node --version 2>/dev/null` // '';
    plan skip_all => 'node is missing' if $? != 0 || $v !~ /^v(\d+)\./;
    plan skip_all => "node $v is older than 20" if $1 < 20;
}

use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);
use MockAS;

$ENV{TEST_NGINX_SERVER_PORT} //= '127.0.0.1:19980';
$ENV{TEST_NGINX_SERVROOT}    //= 't/servroot-g';

my $T0 = time;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $port2 = $port + 1;              # the callback without ciba_client_id
my $mport = $port + 10;             # the mock AS

my $JSON = JSON::PP->new->canonical;
my $MBASE = "http://127.0.0.1:$mport";
my $CB = "http://127.0.0.1:$port/_ciba/cb";
my $CB_NOCID = "http://127.0.0.1:$port2/_ciba/cb";
my $BASIC = encode_base64('push-client:push-secret', '');

my $PATH = '/tools/refund';
my $BODY = '{"reason":"duplicate charge"}';

# ---- the mock AS -----------------------------------------------------------

sub start_mock {
    MockAS::start($mport, stderr => $ng->servroot . '/logs/mock-as.log',
                  verbose => 1);
    return;
}

sub mock {
    my ($method, $path, $data) = @_;
    my $http = HTTP::Tiny->new(timeout => 15, keep_alive => 0,
                               max_redirect => 0);
    my $r = $http->request($method, "$MBASE$path", {
        headers => { 'Content-Type' => 'application/json' },
        defined $data ? (content => $JSON->encode($data)) : () });
    $r->{json} = eval { $JSON->decode($r->{content}) };
    return $r;
}

sub adm {
    my ($what, $data) = @_;
    my $r = mock(defined $data ? 'POST' : 'GET', "/_admin/$what", $data);
    die "mock admin $what: $r->{status} $r->{content}\n"
        if $r->{status} != 200;
    return $r->{json};
}

sub counts {
    my $c = adm('requests')->{counts} || {};
    return ($c->{'/bc-authorize'} // 0, $c->{'/token'} // 0);
}

# the mock's view of the latest backchannel request: (auth_req_id,
# client_notification_token, the logged request)
sub last_bc {
    my $reqs = adm('requests?path=/bc-authorize')->{requests};
    my $last = $reqs->[-1] or return;
    return ($last->{answer} && $last->{answer}{auth_req_id},
            $last->{form}{client_notification_token}, $last);
}


# ---- nginx -----------------------------------------------------------------

sub write_config {
    my $keys = $ng->servroot . '/conf/mock-jwks.json';
    my $state = warm_state();
    my $iss = "http://127.0.0.1:$mport";

    $ng->write_config(
        http => <<"_EOC_",
    ciba_zone ciba:1m state=$state;

    server {
        listen 127.0.0.1:$port2;
        server_name nocid;

        ciba_key_file $keys;
        ciba_issuer $iss;

        location = /_ciba/cb {
            ciba_callback;
        }
    }
_EOC_
        server => <<"_EOC_");
        ciba_key_file $keys;
        ciba_issuer $iss;
        ciba_audience https://tools.example;
        ciba_client_id push-client;

        location = /_ciba/cb {
            ciba_callback;
        }

        location = $PATH {
            ciba on;
            ciba_action refund;
            ciba_backchannel_endpoint /_ciba/bc;
            ciba_token_endpoint /_ciba/token;
            ciba_login_hint \$http_x_user;
            ciba_delivery push;
            ciba_max_pending 100;
            proxy_set_header X-Approver \$ciba_approver;
            proxy_set_header X-Decision \$ciba_decision;
            proxy_pass http://127.0.0.1:$port/backend;
        }

        location = /backend {
            return 200 "upstream ran approver=\$http_x_approver decision=\$http_x_decision\\n";
        }

        location = /_ciba/bc {
            internal;
            proxy_pass $iss/bc-authorize;
            proxy_set_header Authorization "Basic $BASIC";
            proxy_read_timeout 5s;
        }

        location = /_ciba/token {
            internal;
            proxy_pass $iss/token;
            proxy_set_header Authorization "Basic $BASIC";
            proxy_read_timeout 5s;
        }
_EOC_
}

# a request to the protected location for order $n; handle => $h adds the
# approval handle.  Returns { status, headers, body, json }.
sub call {
    my ($n, %o) = @_;
    my @h = ('X-User' => $o{user} // 'alice',
             'Content-Type' => 'application/json');
    push @h, 'Approval-Handle' => $o{handle} if defined $o{handle};
    my ($status, $headers, $body) =
        $ng->request('POST', "$PATH?order=$n&amount=10", headers => \@h,
                     body => $BODY);
    my $json = eval { $JSON->decode($body) };
    return { status => $status // 'none', headers => $headers,
             body => $body // '', json => $json };
}

# expect($res, 200 | [ $status, $error, $reason ], $name)
sub expect {
    my ($res, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;

    if (!ref $want) {
        return like("$res->{status} $res->{body}",
                    qr/^$want upstream ran approver=\S+ decision=approved\n\z/,
                    $name);
    }

    my $j = $res->{json} || {};
    return is(join(' ', $res->{status}, $j->{error} // '-',
                   $j->{reason} // '-'),
              join(' ', @$want), $name) || diag $res->{body};
}

my $PENDING = [ 401, 'approval_pending', 'authorization_pending' ];
my $ASKED   = [ 401, 'approval_pending', 'asked' ];

# starts an approval for order $n: (handle, auth_req_id, notification token)
sub ask {
    my ($n, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = call($n);
    expect($r, $ASKED, "$name: pending");
    my ($id, $cnt) = last_bc();
    my $handle = $r->{json} && $r->{json}{approval_handle};
    ok(defined $handle && length $handle, "$name: a handle");
    return ($handle, $id, $cnt);
}

# a push of $json to the callback with bearer $cnt, by the mock
sub push_raw {
    my ($cnt, $json, %o) = @_;
    my $n = adm('notify', { url => $o{url} // $CB,
                            headers => { Authorization => "Bearer $cnt" },
                            json => $json });
    return $n;
}

# approve through the mock; returns the mock's answer (its "notification"
# is what the callback answered)
sub approve {
    my ($id, %o) = @_;
    return adm('approve', { auth_req_id => $id, %o });
}

sub cb_is {
    my ($note, $status, $error, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $body = $note->{body} // '';
    my ($got) = $body =~ /"error":"([^"]*)"/;
    is(join(' ', $note->{status} // 'none', $got // '-'),
       join(' ', $status, $error // '-'), $name)
        or diag explain $note;
}


# ---- setup -------------------------------------------------------------------

start_mock();

adm('config', { clients => { 'push-client' => { callback => $CB } },
                interval => 1,
                users => { alice => { sub => 'user-alice' },
                           bob => { sub => 'user-bob' } } });

{
    my $r = mock('GET', '/jwks');
    die "mock /jwks: $r->{status}\n" if $r->{status} != 200;
    open my $fh, '>', $ng->servroot . '/conf/mock-jwks.json' or die $!;
    print $fh $r->{content};
    close $fh;
}

write_config();
ok($ng->start, 'nginx starts with a push-mode location and two callbacks')
    or BAIL_OUT('nginx did not start: ' . $ng->error);


# ---- pending, no polling -----------------------------------------------------

my ($h1, $id1, $cnt1);

{
    my $off = $ng->log_offset;
    my $r = call(1);
    expect($r, $ASKED, 'bare request: pending');
    $h1 = $r->{json}{approval_handle};
    like($h1 // '', qr/^h1\./, 'the pending answer carries an approval handle');
    is($r->{json}{interval}, 1, 'interval from the AS');
    ok(($r->{json}{expires_in} // 0) > 0, 'expires_in');
    is($r->{headers}{'retry-after'}, 1, 'Retry-After: the interval');
    like($r->{headers}{'www-authenticate'} // '',
         qr/error="approval_pending"/, 'WWW-Authenticate');
    like($ng->log_since($off),
         qr/decision=pending reason=asked action="refund" subject="alice"/,
         'decision line: pending asked');

    my ($id, $cnt, $req) = last_bc();
    $id1 = $id;
    $cnt1 = $cnt;
    ok(defined $id1, 'the mock knows the auth_req_id');
    like($cnt1 // '', qr/^[A-Za-z0-9_-]{43}\z/,
         'client_notification_token: 43 base64url characters (256 bits)');
    is($req->{client_id}, 'push-client', 'sent as push-client');
    is($req->{status}, 200, 'the mock accepted the backchannel request');

    my ($bc, $tok) = counts();
    is("$bc $tok", '1 0', 'mock: one backchannel request, no token request');
}

{
    expect(call(1, handle => $h1), $PENDING, 'retry with the handle: pending');
    expect(call(1), $PENDING, 'bare retry: pending (the same approval)');

    # several intervals (of 1 s): a poll-mode client would have polled
    sleep 2.2;
    expect(call(1, handle => $h1), $PENDING,
           'retry after two intervals: pending');
    sleep 1.1;
    expect(call(1), $PENDING, 'bare retry after three intervals: pending');

    my ($bc, $tok) = counts();
    is("$bc $tok", '1 0',
       'mock: still one backchannel request and no token request');
}


# ---- the push, and the one pass ----------------------------------------------

my $pushed1;

{
    my $off = $ng->log_offset;
    my $a = approve($id1);
    cb_is($a->{notification}, 204, undef, 'push of the tokens: 204');
    $pushed1 = $a->{notification}{sent}{json};
    ok($pushed1 && $pushed1->{access_token} && $pushed1->{id_token},
       'the mock pushed an access token and an id_token');
    like($ng->log_since($off), qr/tokens pushed, the approval is ready/,
         'error log: tokens pushed');

    # a second push before the retry: the first one stays
    my $n = push_raw($cnt1, $pushed1);
    cb_is($n, 400, 'invalid_request',
          'the same tokens pushed again before the retry: 400');

    $off = $ng->log_offset;
    my $r = call(1, handle => $h1);
    expect($r, 200, 'retry with the handle after the push: upstream, once');
    like($r->{body}, qr/approver=user-alice /,
         '$ciba_approver: the access token\'s sub');
    like($ng->log_since($off),
         qr/decision=approved reason=approved_by_as action="refund" subject="alice" approver="user-alice" jti="[^"]+" kid="[^"]+" alg=ES256 digest=\S+ request_ref=[A-Za-z0-9_-]{16}/,
         'decision line: approved_by_as, approver, request_ref');

    expect(call(1, handle => $h1),
           [ 403, 'approval_replayed', 'auth_req_id_replayed' ],
           'a second retry with the handle: replayed');

    # the approval is over: its notification token is no longer known
    $n = push_raw($cnt1, $pushed1);
    cb_is($n, 401, 'invalid_token',
          'the same tokens pushed again after the pass: 401');

    expect(call(1, handle => $h1),
           [ 403, 'approval_replayed', 'auth_req_id_replayed' ],
           'and still no second pass');

    my ($bc, $tok) = counts();
    is("$bc $tok", '1 0', 'mock: no token request in the whole flow');
}

# bare retries: the approval is found by (subject, digest)
{
    my ($h, $id, $cnt) = ask(2, 'bare flow');
    my $a = approve($id);
    cb_is($a->{notification}, 204, undef, 'bare flow: push 204');

    my $off = $ng->log_offset;
    expect(call(2), 200, 'bare flow: a bare retry goes upstream');
    like($ng->log_since($off),
         qr/decision=approved reason=approved_by_as .*approver="user-alice"/,
         'bare flow: decision line');

    expect(call(2, handle => $h),
           [ 403, 'approval_replayed', 'auth_req_id_replayed' ],
           'bare flow: the handle afterwards is replayed');

    # the approval is done: a new bare request asks the human again
    my ($bc0) = counts();
    expect(call(2), $ASKED, 'bare flow: the next bare request asks anew');
    my ($bc1, $tok) = counts();
    is($bc1 - $bc0, 1, 'bare flow: one more backchannel request');
    is($tok, 0, 'bare flow: no token request');
}

# two retries at once after a push: exactly one passes
{
    my ($h, $id, $cnt) = ask(3, 'concurrent');
    cb_is(approve($id)->{notification}, 204, undef, 'concurrent: push 204');

    my @req = map { {
        method => 'POST', uri => "$PATH?order=3&amount=10", body => $BODY,
        headers => [ 'X-User' => 'alice', 'Content-Type' => 'application/json',
                     'Approval-Handle' => $h ],
    } } 1 .. 8;
    my @res = $ng->parallel(\@req);
    my $ok = grep { ($_->[0] // 0) == 200 } @res;
    my $other = grep { ($_->[0] // 0) == 401 || ($_->[0] // 0) == 403 } @res;
    is($ok, 1, 'concurrent: exactly one of 8 retries passes');
    is($other, 7, 'concurrent: the others are pending or replayed');
    expect(call(3, handle => $h),
           [ 403, 'approval_replayed', 'auth_req_id_replayed' ],
           'concurrent: afterwards replayed');
}


# ---- pushes that must not be taken ------------------------------------------

my %REASON = (
    at_hash     => 'id_token_at_hash_mismatch',
    auth_req_id => 'id_token_auth_req_id_mismatch',
    signature   => 'id_token_bad_signature',
    iss         => 'id_token_bad_issuer',
    aud         => 'id_token_bad_audience',
    exp         => 'id_token_expired',
    iat         => 'id_token_expired',
    kid         => 'unknown_kid',
);

my $order = 10;

for my $c (qw(at_hash auth_req_id signature iss aud exp iat kid)) {
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, "corrupt $c");

    my $off = $ng->log_offset;
    my $a = approve($id, corrupt => $c);
    cb_is($a->{notification}, 400, 'invalid_request',
          "corrupt $c: the callback refuses the push");
    like($ng->log_since($off),
         qr/\[error\].*ciba: pushed tokens refused: \Q$REASON{$c}\E,/,
         "corrupt $c: error line, reason $REASON{$c}");

    $off = $ng->log_offset;
    expect(call($n, handle => $h), $PENDING,
           "corrupt $c: the retry is still pending");
    expect(call($n), $PENDING, "corrupt $c: a bare retry too");
    unlike($ng->log_since($off), qr/decision=approved/,
           "corrupt $c: never approved");

    next unless $c eq 'at_hash';

    # the refused push stored nothing: the right tokens are then taken
    $a = approve($id, force => JSON::PP::true);
    cb_is($a->{notification}, 204, undef,
          'corrupt at_hash: a correct push afterwards: 204');
    expect(call($n, handle => $h), 200,
           'corrupt at_hash: then the retry passes');
}

# the wrong bearer, a missing bearer, another approval's bearer
{
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, 'bearer');
    my ($h2, $id2, $cnt2) = ask($order++, 'bearer (other)');

    my $off = $ng->log_offset;
    my $a = approve($id, notification_token => 'wrong');
    cb_is($a->{notification}, 401, 'invalid_token',
          'wrong bearer: 401');
    like($a->{notification}{headers}{'www-authenticate'} // '',
         qr/^Bearer error="invalid_token"/, 'wrong bearer: WWW-Authenticate');
    like($ng->log_since($off),
         qr/\[warn\].*a notification with a wrong token or for an unknown approval was refused/,
         'wrong bearer: warn line');
    expect(call($n, handle => $h), $PENDING, 'wrong bearer: nothing stored');

    my $tokens = $a->{tokens};

    my $r = adm('notify', { url => $CB,
                            json => { auth_req_id => $id, %$tokens } });
    cb_is($r, 401, 'invalid_token', 'no Authorization: 401');

    $r = adm('notify', { url => $CB,
                         headers => { Authorization => "Basic $BASIC" },
                         json => { auth_req_id => $id, %$tokens } });
    cb_is($r, 401, 'invalid_token', 'Basic instead of Bearer: 401');

    $r = push_raw($cnt2, { auth_req_id => $id, %$tokens });
    cb_is($r, 401, 'invalid_token', 'another approval\'s bearer: 401');

    $r = push_raw($cnt, { auth_req_id => 'no-such-id', %$tokens });
    cb_is($r, 401, 'invalid_token', 'an unknown auth_req_id: 401');

    # missing pieces
    $r = push_raw($cnt, { auth_req_id => $id,
                          access_token => $tokens->{access_token},
                          token_type => 'Bearer' });
    cb_is($r, 400, 'invalid_request', 'push without id_token: 400');

    $r = push_raw($cnt, { auth_req_id => $id, access_token => '',
                          id_token => $tokens->{id_token} });
    cb_is($r, 400, 'invalid_request', 'push with an empty access_token: 400');

    $r = push_raw($cnt, { auth_req_id => $id, access_token => 42,
                          id_token => $tokens->{id_token} });
    cb_is($r, 400, 'invalid_request', 'push with a numeric access_token: 400');

    # an id_token alone is a push, incomplete: refused, not taken for a ping
    $r = push_raw($cnt, { auth_req_id => $id,
                          id_token => $tokens->{id_token},
                          token_type => 'Bearer' });
    cb_is($r, 400, 'invalid_request', 'push without access_token: 400');

    $r = adm('notify', { url => $CB,
                         headers => { Authorization => "Bearer $cnt" },
                         body => 'not json' });
    cb_is($r, 400, 'invalid_request', 'a body that is not JSON: 400');

    $r = adm('notify', { url => $CB, method => 'GET',
                         headers => { Authorization => "Bearer $cnt" } });
    is($r->{status}, 405, 'GET on the callback: 405');

    expect(call($n, handle => $h), $PENDING,
           'after the bad pushes: still pending');

    $a = approve($id, force => JSON::PP::true);
    cb_is($a->{notification}, 204, undef,
          'then the right bearer with the tokens: 204');
    expect(call($n, handle => $h), 200, 'and the retry passes');
}


# ---- pushed errors ------------------------------------------------------------

for my $err (qw(access_denied transaction_failed)) {
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, $err);

    my $off = $ng->log_offset;
    my $a = adm('deny', { auth_req_id => $id, error => $err });
    cb_is($a->{notification}, 204, undef, "$err pushed: 204");
    is($a->{notification}{sent}{json}{error}, $err, "$err: the pushed error");
    like($ng->log_since($off), qr/pushed an error, the approval ended/,
         "$err: info line");

    $off = $ng->log_offset;
    expect(call($n, handle => $h),
           [ 403, 'approval_denied', 'access_denied' ],
           "$err: the retry is denied");
    like($ng->log_since($off), qr/decision=denied reason=access_denied/,
         "$err: decision line");
    expect(call($n), [ 403, 'approval_denied', 'access_denied' ],
           "$err: a bare retry is denied too");
}

{
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, 'expired_token');

    my $a = adm('expire', { auth_req_id => $id });
    cb_is($a->{notification}, 204, undef, 'expired_token pushed: 204');
    is($a->{notification}{sent}{json}{error}, 'expired_token',
       'expired_token: the pushed error');

    expect(call($n, handle => $h),
           [ 403, 'approval_expired', 'expired_token' ],
           'expired_token: the retry with the handle is expired');

    my ($bc0, $tok0) = counts();
    expect(call($n), $ASKED,
           'expired_token: a later bare request starts a new approval');
    my ($bc1, $tok1) = counts();
    is($bc1 - $bc0, 1, 'expired_token: a second backchannel request');
    is($tok1, 0, 'expired_token: no token request');
}

# an approval that ended as expired stays ended, even if tokens come later
{
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, 'expired, then tokens');
    cb_is(adm('expire', { auth_req_id => $id })->{notification}, 204, undef,
          'expired, then tokens: expired_token pushed');
    my $a = approve($id, force => JSON::PP::true);
    cb_is($a->{notification}, 401, 'invalid_token',
          'expired, then tokens: the late push is refused');
    my $r = call($n, handle => $h);
    expect($r, [ 403, 'approval_expired', 'expired_token' ],
           'expired, then tokens: the retry with the handle is expired');
}


# ---- a callback that cannot verify the id_token -----------------------------

{
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, 'no client_id');

    my $off = $ng->log_offset;
    my $a = approve($id, callback => $CB_NOCID);
    is($a->{notification}{status}, 500,
       'callback without ciba_client_id: pushed tokens get 500');
    like($ng->log_since($off),
         qr/\[error\].*pushed tokens need "ciba_key_file", "ciba_issuer" and "ciba_client_id" in the callback location/,
         'no client_id: the error line names the directives');
    expect(call($n, handle => $h), $PENDING, 'no client_id: still pending');

    # a ping to that callback works: only pushes need the keys
    my $r = push_raw($cnt, { auth_req_id => $id }, url => $CB_NOCID);
    cb_is($r, 204, undef, 'no client_id: a bare notification is 204');

    $a = approve($id, force => JSON::PP::true);
    cb_is($a->{notification}, 204, undef,
          'no client_id: the push to the configured callback: 204');
    expect(call($n, handle => $h), 200, 'no client_id: then it passes');
}


# ---- the pushed access token is validated ------------------------------------

# the agent sent no token: the AS's tokens refused by this location's
# settings are a configuration problem, 502, the failed check the reason
my %AT = (
    'access_token.aud'       => [ 502, 'approval_misconfigured', 'bad_audience' ],
    'access_token.signature' => [ 502, 'approval_misconfigured', 'bad_signature' ],
    'access_token.iss'       => [ 502, 'approval_misconfigured', 'bad_issuer' ],
    'access_token.authorization_details'
                             => [ 502, 'approval_misconfigured', 'digest_mismatch' ],
);

for my $c ('access_token.aud', 'access_token.signature', 'access_token.iss',
           'access_token.authorization_details')
{
    my $n = $order++;
    my ($h, $id, $cnt) = ask($n, $c);

    # the mock's configuration: every token issued from now on
    adm('config', { corrupt => [ $c ] });
    my $a = approve($id);
    adm('config', { corrupt => [] });

    cb_is($a->{notification}, 204, undef,
          "$c: the push is taken (the id_token verifies)");

    my $off = $ng->log_offset;
    expect(call($n, handle => $h), $AT{$c}, "$c: the retry is refused");
    my $log = $ng->log_since($off);
    like($log, qr/the access token the authorization server issued for this approval was refused by this location's settings: \Q$AT{$c}[2]\E/,
         "$c: error line");
    unlike($log, qr/decision=approved/, "$c: not approved");

    # the pushed token was taken once: the approval never passes now
    # (the handle is answered pending until it expires)
    my $r = call($n, handle => $h);
    isnt($r->{status}, 200, "$c: a second retry with the handle never passes");
    $r = call($n);
    isnt($r->{status}, 200, "$c: nor a bare retry");
}

{
    my ($bc, $tok) = counts();
    is($tok, 0, 'mock: no token-endpoint request in the whole file');
}

is($ng->crash_reports, '', 'no crashed worker');
ok($ng->stop, 'nginx stops');

diag sprintf 'run time %.1f s', time - $T0 if $ENV{TEST_VERBOSE};

done_testing;
