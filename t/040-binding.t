# The binding of an approval token to one exact request: the action
# digest (method, normalized path, sorted args, body hash, extras), the
# body limit, the RAR "authorization_details" entry and the alternative
# top-level binding claim.  A refusal must tell the agent what the
# approval has to be bound to: its "action_digest" is checked against
# CibaTest::digest, an independent implementation.

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

# The digest of a request: POST /tools/refund, no args, body {"amount":5},
# action "refund", unless told otherwise.
sub req_digest {
    my (%req) = @_;
    return digest(action => 'refund', method => 'POST',
                  path => '/tools/refund', args => '',
                  body => '{"amount":5}', %req);
}

# The exact refusal body for that request.
sub refusal {
    my ($error, $reason, %req) = @_;
    my $digest = req_digest(%req);
    my $action = $req{action} // 'refund';
    return qr/\A\{"error":"\Q$error\E","error_description":"[^"]+",\Q"reason":"$reason","action":"$action","action_digest":"$digest"}\E\n\z/;
}

# The module's decision line for that request.
sub decision_line {
    my ($decision, $reason, %req) = @_;
    my $digest = req_digest(%req);
    my $action = $req{action} // 'refund';
    return qr/ciba: decision=\Q$decision\E reason=\Q$reason\E action="\Q$action\E" .* digest=\Q$digest\E, client: /;
}

run_tests();

__DATA__

=== TEST 1: the digest the module computes is CibaTest::digest
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?amount=5&order=A1
{"amount":5}
--- error_code: 401
--- response_headers
WWW-Authenticate: Approval realm="ciba", error="approval_required"
--- response_body_like eval
main::refusal('approval_required', 'no_token', args => 'amount=5&order=A1')
--- error_log eval
[
    main::decision_line('required', 'no_token', args => 'amount=5&order=A1'),
    'access: POST /tools/refund status=401 decision=required reason=no_token action=refund jti=- digest=' . main::req_digest(args => 'amount=5&order=A1'),
]
--- no_error_log
/backend



=== TEST 2: a token for another action
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
{ action => 'delete', claims => { jti => 'other-action-1' } }
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch'),
    'access: POST /tools/refund status=403 decision=mismatch reason=digest_mismatch action=refund jti=other-action-1',
]
--- no_error_log
/backend



=== TEST 3: the same action, another method
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
PUT /tools/refund
{"amount":5}
--- mint
{ method => 'POST' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', method => 'PUT')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', method => 'PUT'),
    'access: PUT /tools/refund status=403 decision=mismatch reason=digest_mismatch',
]
--- no_error_log
/backend



=== TEST 4: the same action, another path
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund-all
{"amount":5}
--- mint
{ path => '/tools/refund' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', path => '/tools/refund-all')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', path => '/tools/refund-all'),
    'access: POST /tools/refund-all status=403 decision=mismatch reason=digest_mismatch',
]
--- no_error_log
/backend



=== TEST 5: ciba_path normalize: the path is the normalized $uri: dot segments, double slashes, %XX
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_path normalize;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/x/..//%72efund
{"amount":5}
--- mint
{ path => '/tools/refund', uri => 1 }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', uri => 1),
    'access: POST /backend status=200',
]



=== TEST 5b: ciba_path canonical (the default): the same path is refused before anything else, 400
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/x/..//%72efund
{"amount":5}
--- mint
{ path => '/tools/refund' }
--- error_code: 400
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!Retry-After
!WWW-Authenticate
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/\[info\] .*ciba: the path has a dot segment, refused by "ciba_path canonical"/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
    'access: POST /tools/refund status=400 decision=bad_request reason=noncanonical_path',
]
--- no_error_log
/backend



=== TEST 5c: ciba_path canonical: a canonical path with escapes is digested as sent, not decoded
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/%C3%A9t%C3%A9;v=1/a%2Bb
{"amount":5}
--- mint
{ path => '/tools/%C3%A9t%C3%A9;v=1/a%2Bb' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', path => '/tools/%C3%A9t%C3%A9;v=1/a%2Bb'),
]



=== TEST 5d: ciba_path canonical: a token for the decoded path does not fit the escaped one
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/a%2Bb
{"amount":5}
--- mint
{ path => '/tools/a+b' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', path => '/tools/a%2Bb')
--- no_error_log
/backend



=== TEST 6: the same action, another arg value
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?amount=6&order=A1
{"amount":5}
--- mint
{ args => 'amount=5&order=A1' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', args => 'amount=6&order=A1')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', args => 'amount=6&order=A1'),
]
--- no_error_log
/backend



=== TEST 7: the same action, an extra arg
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?amount=5&order=A1&notify=1
{"amount":5}
--- mint
{ args => 'amount=5&order=A1' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', args => 'amount=5&order=A1&notify=1')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', args => 'amount=5&order=A1&notify=1'),
]
--- no_error_log
/backend



=== TEST 8: the args reordered still match
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?order=A1&amount=5
{"amount":5}
--- mint
{ args => 'amount=5&order=A1' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', args => 'amount=5&order=A1'),
    'access: POST /backend status=200',
]



=== TEST 9: repeated args are refused by default (400 duplicate_arg), before the body counts
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?a=1&&a=1&
{"amount":5}
--- mint
{ args => 'a=1&a=1' }
--- error_code: 400
--- response_headers
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/\[info\] .*ciba: the query repeats the argument "a", refused by "ciba_duplicate_args refuse"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 9b: ciba_duplicate_args keep: "a=1&&a=1&" is two "a=1", empty pieces dropped
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_duplicate_args keep;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?a=1&&a=1&
{"amount":5}
--- mint
{ args => 'a=1&a=1' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', args => 'a=1&a=1'),
]



=== TEST 10: ciba_duplicate_args keep: a token for one "a=1" does not fit two
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_duplicate_args keep;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?a=1&&a=1&
{"amount":5}
--- mint
{ args => 'a=1' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', args => 'a=1&a=1')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', args => 'a=1&a=1'),
]
--- no_error_log
/backend



=== TEST 10b: ciba_duplicate_args keep: the values of one name count in their order
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_duplicate_args keep;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?amount=3000&amount=30
{"amount":5}
--- mint
{ args => 'amount=30&amount=3000' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', args => 'amount=3000&amount=30')
--- no_error_log
/backend



=== TEST 10c: the args are sorted by name only: other names reordered still match
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?zeta=1&Beta=2&alpha=3
{"amount":5}
--- mint
{ args => 'alpha=3&Beta=2&zeta=1' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', args => 'zeta=1&Beta=2&alpha=3'),
]



=== TEST 11: args are raw pieces: "a=%31" is not "a=1"
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?a=%31
{"amount":5}
--- mint
{ args => 'a=1' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', args => 'a=%31')
--- no_error_log
/backend



=== TEST 12: another body, one byte different
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":6}
--- mint
{ body => '{"amount":5}' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', body => '{"amount":6}')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', body => '{"amount":6}'),
    'access: POST /tools/refund status=403 decision=mismatch reason=digest_mismatch',
]
--- no_error_log
/backend



=== TEST 13: a binary body with NUL and high bytes, bound correctly
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n\x00\x01bin\xfe\xff\x80\x00ary\x7f\x00"
--- mint
{}
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', body => "\x00\x01bin\xfe\xff\x80\x00ary\x7f\x00"),
]



=== TEST 14: a binary body: the same bytes but one
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n\x00\x01bin\xfe\xff\x80\x00ary\x7f\x00"
--- mint
{ body => "\x00\x01bin\xfe\xff\x80\x01ary\x7f\x00" }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', body => "\x00\x01bin\xfe\xff\x80\x00ary\x7f\x00")
--- no_error_log
/backend



=== TEST 15: a body over ciba_body_limit with Content-Length: 413, no upstream
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_body_limit 16;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
0123456789abcdefg
--- mint
{}
--- error_code: 413
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like: ^\{"error":"approval_body_too_large","error_description":"[^"]+","reason":"body_too_large","action":"refund","action_digest":""\}$
--- error_log
ciba: decision=body_too_large reason=body_too_large
access: POST /tools/refund status=413 decision=body_too_large reason=body_too_large
--- no_error_log
/backend
[error]



=== TEST 16: a chunked body over ciba_body_limit: 413, no upstream
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_body_limit 16;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n"
. "a\r\n0123456789\r\n"
. "7\r\nabcdefg\r\n"
. "0\r\n\r\n"
--- more_headers
Transfer-Encoding: chunked
--- mint
{ body => '0123456789abcdefg' }
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"error":"approval_body_too_large","error_description":"[^"]+","reason":"body_too_large","action":"refund","action_digest":""\}$
--- error_log
ciba: decision=body_too_large reason=body_too_large
access: POST /tools/refund status=413 decision=body_too_large reason=body_too_large
--- no_error_log
/backend
[error]



=== TEST 17: a chunked body within the limit, bound correctly
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_body_limit 16;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n"
. "a\r\n0123456789\r\n"
. "6\r\nabcdef\r\n"
. "0\r\n\r\n"
--- more_headers
Transfer-Encoding: chunked
--- mint
{ body => '0123456789abcdef' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', body => '0123456789abcdef'),
    'access: POST /backend status=200',
]



=== TEST 18: a body exactly at ciba_body_limit passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_body_limit 16;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
0123456789abcdef
--- mint
{}
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', body => '0123456789abcdef'),
]



=== TEST 19: a body is not limited when the digest does not cover it
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest method path args;
        ciba_body_limit 16;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
0123456789abcdefghijklmnopqrstuvwxyz
--- mint
{ covers => [qw(method path args)] }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', covers => [qw(method path args)]),
]



=== TEST 20: ciba_digest method path: the body and args may change
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest method path;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund?amount=999
{"amount":999}
--- mint
{ covers => [qw(method path)], args => 'amount=5', body => '{"amount":5}' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', covers => [qw(method path)]),
]



=== TEST 21: ciba_digest method path: the method still counts
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest method path;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
PATCH /tools/refund
{"amount":5}
--- mint
{ covers => [qw(method path)], method => 'POST' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', covers => [qw(method path)], method => 'PATCH')
--- no_error_log
/backend



=== TEST 22: ciba_digest method path: a token covering everything does not fit
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest method path;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', covers => [qw(method path)])
--- no_error_log
/backend



=== TEST 23: ciba_digest_extra $http_x_agent: the right agent passes
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest_extra $http_x_agent;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-Agent: agent-7
--- mint
{ extras => ['agent-7'] }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', extras => ['agent-7']),
]



=== TEST 24: ciba_digest_extra $http_x_agent: another agent
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest_extra $http_x_agent;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-Agent: agent-8
--- mint
{ extras => ['agent-7'] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', extras => ['agent-8'])
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', extras => ['agent-8']),
]
--- no_error_log
/backend



=== TEST 25: ciba_digest_extra $http_x_agent: no agent header
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest_extra $http_x_agent;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ extras => ['agent-7'] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', extras => [''])
--- no_error_log
/backend



=== TEST 26: ciba_digest_extra repeated: the values count in order
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest_extra $http_x_agent;
        ciba_digest_extra "tenant-$http_x_tenant";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-Agent: agent-7
X-Tenant: t1
--- mint
{ extras => ['tenant-t1', 'agent-7'] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', extras => ['agent-7', 'tenant-t1'])
--- no_error_log
/backend



=== TEST 27: ciba_digest_extra repeated: the right values pass
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_digest_extra $http_x_agent;
        ciba_digest_extra "tenant-$http_x_tenant";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- more_headers
X-Agent: agent-7
X-Tenant: t1
--- mint
{ extras => ['agent-7', 'tenant-t1'] }
--- response_body
upstream ran POST



=== TEST 28: ciba_action $arg_op: the action comes from the request
--- config
    location /tools/op {
        ciba on;
        ciba_action $arg_op;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/op?op=refund
{"amount":5}
--- mint
{ action => 'refund' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', path => '/tools/op', args => 'op=refund'),
    'access: POST /tools/op status=200 decision=approved reason=token_valid action=refund ',
]



=== TEST 29: ciba_action $arg_op: a token for another action
--- config
    location /tools/op {
        ciba on;
        ciba_action $arg_op;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/op?op=delete
{"amount":5}
--- mint
{ action => 'refund' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', action => 'delete', path => '/tools/op', args => 'op=delete')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', action => 'delete', path => '/tools/op', args => 'op=delete'),
    'access: POST /tools/op status=403 decision=mismatch reason=digest_mismatch action=delete ',
]
--- no_error_log
/backend



=== TEST 30: ciba_action $arg_op: an empty action is an error, not a pass
--- config
    location /tools/op {
        ciba on;
        ciba_action $arg_op;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/op?other=1
{"amount":5}
--- mint
{ action => 'refund' }
--- error_code: 503
--- response_headers
Retry-After: 5
Content-Type: application/json
--- response_body_like: ^\{"error":"approval_unavailable","error_description":"[^"]+","reason":"empty_action","action":"","action_digest":""\}$
--- error_log
the action evaluated to an empty string
ciba: decision=unavailable reason=empty_action
--- no_error_log
/backend



=== TEST 31: ciba_binding_claim: the top-level claim binds, RAR is ignored
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_binding_claim action_digest;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{
    claims => {
        action_digest => main::req_digest(),
        authorization_details => [ { type => 'nginx_ciba_action',
                                     actions => ['refund'],
                                     identifier => 'not-this-digest' } ],
    },
}
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid'),
]



=== TEST 32: ciba_binding_claim: a RAR binding alone is not enough
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_binding_claim action_digest;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'no_binding')
--- error_log eval
[
    main::decision_line('mismatch', 'no_binding'),
    'access: POST /tools/refund status=403 decision=mismatch reason=no_binding',
]
--- no_error_log
/backend



=== TEST 33: ciba_binding_claim: the claim holds another digest
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_binding_claim action_digest;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":6}
--- mint
{ claims => { action_digest => main::req_digest() } }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', body => '{"amount":6}')
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', body => '{"amount":6}'),
]
--- no_error_log
/backend



=== TEST 34: ciba_binding_claim: the claim is not a string
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_binding_claim action_digest;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { action_digest => [ main::req_digest() ] } }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch')
--- no_error_log
/backend



=== TEST 35: a RAR entry of another type
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
{
    claims => {
        authorization_details => [ { type => 'payment_initiation',
                                     actions => ['refund'],
                                     identifier => main::req_digest() } ],
    },
}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'no_binding')
--- error_log eval
[
    main::decision_line('mismatch', 'no_binding'),
    'access: POST /tools/refund status=403 decision=mismatch reason=no_binding',
]
--- no_error_log
/backend



=== TEST 36: a RAR entry whose actions omit our action
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
{
    claims => {
        authorization_details => [ { type => 'nginx_ciba_action',
                                     actions => ['delete', 'refund-all'],
                                     identifier => main::req_digest() } ],
    },
}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'action_mismatch')
--- error_log eval
[
    main::decision_line('mismatch', 'action_mismatch'),
]
--- no_error_log
/backend



=== TEST 37: a RAR entry with "actions" that is not an array
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
{
    claims => {
        authorization_details => [ { type => 'nginx_ciba_action',
                                     actions => 'refund',
                                     identifier => main::req_digest() } ],
    },
}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'action_mismatch')
--- no_error_log
/backend



=== TEST 38: a RAR entry without "actions": the identifier alone binds
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
{
    claims => {
        authorization_details => [ { type => 'nginx_ciba_action',
                                     identifier => main::req_digest() } ],
    },
}
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid'),
]



=== TEST 39: several RAR entries, one matching
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
{
    claims => {
        authorization_details => [
            { type => 'payment_initiation', actions => ['refund'],
              identifier => main::req_digest() },
            { type => 'nginx_ciba_action', actions => ['refund'],
              identifier => main::req_digest(body => '{"amount":6}') },
            'not-an-object',
            { type => 'nginx_ciba_action', actions => ['delete'],
              identifier => main::req_digest() },
            { type => 'nginx_ciba_action', actions => ['delete', 'refund'],
              identifier => main::req_digest() },
        ],
    },
}
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid'),
]



=== TEST 40: several RAR entries, none matching
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
{
    claims => {
        authorization_details => [
            { type => 'nginx_ciba_action', actions => ['refund'],
              identifier => main::req_digest(body => '{"amount":6}') },
            { type => 'nginx_ciba_action', actions => ['delete'],
              identifier => main::req_digest() },
        ],
    },
}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'action_mismatch')
--- no_error_log
/backend



=== TEST 41: authorization_details that is not an array
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
{
    claims => {
        authorization_details => { type => 'nginx_ciba_action',
                                   actions => ['refund'],
                                   identifier => main::req_digest() },
    },
}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'no_binding')
--- error_log eval
[
    main::decision_line('mismatch', 'no_binding'),
]
--- no_error_log
/backend



=== TEST 42: no authorization_details at all
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
{ drop => ['authorization_details'] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'no_binding')
--- no_error_log
/backend



=== TEST 43: ciba_authorization_details_type: another type is ours
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_authorization_details_type https://tools.example/approval;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{
    claims => {
        authorization_details => [
            { type => 'nginx_ciba_action', actions => ['refund'],
              identifier => main::req_digest() },
            { type => 'https://tools.example/approval', actions => ['refund'],
              identifier => main::req_digest() },
        ],
    },
}
--- response_body
upstream ran POST



=== TEST 44: ciba_authorization_details_type: the default type is then foreign
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_authorization_details_type https://tools.example/approval;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{}
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'no_binding')
--- no_error_log
/backend



=== TEST 45: a body buffered to a temporary file (100 KB) is hashed in full
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        client_body_buffer_size 8k;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n" . ('0123456789abcdef' x 6400)
--- mint
{}
--- response_body
upstream ran POST
--- error_log eval
[
    'a client request body is buffered to a temporary file',
    main::decision_line('approved', 'token_valid', body => '0123456789abcdef' x 6400),
]



=== TEST 46: a body in a temporary file: its last byte counts
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        client_body_buffer_size 8k;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
"POST /tools/refund\n" . ('0123456789abcdef' x 6400)
--- mint
{ body => ('0123456789abcdef' x 6399) . '0123456789abcdeX' }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', body => '0123456789abcdef' x 6400)
--- error_log eval
[
    main::decision_line('mismatch', 'digest_mismatch', body => '0123456789abcdef' x 6400),
]
--- no_error_log
/backend



=== TEST 60a: ciba_path canonical refuses an encoded "/" (%2F): /t/a%2Fb
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/a%2Fb
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escapes a byte that must be sent as is/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60b: ciba_path canonical refuses an encoded "/" in lowercase (%2f): /t/a%2fb
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/a%2fb
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escape that is not two uppercase hex digits/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60c: ciba_path canonical refuses an empty segment (//): /t/bucket/a//b
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/bucket/a//b
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/has an empty segment/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60d: ciba_path canonical refuses a "." segment: /t/./x
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/./x
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/has a dot segment/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60e: ciba_path canonical refuses a ".." segment: /t/y/../x
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/y/../x
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/has a dot segment/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60f: ciba_path canonical refuses a final ".." segment: /t/y/..
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/y/..
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/has a dot segment/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60g: ciba_path canonical refuses an encoded dot segment (%2E%2E): /t/y/%2E%2E/x
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/y/%2E%2E/x
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escapes a byte that must be sent as is/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60h: ciba_path canonical refuses an encoded unreserved letter (%41): /t/%41
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/%41
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escapes a byte that must be sent as is/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60i: ciba_path canonical refuses an encoded "~" (%7E): /t/%7E
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/%7E
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escapes a byte that must be sent as is/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60j: ciba_path canonical refuses lowercase hex escapes: /t/caf%c3%a9
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/caf%c3%a9
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/escape that is not two uppercase hex digits/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 60k: ciba_path canonical refuses a raw quote: /t/a"b
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/a"b
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"noncanonical_path","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/has a byte that must be escaped/,
    qr/ciba: decision=bad_request reason=noncanonical_path action="refund" /,
]
--- no_error_log
/backend



=== TEST 61a: ciba_duplicate_args refuse: amount=30&amount=3000
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?amount=30&amount=3000
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/the query repeats the argument "amount"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 61b: ciba_duplicate_args refuse: names compared case-insensitively (?AMOUNT=1&amount=5000)
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?AMOUNT=1&amount=5000
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/the query repeats the argument "amount"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 61c: ciba_duplicate_args refuse: names compared decoded (%61mount)
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?amount=1&%61mount=2
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/the query repeats the argument "%61mount"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 61d: ciba_duplicate_args refuse: "+" and %20 in names are both a space
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?a+b=1&a%20b=2
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/the query repeats the argument "a%20b"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 61e: ciba_duplicate_args refuse: a name without "=" repeated with one
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?flag&flag=1
{"amount":5}
--- mint
{ path => '/t/x' }
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/the query repeats the argument "flag"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" /,
]
--- no_error_log
/backend



=== TEST 62a: a canonical path with bytes that are not UTF-8 (%FF%FE) is approved as sent, also in the token-only location
--- config
    location /c/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /c/%FF%FE
{"amount":5}
--- mint
{ path => '/c/%FF%FE' }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', path => '/c/%FF%FE'),
]



=== TEST 63a: ciba_digest_header: the bound header's value counts
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5}
--- more_headers
X-Agent-Id: agent-7
--- mint
{ headers => [ [ 'X-Agent-Id', 'agent-7' ] ] }
--- response_body
upstream ran POST
--- error_log eval
[
    main::decision_line('approved', 'token_valid', path => '/t/x', headers => [ [ 'X-Agent-Id', 'agent-7' ] ]),
]



=== TEST 63b: ciba_digest_header: a token for agent-7 and a request with two X-Agent-Id fields (agent-7, agent-evil): 400 duplicate_header
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5}
--- more_headers
X-Agent-Id: agent-7
x-agent-id: agent-evil
--- mint
{ headers => [ [ 'X-Agent-Id', 'agent-7' ] ] }
--- error_code: 400
--- response_body_like eval
qr/\A\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_header","action":"refund","action_digest":""\}\n\z/
--- error_log eval
[
    qr/\[info\] .*ciba: the request has 2 "x-agent-id" header fields, refused by "ciba_digest_header" without "repeated"/,
    qr/ciba: decision=bad_request reason=duplicate_header action="refund" /,
]
--- no_error_log
/backend



=== TEST 63c: ciba_digest_header repeated: all the fields count, in order; a token for the first alone does not fit
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id repeated;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5}
--- more_headers
X-Agent-Id: agent-7
X-Agent-Id: agent-evil
--- mint
{ headers => [ [ 'X-Agent-Id', 'agent-7' ] ] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', path => '/t/x', headers => [ [ 'X-Agent-Id', 'agent-7', 'agent-evil' ] ])
--- no_error_log
/backend



=== TEST 63d: ciba_digest_header repeated: a token for both fields in their order passes
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id repeated;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5}
--- more_headers
X-Agent-Id: agent-7
X-Agent-Id: agent-evil
--- mint
{ headers => [ [ 'X-Agent-Id', 'agent-7', 'agent-evil' ] ] }
--- response_body
upstream ran POST



=== TEST 63e: ciba_digest_header: an absent header is not an empty one
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5}
--- mint
{ headers => [ [ 'X-Agent-Id', '' ] ] }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_mismatch', 'digest_mismatch', path => '/t/x', headers => [ [ 'X-Agent-Id' ] ])
--- no_error_log
/backend



=== TEST 63f: ciba_digest_header: bad names and a header bound twice fail nginx -t
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_digest_header X-Agent-Id;
        ciba_digest_header x-agent-id;
    }
--- must_die
--- error_log
header "x-agent-id" is bound twice



=== TEST 64a: an action that is not UTF-8 ($ciba_arg_op decoded to a 0xFF byte): 400 not_utf8, logged
--- config
    location /t/ {
        ciba on;
        ciba_action $ciba_arg_op;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?op=%FF
{"amount":5}
--- error_code: 400
--- response_body_like: ^\{"error":"approval_bad_request","error_description":"[^"]+","reason":"not_utf8","action_digest":""\}$
--- error_log eval
[
    qr/\[info\] .*ciba: the action name is not valid UTF-8/,
    qr/ciba: decision=bad_request reason=not_utf8 action="\\xff" /,
]
--- no_error_log
/backend



=== TEST 65a: Expect: 100-continue with a Content-Length over ciba_body_limit: 413 at once, no "100 Continue"
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_body_limit 10;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x
{"amount":5000000}
--- more_headers
Expect: 100-continue
--- error_code: 413
--- response_body_like: "error":"approval_body_too_large"
--- error_log eval
[
    qr/ciba: decision=body_too_large reason=body_too_large /,
]
--- no_error_log
/backend



=== TEST 65b: Expect: 100-continue on a request refused before its body is read (a repeated argument): no "100 Continue"
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?a=1&a=2
{"amount":5}
--- more_headers
Expect: 100-continue
--- error_code: 400
--- response_body_like: "reason":"duplicate_arg"
--- no_error_log
/backend



=== TEST 66a: ciba_path canonical: a rewrite in the location changes neither the path nor the args the digest covers (the request line's)
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        rewrite ^ /t/other?z=9 break;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?a=1
{"amount":5}
--- mint
{ path => '/t/x', args => 'a=1' }
--- response_body
upstream ran POST
--- error_log eval
[ main::decision_line('approved', 'token_valid', path => '/t/x', args => 'a=1') ]



=== TEST 66b: ciba_path normalize: the digest covers $uri and $args after the rewrite
--- config
    location /t/ {
        ciba on;
        ciba_action refund;
        ciba_path normalize;
        rewrite ^ /t/other?z=9 break;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request
POST /t/x?a=1
{"amount":5}
--- mint
{ path => '/t/other', args => 'z=9&a=1', uri => 1 }
--- response_body
upstream ran POST
--- error_log eval
[ main::decision_line('approved', 'token_valid', path => '/t/other', args => 'z=9&a=1', uri => 1) ]
