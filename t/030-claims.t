# Approval tokens: the registered claims (iss, aud, exp, nbf, iat, jti),
# the "typ" header required by ciba_token_type, and the subject required
# by ciba_subject.  Every token is minted just before its block runs
# (CibaTest::preprocessor), bound to the block's request unless said
# otherwise, and signed with the trusted test key (ec256, kid ec1).

use strict;
use warnings;

use lib 't';
use CibaTest qw(keys_dir digest);
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
log_level('info');

CibaTest::keys_dir();

# Common to every block (t/CibaTest.pm): the zone, the trusted key ec1,
# issuer, audience, the "short" access log into error.log, /backend.
my $HttpConfig = CibaTest::http_config(log => 'short');

add_block_preprocessor(sub {
    my $block = shift;

    CibaTest::merge_config($block, http => $HttpConfig, backend => 1);

    CibaTest::preprocessor($block);
});

# The exact refusal body for the refund of POST /tools/refund (body
# {"amount":5}, no args) unless other request parts are given.
sub refusal {
    my ($error, $reason, %req) = @_;
    my $digest = digest(action => 'refund', method => 'POST',
                        path => '/tools/refund', args => '',
                        body => '{"amount":5}', %req);
    return qr/\A\{"error":"\Q$error\E","error_description":"[^"]+",\Q"reason":"$reason","action":"refund","action_digest":"$digest"}\E\n\z/;
}

run_tests();

__DATA__

=== TEST 1: a valid token passes, once checked in full
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'claims-ok-1' } }
--- response_body
upstream ran POST
--- error_log eval
[
    qr{ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="claims-ok-1" kid="ec1" alg=ES256 digest=\Q${\ main::digest(action => 'refund', method => 'POST', path => '/tools/refund', body => '{"amount":5}') }\E, client: },
    'access: POST /tools/refund status=200 decision=approved reason=token_valid action=refund jti=claims-ok-1',
    'access: POST /backend status=200',
]
--- no_error_log
[error]



=== TEST 2: wrong iss
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iss => 'https://evil.example', jti => 'wrong-iss-1' } }
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like eval
main::refusal('invalid_approval', 'bad_issuer')
--- error_log
ciba: decision=invalid reason=bad_issuer action="refund"
access: POST /tools/refund status=401 decision=invalid reason=bad_issuer action=refund jti=wrong-iss-1
--- no_error_log
/backend
[error]



=== TEST 3: missing iss
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ drop => ['iss'] }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_issuer')
--- error_log
ciba: decision=invalid reason=bad_issuer action="refund"
access: POST /tools/refund status=401 decision=invalid reason=bad_issuer
--- no_error_log
/backend



=== TEST 4: the issuer compares exactly (a trailing slash is another issuer)
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iss => 'https://as.example/' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_issuer')
--- error_log
ciba: decision=invalid reason=bad_issuer
--- no_error_log
/backend



=== TEST 5: wrong aud
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => 'https://other.example' } }
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like eval
main::refusal('invalid_approval', 'bad_audience')
--- error_log
ciba: decision=invalid reason=bad_audience action="refund"
access: POST /tools/refund status=401 decision=invalid reason=bad_audience
--- no_error_log
/backend



=== TEST 6: missing aud
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ drop => ['aud'] }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_audience')
--- error_log
ciba: decision=invalid reason=bad_audience action="refund"
--- no_error_log
/backend



=== TEST 7: aud array containing our audience passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => ['https://other.example', 'https://tools.example'] } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
access: POST /backend status=200
--- no_error_log
[error]



=== TEST 8: aud array not containing our audience
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => ['https://other.example', 'https://tools.example/x'] } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_audience')
--- error_log
ciba: decision=invalid reason=bad_audience action="refund"
--- no_error_log
/backend



=== TEST 9: aud array with a non-string member is refused, even with ours
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => ['https://tools.example', 42] } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_audience')
--- error_log
ciba: decision=invalid reason=bad_audience
--- no_error_log
/backend



=== TEST 10: several configured audiences: the second one matches
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_audience https://a.example https://tools2.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => 'https://tools2.example' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
[error]



=== TEST 11: several configured audiences: an aud array with the first one
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_audience https://a.example https://tools2.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => ['https://z.example', 'https://a.example'] } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 12: a location's audiences replace the inherited ones
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_audience https://a.example https://tools2.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { aud => 'https://tools.example' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_audience')
--- error_log
ciba: decision=invalid reason=bad_audience
--- no_error_log
/backend



=== TEST 13: expired beyond the leeway
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { exp => time - 20 } }
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like eval
main::refusal('invalid_approval', 'token_expired')
--- error_log
ciba: decision=invalid reason=token_expired action="refund"
access: POST /tools/refund status=401 decision=invalid reason=token_expired
--- no_error_log
/backend



=== TEST 14: expired, but within the leeway: passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { exp => time - 3 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 15: the default leeway is 10 s: expired 5 s ago still passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { exp => time - 5 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 16: the default leeway is 10 s: expired 20 s ago is refused
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { exp => time - 20 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'token_expired')
--- error_log
ciba: decision=invalid reason=token_expired action="refund"
--- no_error_log
/backend



=== TEST 17: exp that is not a NumericDate
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { exp => '' . (time + 60) } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_exp')
--- error_log
ciba: decision=invalid reason=bad_exp
--- no_error_log
/backend



=== TEST 18: nbf in the future beyond the leeway
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { nbf => time + 60 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'token_not_yet_valid')
--- error_log
ciba: decision=invalid reason=token_not_yet_valid action="refund"
access: POST /tools/refund status=401 decision=invalid reason=token_not_yet_valid
--- no_error_log
/backend



=== TEST 19: nbf in the future within the leeway: passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { nbf => time + 6 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 20: iat older than max age + leeway
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        ciba_token_max_age 60s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iat => time - 100 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'token_too_old')
--- error_log
ciba: decision=invalid reason=token_too_old action="refund"
access: POST /tools/refund status=401 decision=invalid reason=token_too_old
--- no_error_log
/backend



=== TEST 21: iat older than max age but within max age + leeway is not too old
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        ciba_token_max_age 60s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iat => time - 64 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
token_too_old



=== TEST 22: iat within the max age passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        ciba_token_max_age 60s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iat => time + 2 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 23: iat in the future beyond the leeway
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iat => time + 60 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'iat_in_future')
--- error_log
ciba: decision=invalid reason=iat_in_future action="refund"
access: POST /tools/refund status=401 decision=invalid reason=iat_in_future
--- no_error_log
/backend



=== TEST 24: missing exp
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ drop => ['exp'] }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_exp')
--- error_log
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
/backend



=== TEST 25: missing iat
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ drop => ['iat'] }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_iat')
--- error_log
ciba: decision=invalid reason=bad_iat action="refund"
--- no_error_log
/backend



=== TEST 26: missing jti
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ drop => ['jti'] }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_jti')
--- error_log
ciba: decision=invalid reason=bad_jti action="refund"
access: POST /tools/refund status=401 decision=invalid reason=bad_jti action=refund jti=-
--- no_error_log
/backend



=== TEST 27: jti of 257 bytes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'j' x 257 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_jti')
--- error_log
ciba: decision=invalid reason=bad_jti action="refund"
--- no_error_log
/backend



=== TEST 28: jti of 256 bytes passes (the log shows at most 128 of them)
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'j' x 256 } }
--- response_body
upstream ran POST
--- error_log eval
[
    'ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="' . ('j' x 128) . '..."',
    'access: POST /tools/refund status=200 decision=approved reason=token_valid action=refund jti=' . ('j' x 256) . ' digest=',
]



=== TEST 29: empty jti
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => '' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_jti')
--- error_log
ciba: decision=invalid reason=bad_jti action="refund"
--- no_error_log
/backend



=== TEST 30: jti that is not a string
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 12345 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_jti')
--- error_log
ciba: decision=invalid reason=bad_jti
--- no_error_log
/backend



=== TEST 31: ciba_token_type: a token without typ
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{}
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like eval
main::refusal('invalid_approval', 'bad_typ')
--- error_log
ciba: decision=invalid reason=bad_typ action="refund"
access: POST /tools/refund status=401 decision=invalid reason=bad_typ
--- no_error_log
/backend



=== TEST 32: ciba_token_type: a token with another typ
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ header => { typ => 'JWT' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_typ')
--- error_log
ciba: decision=invalid reason=bad_typ action="refund"
--- no_error_log
/backend



=== TEST 33: ciba_token_type: typ must match as a whole, not as a suffix
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ header => { typ => 'x-ciba-approval+jwt' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_typ')
--- error_log
ciba: decision=invalid reason=bad_typ
--- no_error_log
/backend



=== TEST 34: ciba_token_type: the right typ passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ header => { typ => 'ciba-approval+jwt' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 35: ciba_token_type: the right typ with "application/" passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ header => { typ => 'application/ciba-approval+jwt' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 36: ciba_token_type with "application/", a typ without it, other case
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_token_type application/ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ header => { typ => 'CIBA-Approval+JWT' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 37: ciba_subject: a token for another subject
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-User: bob
--- mint
{ claims => { sub => 'alice', jti => 'subject-mismatch-1' } }
--- error_code: 403
--- response_headers
Content-Type: application/json
!WWW-Authenticate
--- response_body_like eval
main::refusal('approval_mismatch', 'subject_mismatch')
--- error_log
ciba: decision=mismatch reason=subject_mismatch action="refund" subject="bob" approver="" jti="subject-mismatch-1"
access: POST /tools/refund status=403 decision=mismatch reason=subject_mismatch action=refund jti=subject-mismatch-1
--- no_error_log
/backend



=== TEST 38: ciba_subject: no X-User header at all
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { sub => 'alice' } }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'subject_mismatch')
--- error_log
ciba: decision=mismatch reason=subject_mismatch action="refund" subject=""
--- no_error_log
/backend



=== TEST 39: ciba_subject: a token without sub
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-User: alice
--- mint
{ drop => ['sub'] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'subject_mismatch')
--- error_log
ciba: decision=mismatch reason=subject_mismatch action="refund" subject="alice"
--- no_error_log
/backend



=== TEST 40: ciba_subject: the subject is compared exactly (case matters)
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-User: Alice
--- mint
{ claims => { sub => 'alice' } }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'subject_mismatch')
--- error_log
ciba: decision=mismatch reason=subject_mismatch action="refund" subject="Alice"
--- no_error_log
/backend



=== TEST 41: ciba_subject: the matching subject passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-User: alice
--- mint
{ claims => { sub => 'alice', jti => 'claims-subject-ok' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="alice" approver="alice" jti="claims-subject-ok"
access: POST /backend status=200
--- no_error_log
[error]



=== TEST 42: without ciba_subject, the token's sub is only logged
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-User: bob
--- mint
{ claims => { sub => 'carol' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="carol"



=== TEST 43: nbf that is not a NumericDate
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { nbf => 'now' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_nbf')
--- error_log
ciba: decision=invalid reason=bad_nbf action="refund"
--- no_error_log
/backend



=== TEST 44: sub that is not a string
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { sub => 42 } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_sub')
--- error_log
ciba: decision=invalid reason=bad_sub action="refund"
--- no_error_log
/backend



=== TEST 45: exp and iat as JSON reals are NumericDates too
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_leeway 10s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { iat => time + 2.5, exp => time + 60.5 } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"



=== TEST 46: a jti with a quote, a backslash and UTF-8 is logged escaped
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => "q\"b\\s\x{e9}" } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="q\x22b\x5cs\xc3\xa9" kid="ec1"
access: POST /tools/refund status=200 decision=approved reason=token_valid action=refund jti=q\x22b\x5Cs\xC3\xA9 digest=
