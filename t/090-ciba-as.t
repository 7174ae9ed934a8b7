# Asking the human (CIBA, poll mode), one request at a time, against the
# scriptable mock AS (t/fixtures/mock-as/mock-as.mjs) started by this file:
#
# - a first request: "approval_pending"/"asked" with a sealed handle, and
#   exactly what the backchannel request carried (form fields, the binding
#   message rendered, sanitized and cut, authorization_details, client
#   authentication; none of the agent's headers or body);
# - authorization_details.locations: the configured server_name's, not
#   the client's Host header (which only a server named "_" uses);
# - every answer of the AS to the backchannel request: denials (403),
#   complaints about this client (502, with an error line naming the AS's
#   error), and everything unusable (503 with Retry-After), each with its
#   reason: as_answer_too_large (over subrequest_output_buffer_size, taken
#   in by the module's own filter and drained; no placeholder is left
#   behind),
#   as_server_error (5xx, nginx's own 502/504 included: refused, reset,
#   timed out), as_redirect (3xx), as_bad_answer (a JSON object that
#   cannot be used), as_not_json (a 200 or 4xx that is not a JSON object);
# - handles: forged, truncated, altered, sealed with another key, expired,
#   for another request or subject, stale (an older approval of the same
#   request), and a handle sealed elsewhere with the same key (a fleet),
#   which is continued at the token endpoint; the token endpoint's answers
#   to such a handle, and what is remembered of them (expired_token,
#   invalid_grant);
# - ciba_pending_status, ciba_max_pending, client-sent approval tokens
#   without keys, and the configuration errors of the CIBA directives.
#
# How the mock is checked: each block resets and scripts the mock in its
# "--- init" (which runs once nginx is up, before the request).  What the
# mock received is checked by the block's "--- as_check" section (Perl, in
# package main, with the helpers below): the harness has no hook after a
# block's requests, and a second request in the block would break the
# per-request error_log checks, so the as_check of a block runs when the
# next block is preprocessed (the mock has seen nothing since), and that of
# the last block in a cleanup handler.  Its checks are named after the block
# they belong to.  A block whose request needs an earlier one (a priming
# request) sends that from its init with prime(), which checks its answer;
# the block's error_log checks see the priming request's lines too.
#
# Handles sealed by this file (seal_handle(), an independent
# implementation of ngx_http_ciba_handle.c's format) are used where a block
# needs a handle before nginx runs; a block shows that the module accepts
# them, so a refusal of an altered one is the module's doing.

use strict;
use warnings;

use lib 't';

use CibaTest ();

use Test::Nginx::Socket CibaTest::node_ok()
    ? ('no_plan') : (skip_all => 'node >= 20 is needed for the mock AS');

use MockAS;
use Crypt::AuthEnc::GCM qw(gcm_encrypt_authenticate);
use Crypt::PRNG qw(random_bytes);
use Digest::SHA qw(sha256);
use FindBin ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64url);
use POSIX ();

repeat_each(1);
log_level('info');

our $AS_PORT = MockAS::free_port();
our $JSON = JSON::PP->new->canonical;
our $BASIC = 'Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=';   # poll-client:poll-secret

# two handle keys (ciba_handle_key files, as 64 hex digits)
our $KEY_A = pack 'H*', 'a5' x 32;
our $KEY_B = pack 'H*', '5a' x 32;

# the request most blocks send
our %REQ = (action => 'refund', method => 'POST', path => '/tools/refund',
            args => 'order=42', body => '{"amount":10}');


# ---- the mock AS -------------------------------------------------------------

sub start_mock {
    MockAS::start($AS_PORT);
    $ENV{TEST_NGINX_AS_PORT} = $AS_PORT;
}

sub stop_mock { MockAS::stop() }

sub as_call { MockAS::call(@_) }

# as_setup(config => {...}, script => { '/bc-authorize' => [ step, ... ] }):
# a fresh mock (requests, counts, auth requests and scripts forgotten), a
# 1 s interval and no slow_down unless said otherwise
sub as_setup { MockAS::setup(@_) }

# a request to nginx from an init section (priming)
sub ngx_request {
    my ($method, $uri, %o) = @_;
    my $port = $Test::Nginx::Util::ServerPortForClient;
    my $res = HTTP::Tiny->new(timeout => 10, keep_alive => 0)->request(
        $method, "http://127.0.0.1:$port$uri",
        { headers => $o{headers} || {},
          (defined $o{body} ? (content => $o{body}) : ()) });
    return $res;
}

# a priming request from an init section, checked: the block's answer
# depends on it, so it is a check of its own, named after the block
sub prime {
    my ($what, $status, $reason, $method, $uri, %o) = @_;
    my $res = ngx_request($method, $uri, %o);
    Test::More::is($res->{status}, $status, "$what - priming request: $status");
    Test::More::like($res->{content} // '', qr/"reason":"\Q$reason\E"/,
                     "$what - priming request: $reason");
    return $res;
}

# a request with a Host header of our choosing (HTTP::Tiny will not send
# one), on a port of our choosing: { status, content }
sub raw_request {
    my ($port, $method, $uri, $headers, $body) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 10)
        or return { status => 0, content => "connect: $!" };
    $body //= '';
    print $sock "$method $uri HTTP/1.1\r\n$headers"
              . "Content-Length: " . length($body) . "\r\n"
              . "Connection: close\r\n\r\n$body";
    local $/;
    my $text = <$sock> // '';
    close $sock;
    my ($status) = $text =~ m{\AHTTP/1\.[01] (\d{3})};
    my ($content) = $text =~ /\r\n\r\n(.*)\z/s;
    return { status => $status // 0, content => $content // '' };
}


# ---- handles, digests, expected texts -----------------------------------------

sub std_digest { return CibaTest::digest(%REQ, @_) }

# ngx_http_ciba_handle.c: "h1." BASE64URL(nonce[12] || AES-256-GCM(plain) ||
# tag[16]), AAD "ngx-ciba-handle/1"; plain = version 1, expire (8 bytes)
# and interval (4 bytes) in the host's byte order (little-endian here),
# mode, digest[32], SHA-256("urn:ngx-ciba:subject" NUL login hint),
# auth_req_id length (2 bytes, big-endian), auth_req_id
sub seal_handle {
    my (%o) = @_;
    my $plain = pack('C', 1)
              . pack('Q<', $o{expire} // time + 300)
              . pack('L<', $o{interval} // 2)
              . pack('C', $o{mode} // 0)
              . decode_base64url($o{digest} // std_digest())
              . sha256("urn:ngx-ciba:subject\0" . ($o{hint} // 'alice'))
              . pack('n', length $o{id})
              . $o{id};
    my $nonce = random_bytes(12);
    my ($ct, $tag) = gcm_encrypt_authenticate('AES', $o{key} // $KEY_A,
                                              $nonce, 'ngx-ciba-handle/1',
                                              $plain);
    return 'h1.' . encode_base64url($nonce . $ct . $tag);
}

# handles made once, by name, so that a block's request and its expected
# answer name the same one
my %Handles;
sub handle {
    my ($name, %o) = @_;
    return $Handles{$name} //= seal_handle(id => "areq-$name", %o);
}

# the key files of blocks that use ciba_handle_key
sub key_files {
    return ">>> a.key\n" . unpack('H*', $KEY_A) . "\n"
         . ">>> b.key\n" . unpack('H*', $KEY_B) . "\n";
}

# the binding message as the module must render it: cut to $max bytes, then
# every byte outside the allowed set replaced by "_"
sub binding {
    my ($text, $max, $set) = @_;
    $set //= 'A-Za-z0-9\-._+/!?#';
    $max //= 20;
    if (length $text > $max) {
        # never half a UTF-8 character
        $max-- while $max > 0 && (ord(substr $text, $max, 1) & 0xc0) == 0x80;
        $text = substr $text, 0, $max;
    }
    eval "\$text =~ tr{$set}{_}c; 1" or die $@;
    return $text;
}

# the exact body of a module's answer
sub answer_re {
    my (%o) = @_;
    my $re = '\A\{"error":"' . quotemeta($o{error})
           . '","error_description":"[^"\\\\]+","reason":"'
           . ($o{reason_re} // quotemeta($o{reason}))
           . '","action":"refund","action_digest":"'
           . quotemeta($o{digest} // std_digest()) . '"';
    if (my $p = $o{pending}) {
        $re .= ',"approval_handle":"'
             . (defined $p->{handle} ? quotemeta($p->{handle})
                                     : 'h1\.[A-Za-z0-9_-]{100,}')
             . '"' unless $p->{no_handle};
        $re .= ',"expires_in":' . ($p->{expires_in} // '\d+')
             . ',"interval":' . $p->{interval}
             . ',"binding_message":"' . quotemeta($p->{binding} // 'refund')
             . '"';
    }
    $re .= '\}\n\z';
    return qr/$re/;
}

# the decision line of the error log
sub decision_re {
    my ($decision, $reason, %o) = @_;
    my $re = 'ciba: decision=' . $decision . ' reason=' . quotemeta($reason)
           . ' action="refund" subject="' . quotemeta($o{subject} // 'alice')
           . '" approver="' . quotemeta($o{approver} // '')
           . '" jti="" kid="" alg= digest='
           . quotemeta($o{digest} // std_digest())
           . ($o{ref} ? ' request_ref=[A-Za-z0-9_-]{16}' : '')
           . (defined $o{bm} ? ' binding_message="' . quotemeta($o{bm}) . '"'
                             : '(?: binding_message="[^"]*")?')
           . '(?:,| while )';
    return qr/$re/;
}


# ---- checks of what the mock received (the "--- as_check" sections) ------------
#
# MockAS::as_check_block(), MockAS::as_check_run() and the helpers the
# sections use (count_is, as_req, form_is, headers_are, $R, $Name): see
# t/MockAS.pm.

BEGIN { MockAS::as_check_import() }

# the authorization_details of a request: by default %REQ's, whose
# arguments are shown decoded and whose body is shown by its hash
sub std_ad {
    my (%o) = @_;
    return [ {
        type       => $o{type} // 'nginx_ciba_action',
        actions    => [ 'refund' ],
        locations  => [ $o{locations} // 'http://localhost/tools/refund' ],
        identifier => $o{digest} // std_digest(),
        method     => 'POST',
        path       => $o{path} // '/tools/refund',
        (exists $o{args} ? (defined $o{args} ? (args => $o{args}) : ())
                         : (args => { order => '42' })),
        body_sha256 => Digest::SHA::sha256_hex($o{body} // $REQ{body}),
        %{ $o{more} || {} },
    } ];
}

# the request_ref in the previous block's decision line is the one of the
# auth_req_id the AS gave: base64url(SHA-256("urn:ngx-ciba:request_ref" NUL
# auth_req_id)[0..11])
sub request_ref_is {
    my ($id, $what) = @_;
    my $ref = encode_base64url(substr sha256("urn:ngx-ciba:request_ref\0$id"),
                               0, 12);
    my $log = '';
    if (open my $in, '<', $Test::Nginx::Util::ErrLogFile) {
        local $/;
        $log = <$in> // '';
    }
    my ($got) = $log =~ /ciba: decision=.*? request_ref=(\S+?)(?:,| )/;
    Test::More::is($got, $ref, "$Name - $what: request_ref names the "
                               . "auth_req_id, not in clear");
    Test::More::unlike($log, qr/\Q$id\E/,
                       "$Name - $what: the auth_req_id is not logged");
}


# ---- the common configuration ------------------------------------------------

my $HttpConfig = <<'_EOC_';
    ciba_zone ciba_as:1m;

    log_format ciba_as 'access: $request_method $uri status=$status '
                       'decision=$ciba_decision reason=$ciba_reason '
                       'subject=$ciba_subject ref=$ciba_request_ref '
                       'bm=$ciba_binding_message';
    access_log logs/error.log ciba_as;
_EOC_

# the protected location of blocks without a "--- config"
my $DefaultConfig = <<'_EOC_';
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
_EOC_

# the internal locations to the AS (client_secret_basic), unless the block
# has its own; and the "upstream"
my $AsLocations = <<"_EOC_";

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_AS_PORT/bc-authorize;
        proxy_set_header Authorization "$BASIC";
        proxy_connect_timeout 1s;
        proxy_read_timeout 1s;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_AS_PORT/token;
        proxy_set_header Authorization "$BASIC";
        proxy_connect_timeout 1s;
        proxy_read_timeout 1s;
    }
_EOC_

my $Backend = <<'_EOC_';

    location /backend {
        return 200 "upstream ran $request_method\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    MockAS::as_check_block($block);

    $block->set_value(http_config => $HttpConfig
                                     . ($block->http_config // ''));

    my $config = $block->config // $DefaultConfig;
    $config .= $AsLocations unless $config =~ m{location\s+=\s+/_as/bc\b};
    $config .= $Backend;
    $block->set_value(config => $config);

    return $block;
});

add_cleanup_handler(sub {
    MockAS::as_check_run();
    stop_mock();
});

start_mock();

run_tests();

__DATA__

=== TEST 1: a first request asks the human: pending "asked" with a handle
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
[
    main::decision_re('pending', 'asked', ref => 1),
    qr{access: POST /tools/refund status=401 decision=pending reason=asked subject=alice ref=[A-Za-z0-9_-]{16} bm=refund$},
]
--- no_error_log
[error]
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
my $bc = as_req('/bc-authorize');
form_is($bc, {
    scope                 => 'openid',
    login_hint            => 'alice',
    binding_message       => 'refund',
    requested_expiry      => '300',
    authorization_details => std_ad(),
}, 'backchannel request');
Test::More::is($bc->{client_auth}, 'client_secret_basic',
               "$Name - client_secret_basic from proxy_set_header");
headers_are($bc, { authorization => $BASIC }, 'backchannel request');
Test::More::is($bc->{method}, 'POST', "$Name - a POST");
Test::More::is($bc->{query}, '', "$Name - nothing in the query string");
request_ref_is($bc->{answer}{auth_req_id}, 'backchannel request');



=== TEST 2: every backchannel parameter; client_secret_post; nothing of the agent's request reaches the AS
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_scope "openid tools:refund";
        ciba_requested_expiry 2m;
        ciba_acr_values "urn:example:acr:$http_x_acr";
        ciba_binding_message "Refund $arg_amount EUR, order #$arg_order: ok?";
        ciba_binding_message_max 24;
        ciba_client_id poll-client;
        ciba_client_secret poll-secret;
        ciba_authorization_details_type "tools.example/refund";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/bc-authorize;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=A17&amount=30
{"reason":"agent-body-must-not-leak"}
--- more_headers
X-User: alice
X-Acr: mfa
Cookie: session=agent-cookie-must-not-leak
Authorization: Bearer agent-bearer-must-not-leak
Proxy-Authorization: Basic YWdlbnQ6bGVhaw==
X-Agent-Secret: agent-secret-must-not-leak
X-Forwarded-For: 10.9.9.9
User-Agent: agent/1.0
Content-Type: application/json
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                digest => CibaTest::digest(action => 'refund', method => 'POST',
                    path => '/tools/refund', args => 'order=A17&amount=30',
                    body => '{"reason":"agent-body-must-not-leak"}'),
                pending => { interval => 1, expires_in => 120,
                    binding => main::binding('Refund 30 EUR, order #A17: ok?', 24) })
--- error_log eval
[
    qr{ciba: decision=pending reason=asked action="refund" subject="alice" },
    qr{access: POST /tools/refund status=401 decision=pending reason=asked subject=alice ref=\S{16} bm=Refund_30_EUR__order_#A1$},
]
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
my $bc = as_req('/bc-authorize');
my $digest = CibaTest::digest(action => 'refund', method => 'POST',
    path => '/tools/refund', args => 'order=A17&amount=30',
    body => '{"reason":"agent-body-must-not-leak"}');
form_is($bc, {
    scope                 => 'openid tools:refund',
    login_hint            => 'alice',
    binding_message       => 'Refund_30_EUR__order_#A1',
    requested_expiry      => '120',
    acr_values            => 'urn:example:acr:mfa',
    client_id             => 'poll-client',
    client_secret         => 'poll-secret',
    authorization_details => std_ad(type => 'tools.example/refund',
                                    digest => $digest,
                                    args => { order => 'A17', amount => '30' },
                                    body => '{"reason":"agent-body-must-not-leak"}'),
}, 'backchannel request');
Test::More::is($bc->{client_auth}, 'client_secret_post',
               "$Name - client_secret_post from ciba_client_id/secret");
headers_are($bc, {}, 'backchannel request (no agent header)');
Test::More::unlike($bc->{body}, qr/must-not-leak|agent|10\.9\.9\.9/,
                   "$Name - nothing of the agent's request in the body");



=== TEST 3: the binding message: another character set, cut before a UTF-8 character that does not fit, never sent raw
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Refund $arg_order EUR für $http_x_name";
        ciba_binding_message_max 16;
        ciba_binding_message_chars "a-z0-9 _";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
X-Name: Zoë
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300,
                             binding => '_efund 42 ___ f' })
--- error_log
ciba: decision=pending reason=asked
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1);
Test::More::is(as_req('/bc-authorize')->{form}{binding_message},
               main::binding("Refund 42 EUR f\xc3\xbcr Zo\xc3\xab", 16,
                             'a-z0-9 _'),
               "$Name - binding_message sent");
Test::More::is(as_req('/bc-authorize')->{form}{binding_message},
               '_efund 42 ___ f', "$Name - binding_message sent, literally "
               . "(cut before the first byte of the ü, not inside it)");



=== TEST 3b: the location the AS receives is the configured server_name's, not the client's Host header
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
Host: bank.example
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
[
    qr/ciba: decision=pending reason=asked action="refund" subject="alice" .* host: "bank\.example"/,
]
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::is_deeply(
    eval { JSON::PP::decode_json(
               as_req('/bc-authorize')->{form}{authorization_details}) },
    std_ad(), "$Name - locations: http://localhost/..., not bank.example");
Test::More::unlike(as_req('/bc-authorize')->{body}, qr/bank\.example/,
                   "$Name - the client's Host is not sent to the AS");



=== TEST 3c: a server without a name (server_name _): the location is the client's Host
--- http_config
    server {
        listen 127.0.0.1:19921;
        server_name _;

        location /tools/refund {
            ciba on;
            ciba_action refund;
            ciba_backchannel_endpoint /_as/bc;
            ciba_token_endpoint /_as/token;
            ciba_login_hint $http_x_user;
            proxy_pass http://127.0.0.1:$server_port/backend;
        }

        location /backend {
            return 200 "upstream ran $request_method\n";
        }

        location = /_as/bc {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/bc-authorize;
            proxy_set_header Authorization "Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=";
        }

        location = /_as/token {
            internal;
            proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
            proxy_set_header Authorization "Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=";
        }
    }
--- init
main::as_setup();
my $res = main::raw_request(19921, 'POST', '/tools/refund?order=43',
                            "Host: bank.example\r\nX-User: alice\r\n",
                            '{"amount":10}');
Test::More::is($res->{status}, 401,
               $block->name . ' - the unnamed server: 401');
Test::More::like($res->{content}, qr/"reason":"asked"/,
                 $block->name . ' - the unnamed server: asked');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
Host: bank.example
--- error_code: 401
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 2, '/token' => 0);
my @ad = map { eval { JSON::PP::decode_json($_->{form}{authorization_details}) } }
         grep { $_->{path} eq '/bc-authorize' } @{ $R->{requests} };
Test::More::is_deeply($ad[0][0]{locations}, [ 'http://bank.example/tools/refund' ],
                      "$Name - server_name _: the Host header names the location");
Test::More::is($ad[0][0]{identifier}, main::std_digest(args => 'order=43'),
               "$Name - server_name _: the request's digest");
Test::More::is_deeply($ad[1], std_ad(),
                      "$Name - server_name localhost: http://localhost/...");



=== TEST 3d: a canonical path with escaped characters: "locations", "path" and the digest carry it as sent
--- init
main::as_setup();
--- request
POST /tools/refund%20x%3Cy%3E%22%25%7B%C3%A9?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                digest => main::std_digest(path => '/tools/refund%20x%3Cy%3E%22%25%7B%C3%A9'),
                pending => { interval => 1, expires_in => 300 })
--- error_log
ciba: decision=pending reason=asked
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::is_deeply(
    scalar eval { JSON::PP->new->decode(
               as_req('/bc-authorize')->{form}{authorization_details}) },
    std_ad(digest => main::std_digest(path => '/tools/refund%20x%3Cy%3E%22%25%7B%C3%A9'),
           path => '/tools/refund%20x%3Cy%3E%22%25%7B%C3%A9',
           locations => 'http://localhost/tools/refund%20x%3Cy%3E%22%25%7B%C3%A9'),
    "$Name - locations and path as sent");



=== TEST 4: an empty login hint: 400, nothing sent to the AS
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- error_code: 400
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_subject_missing', reason => 'no_login_hint')
--- error_log eval
[
    main::decision_re('no_subject', 'no_login_hint', subject => ''),
    'access: POST /tools/refund status=400 decision=no_subject reason=no_login_hint',
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 5: unknown_user_id from the AS: 403 approval_denied
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: mallory
--- error_code: 403
--- response_headers
Content-Type: application/json
!WWW-Authenticate
!Retry-After
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_denied', reason => 'unknown_user_id')
--- error_log eval
main::decision_re('denied', 'unknown_user_id', subject => 'mallory')
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::is(as_req('/bc-authorize')->{answer}{error}, 'unknown_user_id',
               "$Name - the AS refused the user");



=== TEST 6: access_denied from the backchannel endpoint: 403 approval_denied
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, json => { error => 'access_denied',
                               error_description => 'policy says no' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 403
--- response_headers
Content-Type: application/json
!Retry-After
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_denied', reason => 'access_denied')
--- error_log eval
main::decision_re('denied', 'access_denied')
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 7: invalid_client (a wrong client secret): 502 approval_misconfigured, logged
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/bc-authorize;
        # poll-client:wrong-secret
        proxy_set_header Authorization "Basic cG9sbC1jbGllbnQ6d3Jvbmctc2VjcmV0";
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
!WWW-Authenticate
!Retry-After
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_client')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_client" \(error_description: "[^"]*"\); check the client's configuration/,
    main::decision_re('misconfigured', 'invalid_client'),
]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::is(as_req('/bc-authorize')->{status}, 401,
               "$Name - the AS answered 401");



=== TEST 8: unauthorized_client: 502 approval_misconfigured, logged
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, json => { error => 'unauthorized_client' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
!Retry-After
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'unauthorized_client')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "unauthorized_client"/,
    main::decision_re('misconfigured', 'unauthorized_client'),
]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 9: invalid_binding_message (the AS's own rule): 502, logged
--- init
main::as_setup(config => { binding_message_regex => '^[0-9]{1,5}$' });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_binding_message')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_binding_message"/,
    main::decision_re('misconfigured', 'invalid_binding_message'),
]
--- as_check
count_is('/bc-authorize' => 1);
Test::More::is(as_req('/bc-authorize')->{answer}{error},
               'invalid_binding_message', "$Name - the AS refused it");



=== TEST 10: invalid_request: 502, logged
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, json => { error => 'invalid_request',
                               error_description => 'bad' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_request')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_request"/,
    main::decision_re('misconfigured', 'invalid_request'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 11: invalid_scope: 502, logged
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, json => { error => 'invalid_scope' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_scope')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_scope"/,
    main::decision_re('misconfigured', 'invalid_scope'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 12: invalid_authorization_details (a RAR type the AS does not know): 502, logged
--- init
main::as_setup(config => { authorization_details_types => ['payment_initiation'] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 502
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_authorization_details')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_authorization_details"/,
    main::decision_re('misconfigured', 'invalid_authorization_details'),
]
--- as_check
count_is('/bc-authorize' => 1);
Test::More::is(as_req('/bc-authorize')->{answer}{error},
               'invalid_authorization_details', "$Name - the AS refused it");



=== TEST 13: the AS answers 500 (not JSON): 503 approval_unavailable as_server_error, Retry-After
--- init
main::as_setup(script => { '/bc-authorize' => [ { status => 500, body => 'oops' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Content-Type: application/json
Cache-Control: no-store
Retry-After: 5
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server gave no usable answer to the backchannel request \(status 500, 4 bytes\)/,
    main::decision_re('unavailable', 'as_server_error'),
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 14: the AS answers 500 with a JSON error: 503 as_server_error, Retry-After
# a 5xx is a server error whatever its body: "as_bad_answer" is for JSON
# answers of another status that cannot be used
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 500, json => { error => 'server_error' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 500, \d+ bytes\)/,
    main::decision_re('unavailable', 'as_server_error'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 15: the AS answers 200 with garbage: 503 as_not_json, Retry-After
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'garbage' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Content-Type: application/json
Retry-After: 5
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_not_json')
--- error_log eval
[
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 200, /,
    main::decision_re('unavailable', 'as_not_json'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 16: the AS answers 200 with a JSON array, not an object: 503 as_not_json
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => [ { auth_req_id => 'x', expires_in => 60 } ] } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_not_json')
--- error_log eval
main::decision_re('unavailable', 'as_not_json')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 17: the AS answers a 10 MiB body (over subrequest_output_buffer_size): 503 as_answer_too_large, Retry-After
# the module takes in the answer itself, bounded by the AS location's
# subrequest_output_buffer_size, and drains the rest: an answer over it is
# the documented 503 with its own error line, never a dropped connection
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'huge' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_answer_too_large')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server's answer to "\/_as\/bc" \(status 200\) is 10485760 bytes, over the subrequest_output_buffer_size of that location(?:,| while )/,
    main::decision_re('unavailable', 'as_answer_too_large', bm => 'refund'),
    qr{access: POST /tools/refund status=503 decision=unavailable reason=as_answer_too_large subject=alice ref=-? bm=refund$},
]
--- no_error_log eval
[ '/backend', 'too big subrequest response', 'redeemed' ]
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::is(as_req('/bc-authorize')->{scripted}{fault}, 'huge',
               "$Name - the AS sent its 10 MiB answer");



=== TEST 17b: after a 10 MiB answer, the next bare request asks the AS again (no placeholder left)
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'huge' } ] });
main::prime($block->name, 503, 'as_answer_too_large', 'POST', '/tools/refund?order=42',
            headers => { 'X-User' => 'alice' }, body => '{"amount":10}');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
[
    main::decision_re('unavailable', 'as_answer_too_large'),
    main::decision_re('pending', 'asked', ref => 1),
]
--- no_error_log
reason=requesting
--- as_check
count_is('/bc-authorize' => 2, '/token' => 0);



=== TEST 17c: an answer just over a 16k subrequest_output_buffer_size (20 KB, chunked): 503 as_answer_too_large, the connection answered
# the size that used to close the agent's connection without a byte
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/bc-authorize;
        proxy_set_header Authorization "Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=";
        subrequest_output_buffer_size 16k;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
    }
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'huge', size => 20480, chunked => JSON::PP::true } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_answer_too_large')
--- error_log eval
[
    qr/ciba: the authorization server's answer to "\/_as\/bc" \(status 200\) is 20480 bytes, over the subrequest_output_buffer_size/,
    main::decision_re('unavailable', 'as_answer_too_large'),
]
--- no_error_log
too big subrequest response
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 17d: an answer of exactly subrequest_output_buffer_size (16384 bytes) is taken in whole
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/bc-authorize;
        proxy_set_header Authorization "Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=";
        subrequest_output_buffer_size 16k;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
    }
--- init
my $pad = 16384 - length '{"auth_req_id":"areq-16k","expires_in":300,"interval":1,"pad":""}';
main::as_setup(script => { '/bc-authorize' => [ { status => 200, json => {
    auth_req_id => 'areq-16k', expires_in => 300, interval => 1,
    pad => 'x' x $pad } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
[ main::decision_re('pending', 'asked', ref => 1) ]
--- no_error_log
[error]



=== TEST 18: the AS refuses the connection (closes it unanswered): 503 as_server_error, Retry-After
# the subrequest gets nginx's own 502: a server error, as_server_error
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'refuse' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Content-Type: application/json
Retry-After: 5
!WWW-Authenticate
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    'upstream prematurely closed connection',
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 502, /,
    main::decision_re('unavailable', 'as_server_error'),
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 19: the AS redirects (302): not followed, 503 as_redirect, Retry-After
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 302, headers => { Location => 'http://127.0.0.1:1/elsewhere' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
!Location
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_redirect')
--- error_log eval
[
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 302, /,
    main::decision_re('unavailable', 'as_redirect'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 20: the AS hangs: proxy_read_timeout (1s) in the internal location, 503 as_server_error, Retry-After
# the subrequest gets nginx's own 504: a server error, as_server_error
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'hang' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- timeout: 5
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    'upstream timed out',
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 504, /,
    main::decision_re('unavailable', 'as_server_error'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 20b: the AS resets the connection: 503 as_server_error (nginx's own 502)
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'reset' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server gave no usable answer to the backchannel request \(status 502, /,
    main::decision_re('unavailable', 'as_server_error'),
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 20c: nothing listens at the AS's address (connection refused): 503 as_server_error (nginx's own 502)
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /_as/bc {
        internal;
        proxy_pass http://127.0.0.1:19939/bc-authorize;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:19939/token;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    qr/connect\(\) failed \(111: Connection refused\) while connecting to upstream/,
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 502, /,
    main::decision_re('unavailable', 'as_server_error'),
]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 20d: the AS closes the connection in the middle of its answer: 503 as_not_json
# nginx keeps the 200 and the bytes it got; what the module sees is a
# 200 that is not a JSON object
--- init
main::as_setup(script => { '/bc-authorize' => [ { fault => 'truncated' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_not_json')
--- error_log eval
[
    'upstream prematurely closed connection',
    qr/ciba: the authorization server gave no usable answer to the backchannel request \(status 200, \d+ bytes\)/,
    main::decision_re('unavailable', 'as_not_json'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 20e: a 400 with a JSON object but no "error": 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, json => { message => 'no' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server gave no usable answer to the backchannel request \(status 400, \d+ bytes\)/,
    main::decision_re('unavailable', 'as_bad_answer'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 20f: a 400 that is not JSON: 503 as_not_json
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 400, body => 'Bad Request' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_not_json')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server gave no usable answer to the backchannel request \(status 400, 11 bytes\)/,
    main::decision_re('unavailable', 'as_not_json'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 21: an answer without auth_req_id: 503 as_bad_answer, logged
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { expires_in => 60, interval => 1 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server's backchannel answer lacks a valid auth_req_id, expires_in or interval/,
    main::decision_re('unavailable', 'as_bad_answer'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 22: an auth_req_id over 1024 bytes: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'x' x 1025, expires_in => 60,
                               interval => 1 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
[
    'lacks a valid auth_req_id, expires_in or interval',
    main::decision_re('unavailable', 'as_bad_answer'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 23: no expires_in: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-no-exp', interval => 1 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
[
    'lacks a valid auth_req_id, expires_in or interval',
    main::decision_re('unavailable', 'as_bad_answer'),
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 24: expires_in 0: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-exp-0', expires_in => 0,
                               interval => 1 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
main::decision_re('unavailable', 'as_bad_answer')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 25: expires_in as a string: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-exp-str',
                               expires_in => '60', interval => 1 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
main::decision_re('unavailable', 'as_bad_answer')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 26: no interval in the answer: 5 s
--- init
main::as_setup(config => { interval => undef });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 5, expires_in => 300 })
--- error_log eval
main::decision_re('pending', 'asked', ref => 1)
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
Test::More::ok(!exists as_req('/bc-authorize')->{answer}{interval},
               "$Name - the AS gave no interval");



=== TEST 27: interval 0: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-int-0', expires_in => 60,
                               interval => 0 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
main::decision_re('unavailable', 'as_bad_answer')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 28: interval as a string: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-int-str', expires_in => 60,
                               interval => '1' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
main::decision_re('unavailable', 'as_bad_answer')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 29: interval over an hour: 503 as_bad_answer
--- init
main::as_setup(script => { '/bc-authorize' => [
    { status => 200, json => { auth_req_id => 'areq-int-big', expires_in => 60,
                               interval => 3601 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
main::decision_re('unavailable', 'as_bad_answer')
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 30: a forged handle: 401 bad_handle, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: h1." . MIME::Base64::encode_base64url("\x01" x 160)
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
!Retry-After
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'bad_handle')
--- error_log eval
main::decision_re('invalid', 'bad_handle')
--- no_error_log
[error]
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 31: a truncated handle: 401 bad_handle, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . substr(main::handle('good'), 0, -6)
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
Content-Type: application/json
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'bad_handle')
--- error_log eval
main::decision_re('invalid', 'bad_handle')
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 32: a handle with one byte of its ciphertext flipped: 401 bad_handle, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
my $raw = MIME::Base64::decode_base64url(substr main::handle('good'), 3);
substr($raw, 40, 1) ^= "\x01";
"X-User: alice\nApproval-Handle: h1." . MIME::Base64::encode_base64url($raw)
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
Content-Type: application/json
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'bad_handle')
--- error_log eval
main::decision_re('invalid', 'bad_handle')
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 33: a handle sealed with another nginx's key: 401 bad_handle, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('other-key', key => $main::KEY_B)
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
Content-Type: application/json
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'bad_handle')
--- error_log eval
main::decision_re('invalid', 'bad_handle')
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 34: the same handle under the key it was sealed with (another instance of a fleet): adopted, the token endpoint is asked for its auth_req_id
--- http_config
    ciba_handle_key ../html/b.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'authorization_pending' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('other-key', key => $main::KEY_B)
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 2
Content-Type: application/json
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'authorization_pending',
                pending => { interval => 2,
                             handle => main::handle('other-key', key => $main::KEY_B) })
--- error_log eval
main::decision_re('pending', 'authorization_pending', ref => 1)
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);
my $t = as_req('/token');
form_is($t, { grant_type => 'urn:openid:params:grant-type:ciba',
              auth_req_id => 'areq-other-key' }, 'token request');
headers_are($t, { authorization => $BASIC }, 'token request');
request_ref_is('areq-other-key', 'token request');



=== TEST 35: an expired handle: 403 approval_expired, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('expired', expire => time - 5)
--- error_code: 403
--- response_headers
Content-Type: application/json
!WWW-Authenticate
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_expired', reason => 'handle_expired')
--- error_log eval
main::decision_re('expired', 'handle_expired')
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 36: a handle for another request (other args): 403 approval_mismatch, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: "
. main::handle('order-43', digest => main::std_digest(args => 'order=43'))
--- error_code: 403
--- response_headers
!WWW-Authenticate
Content-Type: application/json
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_mismatch', reason => 'handle_mismatch')
--- error_log eval
main::decision_re('mismatch', 'handle_mismatch')
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 37: a handle for another subject: 403 approval_mismatch, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('bob', hint => 'bob')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_mismatch', reason => 'handle_mismatch')
--- error_log eval
main::decision_re('mismatch', 'handle_mismatch')
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 37b: a handle of an older approval of the same request (the live one has another auth_req_id): 403 approval_expired stale_handle, not polled
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
main::prime($block->name, 401, 'asked', 'POST', '/tools/refund?order=42',
            headers => { 'X-User' => 'alice' }, body => '{"amount":10}');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('stale')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_expired', reason => 'stale_handle')
--- error_log eval
[
    main::decision_re('expired', 'stale_handle'),
    'access: POST /tools/refund status=403 decision=expired reason=stale_handle',
]
--- no_error_log
[error]
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 38: two handle headers: 401 several_handles, nothing sent
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('good')
. "\nApproval-Handle: " . main::handle('good')
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
!Retry-After
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'several_handles')
--- error_log eval
qr/ciba: decision=invalid reason=several_handles action="refund" /
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 39: ciba_handle_header names the handle header; Approval-Handle is then an ordinary header
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_handle_header X-Approval-Handle;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('good')
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
main::decision_re('pending', 'asked', ref => 1)
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);



=== TEST 40: the token endpoint says access_denied for a handle: 403 approval_denied
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'access_denied' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('denied')
--- error_code: 403
--- response_headers
!WWW-Authenticate
!Retry-After
Content-Type: application/json
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_denied', reason => 'access_denied')
--- error_log eval
main::decision_re('denied', 'access_denied', ref => 1)
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);
Test::More::is(as_req('/token')->{form}{auth_req_id}, 'areq-denied',
               "$Name - the handle's auth_req_id was polled");



=== TEST 41: the token endpoint says expired_token: 403 approval_expired
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'expired_token' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('expired-token')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_expired', reason => 'expired_token')
--- error_log eval
main::decision_re('expired', 'expired_token', ref => 1)
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);



=== TEST 41b: after expired_token, a retry with the same handle: 403 approval_expired, the AS is not asked again
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'expired_token' } } ] });
main::prime($block->name, 403, 'expired_token', 'POST', '/tools/refund?order=42',
    headers => { 'X-User' => 'alice',
                 'Approval-Handle' => main::handle('expired-twice') },
    body => '{"amount":10}');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('expired-twice')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_expired', reason => 'expired_token')
--- error_log eval
main::decision_re('expired', 'expired_token')
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);



=== TEST 41c: after expired_token, a bare request asks the human anew
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'expired_token' } } ] });
main::prime($block->name, 403, 'expired_token', 'POST', '/tools/refund?order=42',
    headers => { 'X-User' => 'alice',
                 'Approval-Handle' => main::handle('expired-then-bare') },
    body => '{"amount":10}');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 1
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
main::decision_re('pending', 'asked', ref => 1)
--- as_check
count_is('/bc-authorize' => 1, '/token' => 1);
Test::More::is(as_req('/token')->{form}{auth_req_id}, 'areq-expired-then-bare',
               "$Name - the expired one was polled once, by the priming request");



=== TEST 42: the token endpoint says invalid_grant (already redeemed): 403 approval_replayed
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('unknown-to-the-as')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_replayed', reason => 'invalid_grant')
--- error_log eval
main::decision_re('replayed', 'invalid_grant', ref => 1)
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);
Test::More::is(as_req('/token')->{answer}{error}, 'invalid_grant',
               "$Name - the AS does not know the auth_req_id");



=== TEST 42b: after invalid_grant, a retry with the same handle: 403 approval_replayed auth_req_id_replayed, the AS is not asked again
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup();
main::prime($block->name, 403, 'invalid_grant', 'POST', '/tools/refund?order=42',
    headers => { 'X-User' => 'alice',
                 'Approval-Handle' => main::handle('unknown-twice') },
    body => '{"amount":10}');
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('unknown-twice')
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_replayed', reason => 'auth_req_id_replayed')
--- error_log eval
main::decision_re('replayed', 'auth_req_id_replayed', ref => 1)
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);



=== TEST 43: the token endpoint says slow_down: pending, the interval grows by 5 s
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 400, json => { error => 'slow_down' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('slow')
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_pending"
Retry-After: 7
Content-Type: application/json
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'slow_down',
                pending => { interval => 7, handle => main::handle('slow') })
--- error_log eval
main::decision_re('pending', 'slow_down', ref => 1)
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);



=== TEST 44: the token endpoint says invalid_client: 502, logged
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 401, json => { error => 'invalid_client' },
      headers => { 'WWW-Authenticate' => 'Basic realm="mock-as"' } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('token-client')
--- error_code: 502
--- response_headers
!WWW-Authenticate
Content-Type: application/json
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'approval_misconfigured', reason => 'invalid_client')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the token request: "invalid_client" \(error_description: "[^"]*"\); check the client's configuration/,
    main::decision_re('misconfigured', 'invalid_client', ref => 1),
]
--- as_check
count_is('/token' => 1);



=== TEST 45: the token endpoint answers 500: 503 as_server_error, Retry-After
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [ { status => 500, body => 'down' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('token-500')
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_server_error')
--- error_log eval
[
    qr/ciba: the authorization server gave no usable answer to the token request \(status 500, 4 bytes\)/,
    main::decision_re('unavailable', 'as_server_error', ref => 1),
]
--- as_check
count_is('/token' => 1);



=== TEST 45b: the token endpoint answers a 10 MiB body: 503 as_answer_too_large, Retry-After, the possible redemption logged
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [ { fault => 'huge' } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('token-huge')
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_answer_too_large')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server's answer to "\/_as\/token" \(status 200\) is 10485760 bytes, over the subrequest_output_buffer_size of that location; the approval may have been redeemed at the authorization server for nothing/,
    main::decision_re('unavailable', 'as_answer_too_large', ref => 1),
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);



=== TEST 46: a token answer without access_token: 503 as_bad_answer, logged
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 200, json => { token_type => 'Bearer', expires_in => 60 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('no-token')
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_unavailable', reason => 'as_bad_answer')
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server's token answer lacks an access_token/,
    main::decision_re('unavailable', 'as_bad_answer', ref => 1),
]
--- no_error_log
/backend
--- as_check
count_is('/token' => 1);



=== TEST 47: an opaque access token for the handle, no keys: approved, the request goes upstream
--- http_config
    ciba_handle_key ../html/a.key;
--- user_files eval
main::key_files()
--- init
main::as_setup(script => { '/token' => [
    { status => 200, json => { access_token => 'opaque-token-1',
                               token_type => 'Bearer', expires_in => 60 } } ] });
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers eval
"X-User: alice\nApproval-Handle: " . main::handle('opaque')
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_re('approved', 'approved_by_as', ref => 1),
    qr{access: POST /tools/refund status=200 decision=approved reason=approved_by_as subject=alice ref=\S{16} },
    'access: POST /backend status=200',
]
--- no_error_log
[error]
opaque-token-1
--- as_check
count_is('/bc-authorize' => 0, '/token' => 1);
request_ref_is('areq-opaque', 'token request');



=== TEST 48: ciba_pending_status 428: the pending answer without WWW-Authenticate
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_pending_status 428;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 428
--- response_headers
Content-Type: application/json
Cache-Control: no-store
Retry-After: 1
!WWW-Authenticate
--- response_body_like eval
main::answer_re(error => 'approval_pending', reason => 'asked',
                pending => { interval => 1, expires_in => 300 })
--- error_log eval
[
    main::decision_re('pending', 'asked', ref => 1),
    'access: POST /tools/refund status=428 decision=pending reason=asked',
]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 49: ciba_max_pending 2: two live approvals of a subject, the third is 429 and not sent
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_max_pending 2;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::as_setup();
for my $order (1, 2) {
    my $res = main::ngx_request('POST', "/tools/refund?order=$order",
                                headers => { 'X-User' => 'alice' },
                                body => '{"amount":10}');
    die "priming request $order: $res->{status}\n" unless $res->{status} == 401;
}
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 429
--- response_headers
Content-Type: application/json
Retry-After: 5
!WWW-Authenticate
Cache-Control: no-store
--- response_body_like eval
main::answer_re(error => 'approval_rate_limited', reason => 'too_many_pending')
--- error_log eval
[
    main::decision_re('rate_limited', 'too_many_pending'),
    'access: POST /tools/refund status=429 decision=rate_limited reason=too_many_pending',
]
--- as_check
count_is('/bc-authorize' => 2, '/token' => 0);
Test::More::is_deeply(
    [ map { $_->{form}{authorization_details} =~ /"identifier":"([^"]+)"/ }
          grep { $_->{path} eq '/bc-authorize' } @{ $R->{requests} } ],
    [ main::std_digest(args => 'order=1'), main::std_digest(args => 'order=2') ],
    "$Name - the two primed approvals were asked, not the third");



=== TEST 50: a client-sent Approval-Token without ciba_key_file: 401 tokens_not_accepted, nothing sent
--- init
main::as_setup();
--- request
POST /tools/refund?order=42
{"amount":10}
--- more_headers
X-User: alice
Approval-Token: eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
Cache-Control: no-store
!Retry-After
--- response_body_like eval
main::answer_re(error => 'invalid_approval', reason => 'tokens_not_accepted')
--- error_log eval
qr/ciba: decision=invalid reason=tokens_not_accepted action="refund" /
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 51: configuration: a backchannel endpoint without a token endpoint
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_backchannel_endpoint" is set but "ciba_token_endpoint" is not



=== TEST 52: configuration: a backchannel endpoint without a login hint
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_backchannel_endpoint" is set but "ciba_login_hint" is not



=== TEST 53: configuration: a scope without the word "openid"
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_scope "openidconnect profile";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_scope" must contain "openid"



=== TEST 54: configuration: a 2xx pending status
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_pending_status 202;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_pending_status" must be 401, 403, 409 or 428



=== TEST 55: configuration: ciba_max_pending 0
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_max_pending 0;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_max_pending" must be at least 1



=== TEST 56: configuration: a handle key file of 31 bytes (62 hex digits)
--- http_config
    ciba_handle_key ../html/short.key;
--- user_files
>>> short.key
a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5
--- must_die
--- error_log
[emerg]
must hold 32 bytes



=== TEST 57: configuration: a binding message character set without "_"
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message_chars "A-Za-z0-9";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
must allow "_", which replaces the other characters



=== TEST 58: error_log at debug shows the CIBA flow: asking the human, the subrequest, its answer, the decision
--- init
main::as_setup();
--- log_level: debug
--- request
POST /tools/refund?order=58
{"amount":10}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "reason":"asked"
--- error_log eval
[
    qr/ciba: protected request, action "refund"/,
    qr/ciba: no token, no handle: CIBA/,
    qr/ciba: no pending approval: asking the human/,
    qr{ciba: backchannel request sent to "/_as/bc"},
    qr/ciba: AS answered 200/,
    qr/ciba: the AS answered step 1/,
    qr/ciba: decided: pending, asked/,
    qr/ciba: decision=pending reason=asked action="refund" subject="alice" /,
]
--- no_error_log
[error]
/backend
--- as_check
count_is('/bc-authorize' => 1, '/token' => 0);
