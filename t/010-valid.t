# Valid approval tokens: every algorithm family, keys from PEM files and from
# a JWK set, tokens without "kid" when exactly one key fits, and the token in
# an Authorization-style header.  Each approved request reaches the upstream
# once, and its decision is checked twice: in the access-log line (written by
# the common log_format into error.log, through the $ciba_* variables) and
# in the module's own "ciba:" error-log line.
#
# The preprocessor below adds the common http_config (zone, issuer,
# audience, the five trusted PEM keys at http level, the log format) and,
# for a block without "--- config", the default server config:
#
#     location /tools/ {            # protected, subject from X-User
#         ciba on; ciba_action refund; ciba_subject $http_x_user;
#         proxy_pass http://127.0.0.1:$server_port/backend;
#     }
#     location /backend { return 200 "upstream ran $request_method\n"; }
#
# "--- mint" (CibaTest::preprocessor) mints the token right before the
# block runs; a "bearer => 'Bearer'" option there puts that word before the
# token.  The last 16 characters of every token sent are added to
# "--- no_error_log": no token ever appears whole in a log.

use strict;
use warnings;

use lib 't';
use CibaTest ();
use Test::Nginx::Socket 'no_plan';

use Crypt::PK::RSA;
use JSON::PP ();

repeat_each(1);
log_level('info');

CibaTest::keys_dir();

# the zone, issuer, audience, the trusted key of each type (ec1, ec2, ec3,
# rsa1, ed1), the "full" access log into error.log (t/CibaTest.pm)
our $HttpConfig = CibaTest::http_config(log => 'full', keys => 'all');

our $DefaultConfig = <<'_EOC_';
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    CibaTest::merge_config($block, http => $HttpConfig,
                           default => $DefaultConfig);

    CibaTest::preprocessor($block);

    my $spec = $block->mint;
    my $opts = defined $spec ? eval $spec : undef;
    my $more = $block->more_headers;

    if (ref $opts eq 'HASH' && $opts->{bearer}) {
        my $h = $opts->{token_header} // 'Approval-Token';
        $more =~ s/^(\Q$h\E): /$1: $opts->{bearer} /mi;
        $block->set_value(more_headers => $more);
    }

    add_token_tails($block);
});

# adds the tail of each token sent to the block's no_error_log patterns
sub add_token_tails {
    my $block = shift;
    my $more = $block->more_headers // '';
    my @tails;
    for my $v (ref $more ? @$more : ($more)) {
        while ($v =~ /^(?:Approval-Token|Authorization):[ \t]*(?:bearer )?(\S+)/mgi) {
            push @tails, substr($1, -16) if length $1 >= 16;
        }
    }
    return unless @tails;
    my $nel = $block->no_error_log;
    if (ref $nel eq 'ARRAY') {
        push @$nel, @tails;
    } elsif (ref $nel) {
        $block->set_value(no_error_log => [ $nel, @tails ]);
    } else {
        $block->set_value(no_error_log => join "\n", grep { defined }
                                          $nel, @tails);
    }
}

# The two log lines of an approved request: the access-log line and the
# module's "ciba:" line, both with the digest computed independently by
# CibaTest::digest().
sub approved {
    my (%o) = @_;
    my $method = $o{method} // 'POST';
    my $uri = $o{uri} // '/tools/refund?order=A17&amount=30';
    my ($path, $args) = split /\?/, $uri, 2;
    my $body = exists $o{body} ? $o{body} : '{"amount":30}';
    my $action = $o{action} // 'refund';
    my $subject = $o{subject} // 'alice';
    my $approver = $o{approver} // 'alice';
    my $digest = $o{digest} // CibaTest::digest(
        action => $action, method => $method, path => $path,
        args => $args // '', body => $body, covers => $o{covers});
    my $acc_subject = length $subject ? $subject : '-';

    return [
        qr{CIBA-ACCESS "\Q$method $uri\E HTTP/1\.1" 200 decision=approved reason=token_valid action=\Q$action\E subject=\Q$acc_subject\E approver=\Q$approver\E jti=\Q$o{jti}\E digest=\Q$digest\E$},
        qr{\[info\] .*ciba: decision=approved reason=token_valid action="\Q$action\E" subject="\Q$subject\E" approver="\Q$approver\E" jti="\Q$o{jti}\E" kid="\Q$o{kid}\E" alg=\Q$o{alg}\E digest=\Q$digest\E, client: 127\.0\.0\.1, server: localhost, request: "\Q$method $uri\E HTTP/1\.1"},
    ];
}

run_tests();

__DATA__

=== TEST 1: ES256 (P-256 PEM, kid ec1)
--- mint
{ key => 'ec256', alg => 'ES256', claims => { jti => 'valid-es256' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-es256', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 2: ES384 (P-384 PEM, kid ec2)
--- mint
{ key => 'ec384', alg => 'ES384', claims => { jti => 'valid-es384' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-es384', kid => 'ec2', alg => 'ES384')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 3: ES512 (P-521 PEM, kid ec3)
--- mint
{ key => 'ec521', alg => 'ES512', claims => { jti => 'valid-es512' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-es512', kid => 'ec3', alg => 'ES512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 4: RS256 (RSA 2048 PEM, kid rsa1)
--- mint
{ key => 'rsa', alg => 'RS256', claims => { jti => 'valid-rs256' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-rs256', kid => 'rsa1', alg => 'RS256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 5: RS384
--- mint
{ key => 'rsa', alg => 'RS384', claims => { jti => 'valid-rs384' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-rs384', kid => 'rsa1', alg => 'RS384')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 6: RS512
--- mint
{ key => 'rsa', alg => 'RS512', claims => { jti => 'valid-rs512' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-rs512', kid => 'rsa1', alg => 'RS512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 7: PS256
--- mint
{ key => 'rsa', alg => 'PS256', claims => { jti => 'valid-ps256' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-ps256', kid => 'rsa1', alg => 'PS256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 8: PS384
--- mint
{ key => 'rsa', alg => 'PS384', claims => { jti => 'valid-ps384' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-ps384', kid => 'rsa1', alg => 'PS384')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 9: PS512
--- mint
{ key => 'rsa', alg => 'PS512', claims => { jti => 'valid-ps512' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-ps512', kid => 'rsa1', alg => 'PS512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 10: EdDSA (Ed25519 PEM, kid ed1)
--- mint
{ key => 'ed', alg => 'EdDSA', claims => { jti => 'valid-eddsa' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-eddsa', kid => 'ed1', alg => 'EdDSA')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 11: ES256 with the key from the JWK set
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', alg => 'ES256', claims => { jti => 'valid-jwks-es256' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-jwks-es256', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 12: PS384 with the RSA key from the JWK set
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'rsa', alg => 'PS384', claims => { jti => 'valid-jwks-ps384' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-jwks-ps384', kid => 'rsa1', alg => 'PS384')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 13: RS512 with the RSA key from the JWK set
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'rsa', alg => 'RS512', claims => { jti => 'valid-jwks-rs512' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-jwks-rs512', kid => 'rsa1', alg => 'RS512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 14: EdDSA with the Ed25519 key from the JWK set
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ed', alg => 'EdDSA', claims => { jti => 'valid-jwks-eddsa' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-jwks-eddsa', kid => 'ed1', alg => 'EdDSA')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 15: no kid: of five keys only the P-384 one can verify ES384
--- mint
{ key => 'ec384', alg => 'ES384', no_kid => 1, claims => { jti => 'valid-nokid-es384' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-nokid-es384', kid => 'ec2', alg => 'ES384')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 16: no kid: the only Ed25519 key verifies EdDSA
--- mint
{ key => 'ed', alg => 'EdDSA', no_kid => 1, claims => { jti => 'valid-nokid-eddsa' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-nokid-eddsa', kid => 'ed1', alg => 'EdDSA')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 17: no kid: the only RSA key verifies PS512
--- mint
{ key => 'rsa', alg => 'PS512', no_kid => 1, claims => { jti => 'valid-nokid-ps512' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-nokid-ps512', kid => 'rsa1', alg => 'PS512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 18: no kid anywhere: a PEM key configured without kid=, a token without kid
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', no_kid => 1, claims => { jti => 'valid-nokid-pem' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-nokid-pem', kid => '', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 19: no kid but two keys fit: refused, a kid is required (contrast to the above)
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256-other.pub kid=ec9;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', no_kid => 1, claims => { jti => 'valid-nokid-ambiguous' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval",.*"reason":"kid_required"
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=kid_required action=refund subject=alice approver=- jti=-
ciba: decision=invalid reason=kid_required action="refund" subject="alice" approver="" jti="" kid="" alg=ES256
--- no_error_log
/backend
[alert]
[crit]



=== TEST 20: the token in "Authorization" (ciba_token_header), without a scheme
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_token_header Authorization;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'rsa', alg => 'PS256', token_header => 'Authorization', claims => { jti => 'valid-authz-raw' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-authz-raw', kid => 'rsa1', alg => 'PS256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 21: "Authorization: Bearer <token>"
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_token_header Authorization;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', token_header => 'Authorization', bearer => 'Bearer', claims => { jti => 'valid-authz-bearer' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-authz-bearer', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 22: the "Bearer" scheme is case-insensitive
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_token_header Authorization;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ed', token_header => 'Authorization', bearer => 'bEaReR', claims => { jti => 'valid-authz-case' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-authz-case', kid => 'ed1', alg => 'EdDSA')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 23: "Bearer" also works in the default Approval-Token header
--- mint
{ key => 'ec256', bearer => 'Bearer', claims => { jti => 'valid-approval-bearer' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-approval-bearer', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 24: the token header name is case-insensitive
--- mint
{ key => 'ec521', alg => 'ES512', token_header => 'approval-TOKEN', claims => { jti => 'valid-header-case' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-header-case', kid => 'ec3', alg => 'ES512')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 25: a GET without query or body
--- mint
{ key => 'ec256', claims => { jti => 'valid-get' } }
--- more_headers
X-User: alice
--- request
GET /tools/list
--- error_code: 200
--- response_body
upstream ran GET
--- error_log eval
main::approved(jti => 'valid-get', kid => 'ec1', alg => 'ES256', method => 'GET', uri => '/tools/list', body => '')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 26: "aud" as an array that contains our audience; the second configured audience
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_audience https://tools.example https://tools-b.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', claims => { jti => 'valid-aud-array', aud => [ 'https://other.example', 'https://tools-b.example' ] } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-aud-array', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 27: ciba_token_type: "typ" compares case-insensitively, "application/" optional
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_token_type application/ciba-approval+jwt;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', header => { typ => 'CIBA-Approval+JWT' }, claims => { jti => 'valid-typ' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-typ', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 28: exp 20 s ago is still inside a 30 s leeway
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_leeway 30s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => "ec256", claims => { jti => "valid-leeway", exp => time - 20 } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-leeway', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 29: numeric dates as JSON reals are accepted
--- mint
{ key => 'ec256', claims => { jti => 'valid-reals', exp => time + 60.5, iat => time + 5.25, nbf => time - 0.5 } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-reals', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 30: ciba_binding_claim: the digest in a plain claim, no authorization_details
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_binding_claim action_digest;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', drop => [ 'authorization_details' ], claims => { jti => 'valid-binding-claim', action_digest => CibaTest::digest(action => 'refund', method => 'POST', path => '/tools/refund', args => 'order=A17&amount=30', body => '{"amount":30}') } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-binding-claim', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 31: several authorization_details entries: ours is the last, without "actions"
--- mint
{ key => 'ec256', claims => { jti => 'valid-rar-many', authorization_details => [ { type => 'payment_initiation', identifier => 'x' }, { type => 'nginx_ciba_action', actions => [ 'delete' ], identifier => 'not-this-one' }, { type => 'nginx_ciba_action', identifier => CibaTest::digest(action => 'refund', method => 'POST', path => '/tools/refund', args => 'order=A17&amount=30', body => '{"amount":30}') } ] } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-rar-many', kid => 'ec1', alg => 'ES256')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 32: the action from a variable (a regex capture), another method and subject
--- config
    location ~ ^/tools/(?<tool>[a-z]+)$ {
        ciba on;
        ciba_action $tool;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', action => 'delete', claims => { jti => 'valid-var-action', sub => 'bob' } }
--- more_headers
X-User: bob
--- request
DELETE /tools/delete?id=42
--- error_code: 200
--- response_body
upstream ran DELETE
--- error_log eval
main::approved(jti => 'valid-var-action', kid => 'ec1', alg => 'ES256', method => 'DELETE', uri => '/tools/delete?id=42', body => '', action => 'delete', subject => 'bob', approver => 'bob')
--- no_error_log
[error]
[warn]
[alert]
[crit]



=== TEST 33: a JWK that declares "alg": RS256 verifies RS256
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        ciba_key_file ../html/rs256-only.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'rs256-only.jwks', JSON::PP->new->canonical->encode({ keys => [ { %{ Crypt::PK::RSA->new("$ENV{TEST_NGINX_CIBA_KEYS}/rsa.pub")->export_key_jwk('public', 1) }, kid => 'rsa1', alg => 'RS256', use => 'sig' } ] }) ] ]
--- mint
{ key => 'rsa', alg => 'RS256', claims => { jti => 'valid-jwk-alg' } }
--- more_headers
X-User: alice
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
main::approved(jti => 'valid-jwk-alg', kid => 'rsa1', alg => 'RS256')
--- no_error_log
[error]
[warn]
[alert]
[crit]
