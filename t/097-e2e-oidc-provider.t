# End to end against a real authorization server: npm oidc-provider 9.13.x
# as the development AS (tools/dev-as/dev-as.mjs), nginx with the module as
# its CIBA client, in poll mode (client nginx-poll) and ping mode (client
# nginx-ping, the ping arriving at a "ciba_callback" location over TLS).
#
# In each mode:
# - a request is answered 401 approval_pending with a handle; the binding
#   message ("Refund 30 EUR on order X": $ciba_arg_NAME, spaces) and the
#   authorization_details (type nginx_ciba_action, the action, method,
#   path, the decoded arguments, the body's SHA-256, and the action digest
#   as identifier) are what the AS shows as pending; a bare retry
#   continues the same approval (one backchannel request at the AS);
# - approved at the AS (/admin/approve: backchannelResult with the RAR
#   details): the retry with the handle (poll: once the interval has
#   passed, 5 s because oidc-provider sends no interval; ping: at once,
#   the AS having pinged) goes upstream, decision approved, $ciba_approver
#   the sub of alice; the JWT access token (ES256, validated with the JWKS
#   fetched from the AS's /jwks) carries the binding; a second redemption
#   with the same handle is 403 approval_replayed, and the AS itself
#   refuses a second token exchange for that auth_req_id (invalid_grant);
# - denied at the AS (/admin/deny): 403 approval_denied;
# - requested_expiry 3 s (oidc-provider honours it): 403 approval_expired,
#   and a later bare request starts a new approval.
# Then what the AS is shown for harder arguments: percent-encoded and "+"
# decoded (UTF-8 too) in request order, a repeated name as an array
# (ciba_duplicate_args keep), more than 32 arguments (args_truncated),
# markup in an argument (in "args" as sent, "_" in the binding message),
# an operator's field (ciba_authorization_detail uri ...).  And the
# development AS's own rules: binding messages with spaces accepted,
# markup or more than 64 characters refused (invalid_binding_message),
# malformed args or body_sha256 refused (invalid_authorization_details).
# It prints (diag) what each AS round trip cost: the elapsed time of the
# nginx request that made it, the subrequest's $upstream_response_time,
# and the AS's own processing time.
#
# Plain Perl (not a data-driven Test::Nginx file).  Needs node >= 20 and
# the development AS's packages (make deps, i.e. "npm ci" in tools/dev-as);
# skipped otherwise.  Ports: nginx on TEST_NGINX_SERVER_PORT, the TLS
# callback server on the next port, the AS on a free port (--port 0).
use strict;
use warnings;

use lib 't';

use Test::More;

use DevAS;

BEGIN {
    plan skip_all => 'timing-based (approval expiry, intervals): not run '
                     . 'under valgrind (TEST_NGINX_USE_VALGRIND is set)'
        if $ENV{TEST_NGINX_USE_VALGRIND};
    my @missing = DevAS::missing();
    plan skip_all => 'missing: ' . join(', ', @missing)
                     . ' (run "make deps")'
        if @missing;
}

use Digest::SHA qw(sha256_hex);
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64url);
use Time::HiRes qw(sleep time);

use CibaNginx;
use CibaTest qw(warm_state);

plan skip_all => 'openssl (the command) is missing'
    if system('openssl version > /dev/null 2>&1') != 0;

my $JSON = JSON::PP->new->canonical->allow_nonref;
my $T0 = time;

my $ng = CibaNginx->new(workers => 2);
my $port = $ng->port;
my $cbport = $port + 1;
my $root = $ng->servroot;
my $acclog = "$root/logs/access.log";
my $aslog = "$root/logs/as.log";
my $AUD = 'https://tools.example';


# ---- a certificate for the TLS callback server -------------------------------

my $cert = "$root/conf/callback.crt";
my $key = "$root/conf/callback.key";

system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
       . "-nodes -days 1 -subj /CN=127.0.0.1 "
       . "-addext subjectAltName=IP:127.0.0.1 "
       . "-keyout '$key' -out '$cert' 2>/dev/null") == 0
    or BAIL_OUT('openssl could not make a certificate');


# ---- the development AS ------------------------------------------------------

# the callback's self-signed certificate is trusted by node
my $AS = eval {
    DevAS::start(log => "$root/logs/dev-as.log",
                 args => [ '--audience', $AUD, '--ping-callback',
                           "https://127.0.0.1:$cbport/_ciba/ping",
                           '--verbose' ],
                 env => { NODE_EXTRA_CA_CERTS => $cert });
} or BAIL_OUT($@);
my $asport = $DevAS::Port;

sub as { return DevAS::call(@_) }

sub as_counts { return as(GET => '/admin/stats')->{counts} }

my %SUB = DevAS::subs();

ok $SUB{alice} && $SUB{bob}, 'the AS has alice and bob'
    or BAIL_OUT('no demo users');

# the AS's discovery document and keys
my $jwks_file = "$root/conf/as-jwks.json";
{
    my $disc = as(GET => '/.well-known/openid-configuration');
    is $disc->{issuer}, $AS, 'discovery: issuer';
    is $disc->{backchannel_authentication_endpoint}, "$AS/backchannel",
        'discovery: backchannel endpoint';
    is_deeply $disc->{backchannel_token_delivery_modes_supported},
        ['poll', 'ping'], 'discovery: poll and ping (oidc-provider has no push)';
    is_deeply $disc->{authorization_details_types_supported},
        ['nginx_ciba_action'], 'discovery: the RAR type';

    my $res = DevAS::save_jwks($jwks_file);
    is $res->{status}, 200, '/jwks';
    my $jwks = eval { $JSON->decode($res->{content}) } // {};
    my ($k) = @{ $jwks->{keys} // [] };
    ok $k && $k->{kty} eq 'EC' && $k->{crv} eq 'P-256' && !exists $k->{d},
        '/jwks: one public EC P-256 key';
}

# client_secret_post (client nginx-post), straight to the AS: an answer
# without "interval" (oidc-provider never sends one)
{
    my $res = DevAS::form('/backchannel', {
        client_id => 'nginx-post', client_secret => 'post-secret',
        scope => 'openid', login_hint => 'bob',
        binding_message => 'Direct check: 30 EUR, order A17 (ok)' });
    is $res->{status}, 200, 'AS, client_secret_post: backchannel request';
    my $j = eval { $JSON->decode($res->{content}) } // {};
    ok $j->{auth_req_id} && $j->{expires_in} && !exists $j->{interval},
        'AS: auth_req_id, expires_in, no interval' or diag $res->{content};
    my ($st) = as(POST => '/admin/deny', { auth_req_id => $j->{auth_req_id} });
    is $st, 200, 'AS: denied (clean up)';
}

# the development AS's binding message and authorization_details rules
{
    my $ad = sub {
        return $JSON->encode([ { type => 'nginx_ciba_action',
            actions => ['refund'],
            identifier => 'uEWPVbMc1DJRgNm6CWAdhXMDfzdUfKij4fUkDBCmWwg',
            method => 'POST', path => '/tools/refund', @_ } ]);
    };
    my @cases = (
        [ 'Refund 30 EUR on order A17', undef, 200, undef,
          'spaces and punctuation' ],
        [ 'Refund <30> EUR', undef, 400, 'invalid_binding_message',
          'markup in the binding message' ],
        [ 'x' x 65, undef, 400, 'invalid_binding_message',
          'a binding message of 65 characters' ],
        [ '   ', undef, 400, 'invalid_binding_message',
          'a binding message of spaces only' ],
        [ 'ok', $ad->(args => { order => 'A17', tag => [ 'a', 'b' ] },
                      args_truncated => JSON::PP::true(),
                      body_sha256 => 'ab' x 32, uri => 'https://x/y'),
          200, undef, 'args, args_truncated, body_sha256, an extra field' ],
        [ 'ok', $ad->(args => { amount => 30 }), 400,
          'invalid_authorization_details', 'a number in args' ],
        [ 'ok', $ad->(args => [ 'amount=30' ]), 400,
          'invalid_authorization_details', 'args as an array' ],
        [ 'ok', $ad->(args => { tag => [] }), 400,
          'invalid_authorization_details', 'an empty array in args' ],
        [ 'ok', $ad->(body_sha256 => 'AB' x 32), 400,
          'invalid_authorization_details', 'body_sha256 in uppercase' ],
    );
    for my $c (@cases) {
        my ($bm, $details, $status, $error, $name) = @$c;
        my $res = DevAS::form('/backchannel', {
            scope => 'openid', login_hint => 'bob', binding_message => $bm,
            defined $details ? (authorization_details => $details) : () },
            Authorization => 'Basic '
                             . encode_base64('nginx-poll:poll-secret', ''));
        my $j = eval { $JSON->decode($res->{content}) } // {};
        is $res->{status}, $status, "AS rule: $name: $status"
            or diag $res->{content};
        is $j->{error}, $error, "AS rule: $name: "
                                . ($error // 'accepted');
        as(POST => '/admin/deny', { auth_req_id => $j->{auth_req_id} })
            if $j->{auth_req_id};
    }
}


# ---- nginx -------------------------------------------------------------------

my $state = warm_state();
my %BASIC = (poll => encode_base64('nginx-poll:poll-secret', ''),
             ping => encode_base64('nginx-ping:ping-secret', ''));

sub as_locations {
    my ($mode) = @_;
    return DevAS::locations("/_ciba/$mode-", $BASIC{$mode},
                            'log_subrequest on;', "access_log $aslog as;");
}

# /MODE/refund: the default requested expiry (300 s);
# /MODE/short:  requested_expiry 3 s;
# /poll/args:   repeated argument names kept, an operator's field
sub protected {
    my ($mode, $name, @extra) = @_;
    return DevAS::refund_location("= /$mode/$name", $port, delivery => $mode,
                                  prefix => "/_ciba/$mode-",
                                  directives => \@extra);
}

$ng->write_config(
    http => DevAS::http_config(state => $state, keys => $jwks_file,
                               audience => $AUD) . <<"_EOC_",

    log_format ciba '\$status \$request_method \$request_uri '
                    'decision=\$ciba_decision reason=\$ciba_reason '
                    'approver=\$ciba_approver ref=\$ciba_request_ref '
                    'rt=\$request_time';
    log_format as '\$status \$uri rt=\$request_time '
                  'urt=\$upstream_response_time';

    server {
        listen 127.0.0.1:$cbport ssl;
        server_name localhost;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        access_log $acclog ciba;

        location = /_ciba/ping {
            ciba_callback;
        }
    }
_EOC_
    server => "        access_log $acclog ciba;\n"
        . as_locations('poll')
        . as_locations('ping')
        . protected('poll', 'refund')
        . protected('poll', 'short', 'ciba_requested_expiry 3s;')
        . protected('ping', 'refund')
        . protected('ping', 'short', 'ciba_requested_expiry 3s;')
        . protected('poll', 'args', 'ciba_duplicate_args keep;',
                    'ciba_authorization_detail uri '
                    . '"https://tools.example$request_uri";')
        . <<"_EOC_");
        location = /backend {
            return 200 "upstream ran \$request_uri\\n";
        }

        location = /plain {
            return 200 "plain\\n";
        }
_EOC_

$ng->start or BAIL_OUT('nginx: ' . $ng->error);


# ---- helpers -----------------------------------------------------------------

my $BODY = '{"reason":"duplicate charge"}';

sub uri_of {
    my ($mode, $order, $loc) = @_;
    return "/$mode/" . ($loc // 'refund') . "?order=$order&amount=30";
}

# req($mode, $user, $order, handle => $h, loc => 'short', uri => $uri):
# the answer (uri: this request target instead)
sub req {
    my ($mode, $user, $order, %o) = @_;
    my @h = ('X-User' => $user, 'Content-Type' => 'application/json');
    push @h, 'Approval-Handle' => $o{handle} if $o{handle};
    my $t = time;
    my ($st, $hd, $body) = $ng->request('POST',
                                        $o{uri} // uri_of($mode, $order,
                                                          $o{loc}),
                                        headers => \@h, body => $BODY,
                                        timeout => 20);
    my $json = eval { $JSON->decode($body) };
    return { status => $st // 0, headers => $hd, body => $body,
             json => $json // {}, ms => (time - $t) * 1000, at => $t };
}

sub answer_ok {
    my ($r, $status, $error, $name) = @_;
    is $r->{status}, $status, "$name: status $status"
        or diag $r->{body};
    is $r->{json}{error}, $error, "$name: $error";
}

sub pending_ok {
    my ($r, $order, $name, %o) = @_;
    answer_ok($r, 401, 'approval_pending', $name);
    like $r->{json}{approval_handle} // '', qr/^h1\.[A-Za-z0-9_-]+$/,
        "$name: approval_handle";
    is $r->{json}{interval}, 5,
        "$name: interval 5 (oidc-provider sends none)";
    is $r->{json}{binding_message}, "Refund 30 EUR on order $order",
        "$name: binding_message, with spaces";
    my $exp = $o{expiry} // 300;
    ok(($r->{json}{expires_in} // 0) > $exp - 5
       && $r->{json}{expires_in} <= $exp, "$name: expires_in about $exp")
        or diag 'expires_in: ' . ($r->{json}{expires_in} // 'none');
}

sub passed_ok {
    my ($r, $mode, $order, $name) = @_;
    is $r->{status}, 200, "$name: 200" or diag $r->{body};
    is $r->{body}, "upstream ran /backend?order=$order&amount=30\n",
        "$name: from the upstream";
    is $r->{headers}{'x-ciba-decision'}, 'approved',
        "$name: decision approved";
    is $r->{headers}{'x-ciba-approver'}, $SUB{alice},
        "$name: \$ciba_approver is alice's sub";
}

# the AS's record of the request whose binding message names this order
sub as_request {
    my ($order) = @_;
    my @r = grep { ($_->{binding_message} // '') =~ / order \Q$order\E$/ }
            @{ as(GET => '/admin/requests')->{requests} };
    return $r[0];
}

sub as_pending_ok {
    my ($r, $mode, $order, $user, $name, %o) = @_;
    my ($p) = grep { ($_->{binding_message} // '') =~ / order \Q$order\E$/ }
              @{ as(GET => '/admin/pending')->{pending} };
    ok $p, "$name: pending at the AS" or return undef;
    is $p->{client_id}, "nginx-$mode", "$name: AS: client nginx-$mode";
    is $p->{login_hint}, $user, "$name: AS: login_hint $user";
    is $p->{account}, $SUB{$user}, "$name: AS: the account";
    is $p->{binding_message}, $r->{json}{binding_message},
        "$name: AS: the binding message nginx answered";
    is $p->{requested_expiry}, $o{expiry} // 300,
        "$name: AS: requested_expiry";
    my $ad = $p->{authorization_details} // [];
    is scalar @$ad, 1, "$name: AS: one authorization_details entry";
    is $ad->[0]{type}, 'nginx_ciba_action', "$name: AS: RAR type";
    is_deeply $ad->[0]{actions}, ['refund'], "$name: AS: actions";
    is $ad->[0]{identifier}, $r->{json}{action_digest},
        "$name: AS: identifier = the action digest";
    is $ad->[0]{method}, 'POST', "$name: AS: method";
    is $ad->[0]{path}, "/$mode/" . ($o{loc} // 'refund'), "$name: AS: path";
    is_deeply $ad->[0]{locations},
        ["http://localhost/$mode/" . ($o{loc} // 'refund')],
        "$name: AS: locations";
    is_deeply $ad->[0]{args}, { order => $order, amount => '30' },
        "$name: AS: args";
    ok !exists $ad->[0]{args_truncated}, "$name: AS: no args_truncated";
    is $ad->[0]{body_sha256}, sha256_hex($BODY), "$name: AS: body_sha256";
    return $p;
}

# the AS round trips, for the closing diag
my %COST;

sub as_log_lines {
    open my $in, '<', $aslog or return ();
    return <$in>;
}

# the AS's processing time of the last request to $path
sub as_ms {
    my ($path) = @_;
    my @r = grep { $_->{path} eq $path } @{ as(GET => '/admin/stats')->{requests} };
    return @r ? $r[-1]{ms} : undef;
}

# the $upstream_response_time of the last subrequest to a location
sub urt {
    my ($loc) = @_;
    for (1 .. 20) {
        my @l = grep { m{ \Q$loc\E rt=} } as_log_lines();
        return $1 * 1000 if @l && $l[-1] =~ / urt=([\d.]+)/;
        sleep 0.05;
    }
    return undef;
}

sub cost {
    my ($what, $r, $loc, $path) = @_;
    push @{ $COST{$what} }, [ $r->{ms}, urt($loc), as_ms($path) ];
}


# ---- baseline: an nginx request that asks nobody -----------------------------

{
    my @ms;
    for (1 .. 5) {
        my $t = time;
        my ($st) = $ng->request('GET', '/plain');
        push @ms, (time - $t) * 1000;
    }
    @ms = sort { $a <=> $b } @ms;
    $COST{baseline} = $ms[2];
}


# ---- poll and ping: the pending requests -------------------------------------

my %R;      # name => first answer

for my $mode (qw(poll ping)) {
    my $c0 = as_counts();

    # to be approved (alice), denied (bob), to expire (bob)
    my $ra = req($mode, 'alice', "${mode}A");
    pending_ok($ra, "${mode}A", "$mode approve: first request");
    cost("$mode: backchannel request", $ra, "/_ciba/$mode-bc",
         '/backchannel');
    $R{"${mode}A"} = $ra;

    my $rd = req($mode, 'bob', "${mode}D");
    pending_ok($rd, "${mode}D", "$mode deny: first request");
    cost("$mode: backchannel request", $rd, "/_ciba/$mode-bc",
         '/backchannel');
    $R{"${mode}D"} = $rd;

    my $re = req($mode, 'bob', "${mode}E", loc => 'short');
    pending_ok($re, "${mode}E", "$mode expiry: first request", expiry => 3);
    $R{"${mode}E"} = $re;

    my $c1 = as_counts();
    is(($c1->{'/backchannel'} // 0) - ($c0->{'/backchannel'} // 0), 3,
       "$mode: three backchannel requests at the AS");

    as_pending_ok($ra, $mode, "${mode}A", 'alice', "$mode approve");
    as_pending_ok($rd, $mode, "${mode}D", 'bob', "$mode deny");
    as_pending_ok($re, $mode, "${mode}E", 'bob', "$mode expiry",
                  expiry => 3, loc => 'short');

    # a bare retry continues the same approval
    my $again = req($mode, 'alice', "${mode}A");
    answer_ok($again, 401, 'approval_pending', "$mode: bare retry");
    is $again->{json}{action_digest}, $ra->{json}{action_digest},
        "$mode: bare retry: the same digest";
    my $c2 = as_counts();
    is $c2->{'/backchannel'}, $c1->{'/backchannel'},
        "$mode: bare retry: no new backchannel request";
}


# ---- ping: approve and deny, the retries go at once --------------------------

{
    my $ra = $R{pingA};
    my $t = time;
    my ($st, $out) = as(POST => '/admin/approve',
                        { auth_req_id => as_request('pingA')->{auth_req_id} });
    is $st, 200, 'ping approve: approved at the AS';
    is $out->{ping}{status}, 204, 'ping approve: the AS pinged nginx (204)'
        or diag explain $out;
    push @{ $COST{'ping: the AS pings nginx (TLS callback)'} },
        [ $out->{ping}{ms} ] if $out->{ping};

    my $c0 = as_counts();
    my $r = req('ping', 'alice', 'pingA',
                handle => $ra->{json}{approval_handle});
    ok time - $t < 5, 'ping approve: retried before the interval';
    passed_ok($r, 'ping', 'pingA', 'ping approve: retry with the handle');
    cost('ping: token request (approved)', $r, '/_ciba/ping-token',
         '/token');
    is as_counts()->{'/token'} - ($c0->{'/token'} // 0), 1,
        'ping approve: one token request';

    my $again = req('ping', 'alice', 'pingA',
                    handle => $ra->{json}{approval_handle});
    answer_ok($again, 403, 'approval_replayed', 'ping: second redemption');
    is as_counts()->{'/token'} - ($c0->{'/token'} // 0), 1,
        'ping: second redemption: the AS is not asked';

    my $rd = $R{pingD};
    ($st, $out) = as(POST => '/admin/deny',
                     { auth_req_id => as_request('pingD')->{auth_req_id} });
    is $st, 200, 'ping deny: denied at the AS';
    is $out->{ping}{status}, 204, 'ping deny: the AS pinged nginx (204)';
    push @{ $COST{'ping: the AS pings nginx (TLS callback)'} },
        [ $out->{ping}{ms} ] if $out->{ping};
    $r = req('ping', 'bob', 'pingD', handle => $rd->{json}{approval_handle});
    answer_ok($r, 403, 'approval_denied', 'ping deny: retry with the handle');
    cost('ping: token request (denied)', $r, '/_ciba/ping-token',
         '/token');
}


# ---- poll: approve and deny ---------------------------------------------------

{
    my $ra = $R{pollA};
    my $rd = $R{pollD};
    my ($st) = as(POST => '/admin/approve',
                  { auth_req_id => as_request('pollA')->{auth_req_id} });
    is $st, 200, 'poll approve: approved at the AS';
    ($st) = as(POST => '/admin/deny',
               { auth_req_id => as_request('pollD')->{auth_req_id} });
    is $st, 200, 'poll deny: denied at the AS';

    # before the interval: answered from the zone, the AS is not asked
    my $c0 = as_counts();
    my $early = req('poll', 'alice', 'pollA',
                    handle => $ra->{json}{approval_handle});
    answer_ok($early, 401, 'approval_pending', 'poll: retry before the interval');
    is as_counts()->{'/token'} // 0, $c0->{'/token'} // 0,
        'poll: retry before the interval: no token request';

    my $wait = $early->{headers}{'retry-after'} // 5;
    diag "poll: waiting $wait s (Retry-After)";
    sleep $wait + 0.2;

    my $r = req('poll', 'alice', 'pollA',
                handle => $ra->{json}{approval_handle});
    passed_ok($r, 'poll', 'pollA', 'poll approve: retry with the handle');
    cost('poll: token request (approved)', $r, '/_ciba/poll-token',
         '/token');

    my $again = req('poll', 'alice', 'pollA',
                    handle => $ra->{json}{approval_handle});
    answer_ok($again, 403, 'approval_replayed', 'poll: second redemption');

    # the AS itself refuses a second token exchange for that auth_req_id
    my $res = DevAS::form('/token', {
        grant_type => 'urn:openid:params:grant-type:ciba',
        auth_req_id => as_request('pollA')->{auth_req_id} },
        Authorization => "Basic $BASIC{poll}");
    is $res->{status}, 400, 'AS: a second token exchange is refused';
    like $res->{content}, qr/"invalid_grant"/, 'AS: invalid_grant';

    # pollD was created after pollA: its poll may be due a second later
    # (whole seconds); retry as its Retry-After says
    $r = req('poll', 'bob', 'pollD', handle => $rd->{json}{approval_handle});
    for (1 .. 3) {
        last unless ($r->{json}{error} // '') eq 'approval_pending';
        diag "poll deny: pending ($r->{json}{reason}), waiting "
             . ($r->{headers}{'retry-after'} // 1) . ' s';
        sleep(($r->{headers}{'retry-after'} // 1) + 0.2);
        $r = req('poll', 'bob', 'pollD',
                 handle => $rd->{json}{approval_handle});
    }
    answer_ok($r, 403, 'approval_denied', 'poll deny: retry with the handle');
    cost('poll: token request (denied)', $r, '/_ciba/poll-token',
         '/token');
}


# ---- the access token the AS issued --------------------------------------------

{
    # the module validated the tokens it got with the JWKS fetched above;
    # what such a token holds, seen through an approval made directly at
    # the AS with the same authorization_details
    my $res = DevAS::form('/backchannel', {
        scope => 'openid', login_hint => 'alice',
        binding_message => 'token-check',
        authorization_details => $JSON->encode([ {
            type => 'nginx_ciba_action', actions => ['refund'],
            identifier => $R{pollA}{json}{action_digest},
            method => 'POST', path => '/poll/refund' } ]) },
        Authorization => "Basic $BASIC{poll}");
    my $id = eval { $JSON->decode($res->{content})->{auth_req_id} };
    as(POST => '/admin/approve', { auth_req_id => $id });
    $res = DevAS::form('/token', {
        grant_type => 'urn:openid:params:grant-type:ciba',
        auth_req_id => $id },
        Authorization => "Basic $BASIC{poll}");
    my $tok = eval { $JSON->decode($res->{content}) } // {};
    my ($h, $p) = map { eval { $JSON->decode(decode_base64url($_)) } // {} }
                  (split /\./, $tok->{access_token} // '')[0, 1];
    is $h->{alg}, 'ES256', 'access token: ES256';
    is $h->{typ}, 'at+jwt', 'access token: typ at+jwt';
    is $p->{iss}, $AS, 'access token: iss';
    is $p->{aud}, $AUD, 'access token: aud';
    is $p->{sub}, $SUB{alice}, 'access token: sub';
    is $p->{authorization_details}[0]{identifier},
        $R{pollA}{json}{action_digest},
        'access token: authorization_details (from backchannelResult rar)';
}


# ---- expiry ---------------------------------------------------------------------

for my $mode (qw(poll ping)) {
    my $re = $R{"${mode}E"};
    # requested_expiry 3 s (normally long past by now)
    my $left = $re->{at} + 3.5 - time;
    sleep $left if $left > 0;

    my $r = req($mode, 'bob', "${mode}E", loc => 'short',
                handle => $re->{json}{approval_handle});
    answer_ok($r, 403, 'approval_expired', "$mode expiry: retry with the handle");
    diag "$mode expiry: reason $r->{json}{reason}";

    my $c0 = as_counts();
    my $new = req($mode, 'bob', "${mode}E", loc => 'short');
    pending_ok($new, "${mode}E", "$mode expiry: a later bare request",
               expiry => 3);
    isnt $new->{json}{approval_handle}, $re->{json}{approval_handle},
        "$mode expiry: a new handle";
    is as_counts()->{'/backchannel'} - $c0->{'/backchannel'}, 1,
        "$mode expiry: a new backchannel request";
}


# ---- what the AS is shown for harder arguments ------------------------------------

# ask($query, $name): the pending answer of a POST /poll/args?$query
# (carol), and the AS's pending record for it (found by its binding
# message), with the raw JSON of that record
sub ask {
    my ($query, $bm, $name) = @_;
    my $r = req('poll', 'carol', undef, uri => "/poll/args?$query");
    is $r->{status}, 401, "$name: 401" or diag $r->{body};
    is $r->{json}{error}, 'approval_pending', "$name: approval_pending";
    is $r->{json}{binding_message}, $bm, "$name: the binding message";
    my ($p) = grep { ($_->{binding_message} // '') eq $bm }
              @{ as(GET => '/admin/pending')->{pending} };
    ok $p, "$name: pending at the AS with that binding message"
        or return ($r, {}, {}, '');
    my $raw = DevAS::raw(GET => "/admin/requests/$p->{auth_req_id}");
    my $ad = $p->{authorization_details}[0] // {};
    is $ad->{identifier}, $r->{json}{action_digest},
        "$name: AS: identifier = the action digest";
    is $ad->{path}, '/poll/args', "$name: AS: path";
    is $ad->{body_sha256}, sha256_hex($BODY), "$name: AS: body_sha256";
    is $ad->{uri}, "https://tools.example/poll/args?$query",
        "$name: AS: the operator's field (ciba_authorization_detail)";
    as(POST => '/admin/deny', { auth_req_id => $p->{auth_req_id} });
    return ($r, $p, $ad, $raw->{content} // '');
}

{
    my $q = 'order=poll%20S1&amount=12%2C50&note=caf%C3%A9+au+lait%21';
    my (undef, undef, $ad, $raw) =
        ask($q, 'Refund 12,50 EUR on order poll S1', 'decoded args');
    # (DevAS::call() leaves JSON strings as UTF-8 bytes)
    is_deeply $ad->{args}, { order => 'poll S1', amount => '12,50',
                             note => "caf\xc3\xa9 au lait!" },
        'decoded args: AS: args decoded ("+", %XX, UTF-8)';
    like $raw, qr/"args": \{\s*"order": [^{}]*"amount": [^{}]*"note": /,
        'decoded args: AS: in request order';
    ok !exists $ad->{args_truncated}, 'decoded args: AS: no args_truncated';

    (undef, undef, $ad) = ask('order=K1&amount=30&tag=a&tag=b+c',
                              'Refund 30 EUR on order K1', 'repeated arg');
    is_deeply $ad->{args}, { order => 'K1', amount => '30',
                             tag => [ 'a', 'b c' ] },
        'repeated arg: AS: its values as an array, in order';

    my $many = join '&', 'order=T1', 'amount=30', map { "a$_=1" } 1 .. 31;
    (undef, undef, $ad) = ask($many, 'Refund 30 EUR on order T1',
                              '33 args');
    is scalar(keys %{ $ad->{args} // {} }), 32, '33 args: AS: 32 shown';
    ok $ad->{args}{order} && $ad->{args}{a30} && !exists $ad->{args}{a31},
        '33 args: AS: the first 32' or diag explain $ad->{args};
    ok $ad->{args_truncated}, '33 args: AS: args_truncated';

    (undef, undef, $ad) = ask('order=%3Cb%3E%22&amount=30',
                              'Refund 30 EUR on order _b__', 'markup');
    is_deeply $ad->{args}, { order => '<b>"', amount => '30' },
        'markup: AS: args as sent (decoded), the message sanitized';
}


# ---- the logs -------------------------------------------------------------------

{
    my $log = $ng->error_log;
    for my $d (qw(approved denied expired replayed pending)) {
        like $log, qr/ciba: decision=$d /, "error log: a decision=$d line";
    }
    unlike $log, qr/\[(?:alert|crit|emerg)\]/, 'error log: nothing alarming';
    is $ng->crash_reports, '', 'no crashes';

    open my $in, '<', $acclog or die "$acclog: $!";
    my @acc = <$in>;
    ok((grep { m{^200 POST /poll/refund\?order=pollA&amount=30 decision=approved }
               && /approver=\Q$SUB{alice}\E / } @acc),
       'access log: poll approved, approver alice');
    ok((grep { m{^200 POST /ping/refund\?order=pingA&amount=30 decision=approved }
               && /approver=\Q$SUB{alice}\E / } @acc),
       'access log: ping approved, approver alice');
    ok((grep { m{^204 POST /_ciba/ping } } @acc) >= 2,
       'access log: the pings reached the TLS callback (204)');
}


# ---- what each AS round trip cost ----------------------------------------------

sub fmt { defined $_[0] ? sprintf('%.1f', $_[0]) : '-' }

diag sprintf 'nginx request that asks nobody (baseline): %s ms',
             fmt($COST{baseline});
for my $what (map({ ("$_: backchannel request",
                      "$_: token request (approved)",
                      "$_: token request (denied)") } qw(poll ping)),
              'ping: the AS pings nginx (TLS callback)')
{
    for my $c (@{ $COST{$what} // [] }) {
        my ($req, $urt, $as) = @$c;
        if (@$c == 1) {
            diag sprintf '%s: %s ms (as the AS timed it)', $what, fmt($req);
            next;
        }
        diag sprintf '%s: nginx request %s ms, AS subrequest '
                     . '($upstream_response_time) %s ms, AS processing %s ms',
                     $what, fmt($req), fmt($urt), fmt($as);
    }
}
diag sprintf 'elapsed: %.1f s', time - $T0;

$ng->stop;
DevAS::stop();

done_testing;
