# The decision log and the $ciba_* variables.
#
# - values from tokens, requests and configuration are escaped in the
#   module's "ciba:" error-log line (bytes outside printable ASCII, '"' and
#   '\' become \xHH) and bounded (128 bytes, then "..."), so a log line can
#   never be forged or split; nginx escapes the variables in the access log;
# - values of a token that was not verified never reach the log (kid: only
#   a configured key's kid is logged);
# - ciba_log_level picks the level of the line, and error_log's level
#   filters it like any other message;
# - the variables are empty (access log: "-") where the module did not
#   decide: unprotected locations and "ciba off" inside a protected one;
# - the variables are usable by other modules (add_header, proxy_set_header).
#
# The preprocessor below adds the common http_config (zone, issuer, audience,
# the trusted PEM keys at http level, the log format writing the access log
# into error.log) and, for a block without "--- config", this server config:
#
#     location /tools/ { ciba on; ciba_action refund;
#                        proxy_pass http://127.0.0.1:$server_port/backend; }
#     location /backend { return 200 "upstream ran $request_method\n"; }
#
# "--- mint" (CibaTest::preprocessor) mints the token right before the
# block runs.  The last 16 characters of every token sent are added to
# "--- no_error_log": no token ever appears whole in a log.

use strict;
use warnings;

use lib 't';
use CibaTest ();
use Test::Nginx::Socket 'no_plan';

use JSON::PP ();

repeat_each(1);
log_level('info');

our $Keys = CibaTest::keys_dir();

# the zone, issuer, audience, these keys, the "full" access log into
# error.log (t/CibaTest.pm)
our $HttpConfig = CibaTest::http_config(log => 'full', keys => [
    'ec256.pub kid=ec1',
    'rsa.pub kid=rsa1',
    'ed.pub kid=ed1',
]);

our $DefaultConfig = <<'_EOC_';
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    CibaTest::merge_config($block, http => $HttpConfig,
                           default => $DefaultConfig);

    CibaTest::preprocessor($block);
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
    # at debug level nginx itself logs the request headers: there, only
    # the module's own lines must not hold a token
    if (($block->log_level // '') eq 'debug') {
        @tails = map { qr/ciba: [^\n]*\Q$_\E/ } @tails;
    }
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

# a JWK set with the trusted ec256 key under an operator-chosen kid
sub jwks_with_kid {
    my ($kid) = @_;
    my $jwk = Crypt::PK::ECC->new("$Keys/ec256.pub")->export_key_jwk('public', 1);
    return JSON::PP->new->canonical->encode(
        { keys => [ { %$jwk, kid => $kid, use => 'sig' } ] });
}

sub digest_of {
    my (%o) = @_;
    return CibaTest::digest(action => 'refund', method => 'POST',
                            path => '/tools/refund',
                            args => 'order=A17&amount=30',
                            body => '{"amount":30}', %o);
}

run_tests();

__DATA__

=== TEST 1: a jti with a newline and a forged log line is escaped, the line is not split
--- mint
{ claims => { jti => "j1\n2026/01/01 00:00:00 [info] 1#1: *1 ciba: decision=approved FORGED" } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="j1\x0a2026/01/01 00:00:00 [info] 1#1: *1 ciba: decision=approved FORGED" kid="ec1" alg=ES256
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 200 decision=approved reason=token_valid action=refund subject=- approver=alice jti=j1\x0A2026/01/01 00:00:00 [info] 1#1: *1 ciba: decision=approved FORGED digest=
--- no_error_log eval
[ qr{^2026/01/01 00:00:00}, qr{^\s*\[info\] 1#1: }, "[alert]", "[crit]" ]



=== TEST 2: quotes and backslashes in the jti cannot end the quoted field
--- mint
{ claims => { jti => 'q1" kid="forged" alg=none x="\\' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
jti="q1\x22 kid=\x22forged\x22 alg=none x=\x22\x5c" kid="ec1" alg=ES256
jti=q1\x22 kid=\x22forged\x22 alg=none x=\x22\x5C digest=
--- no_error_log
kid="forged"
[alert]
[crit]



=== TEST 3: a sub with a CR, a tab, UTF-8 and a control byte
--- mint
{ claims => { sub => "bob\r\t\x{e5}\x{1F642}\x01!", jti => 'utf8-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
approver="bob\x0d\x09\xc3\xa5\xf0\x9f\x99\x82\x01!" jti="utf8-1"
approver=bob\x0D\x09\xC3\xA5\xF0\x9F\x99\x82\x01! jti=utf8-1
--- no_error_log
[alert]
[crit]



=== TEST 4: a 10 KB sub is bounded to 128 bytes in the error-log line
--- config
    large_client_header_buffers 4 64k;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { sub => 'A' x 10240, jti => 'long-sub-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
[ 'ciba: decision=approved reason=token_valid action="refund" subject="" approver="' . ('A' x 128) . '..." jti="long-sub-1" kid="ec1" alg=ES256 digest=' ]
--- no_error_log eval
[ qr/approver="A{129}/, '[alert]', '[crit]' ]



=== TEST 5: a 256-byte jti (the longest accepted) is bounded to 128 bytes in the error-log line
--- mint
{ claims => { jti => 'J' x 256 } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
[ 'approver="alice" jti="' . ('J' x 128) . '..." kid="ec1"',
  'approver=alice jti=' . ('J' x 256) . ' digest=' ]
--- no_error_log eval
[ qr/jti="J{129}/, '[alert]', '[crit]' ]



=== TEST 6: a 10 KB jti is refused and never logged
--- config
    large_client_header_buffers 4 64k;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'JX' x 5120 } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"bad_jti"
--- error_log
ciba: decision=invalid reason=bad_jti action="refund" subject="" approver="" jti="" kid="ec1" alg=ES256
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_jti action=refund subject=- approver=- jti=- digest=
--- no_error_log
JXJXJXJX
/backend
[alert]
[crit]



=== TEST 7: a token's kid with a newline and quotes is never logged (only configured kids are)
--- mint
{ header => { kid => "evil\"kid\n2026/01/01 00:00:00 [alert] FORGED" } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"unknown_kid"
--- error_log
ciba: decision=invalid reason=unknown_kid action="refund" subject="" approver="" jti="" kid="" alg=ES256 digest=
--- no_error_log
evil
FORGED
[alert]
[crit]



=== TEST 8: a 10 KB kid is refused and never logged
--- config
    large_client_header_buffers 4 64k;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ header => { kid => 'KQ' x 5120 } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"malformed_header"
--- error_log
ciba: decision=invalid reason=malformed_header action="refund" subject="" approver="" jti="" kid="" alg=ES256 digest=
--- no_error_log
KQKQKQKQ
[alert]
[crit]



=== TEST 9: a configured kid with a newline, quotes and a backslash is escaped
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_key_file ../html/odd-kid.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'odd-kid.jwks', main::jwks_with_kid("ops \"key\"\n\\2") ] ]
--- mint
{ header => { kid => "ops \"key\"\n\\2" }, claims => { jti => 'odd-kid-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
jti="odd-kid-1" kid="ops \x22key\x22\x0a\x5c2" alg=ES256
--- no_error_log
[alert]
[crit]



=== TEST 10: a subject from a request header with quotes and backslashes is escaped
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { sub => 'ali"ce\\', jti => 'subj-quote-1' } }
--- more_headers
X-User: ali"ce\
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
action="refund" subject="ali\x22ce\x5c" approver="ali\x22ce\x5c" jti="subj-quote-1"
subject=ali\x22ce\x5C approver=ali\x22ce\x5C jti=subj-quote-1
--- no_error_log
[alert]
[crit]



=== TEST 11: a subject with bytes that are not UTF-8 mismatches and is logged escaped
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'subj-bytes-1' } }
--- more_headers eval
"X-User: \xff\xferoot"
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 403
--- response_headers
Content-Type: application/json
Cache-Control: no-store
!WWW-Authenticate
--- response_body_like: ^\{"error":"approval_mismatch",.*"reason":"subject_mismatch"
--- error_log
ciba: decision=mismatch reason=subject_mismatch action="refund" subject="\xff\xferoot" approver="" jti="subj-bytes-1" kid="ec1" alg=ES256
decision=mismatch reason=subject_mismatch action=refund subject=\xFF\xFEroot approver=- jti=subj-bytes-1
--- no_error_log
/backend
[alert]
[crit]



=== TEST 12: a 10 KB subject is bounded to 128 bytes
--- config
    large_client_header_buffers 4 64k;
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- more_headers eval
"X-User: " . ('U' x 10240)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"no_token"
--- error_log eval
[ 'ciba: decision=required reason=no_token action="refund" subject="' . ('U' x 128) . '..." approver=""' ]
--- no_error_log eval
[ qr/subject="U{129}/, '[alert]', '[crit]' ]



=== TEST 13: an action from a request header with quotes, a backslash and UTF-8 is escaped
--- config
    location /tools/ {
        ciba on;
        ciba_action $http_x_tool;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ action => "re\"fund\\\xc3\xa9", claims => { jti => "action-esc-1", authorization_details => [ { type => "nginx_ciba_action", identifier => main::digest_of(action => "re\"fund\\\xc3\xa9") } ] } }
--- more_headers eval
"X-Tool: re\"fund\\\xc3\xa9"
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="re\x22fund\x5c\xc3\xa9" subject="" approver="alice" jti="action-esc-1"
reason=token_valid action=re\x22fund\x5C\xC3\xA9 subject=-
--- no_error_log
[alert]
[crit]



=== TEST 14: the refusal's JSON body carries such an action correctly escaped
--- config
    location /tools/ {
        ciba on;
        ciba_action $http_x_tool;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- more_headers eval
"X-Tool: re\"fund\\\x01"
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: ^\{"error":"approval_required",.*"reason":"no_token","action":"re\\"fund\\\\\\u0001","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
ciba: decision=required reason=no_token action="re\x22fund\x5c\x01"
--- no_error_log
[alert]
[crit]



=== TEST 15: the refusal line: decision, reason, subject, the digest computed independently, no token
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- more_headers
X-User: carol
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- error_log eval
[ qr{\[info\] .*ciba: decision=required reason=no_token action="refund" subject="carol" approver="" jti="" kid="" alg= digest=\Q${\ main::digest_of()}\E, client: 127\.0\.0\.1, server: localhost, request: "POST /tools/refund\?order=A17&amount=30 HTTP/1\.1"},
  qr{CIBA-ACCESS "POST /tools/refund\?order=A17&amount=30 HTTP/1\.1" 401 decision=required reason=no_token action=refund subject=carol approver=- jti=- digest=\Q${\ main::digest_of()}\E$} ]
--- no_error_log
[alert]
[crit]



=== TEST 16: ciba_log_level notice
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_log_level notice;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'level-notice-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
qr{\[notice\] .*ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="level-notice-1"}
--- no_error_log eval
[ qr{\[(?:info|warn|error)\] .*ciba: decision=}, '[alert]', '[crit]' ]



=== TEST 17: ciba_log_level warn
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_log_level warn;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- error_log eval
qr{\[warn\] .*ciba: decision=required reason=no_token action="refund"}
--- no_error_log eval
[ qr{\[(?:info|notice|error)\] .*ciba: decision=}, '[alert]', '[crit]' ]



=== TEST 18: ciba_log_level error
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_log_level error;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256-other', claims => { jti => 'level-error-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- error_log eval
qr{\[error\] .*ciba: decision=invalid reason=bad_signature action="refund" subject="" approver="" jti="level-error-1" kid="ec1" alg=ES256}
--- no_error_log eval
[ qr{\[(?:info|notice|warn)\] .*ciba: decision=}, '[alert]', '[crit]' ]



=== TEST 19: with "error_log ... warn", an info-level decision line is not written; the variables still are
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        error_log logs/error.log warn;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'level-filtered-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 200 decision=approved reason=token_valid action=refund subject=- approver=alice jti=level-filtered-1
--- no_error_log
ciba: decision=
[alert]
[crit]



=== TEST 20: with "error_log ... warn" and ciba_log_level warn, the line is written
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_log_level warn;
        error_log logs/error.log warn;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'level-warn-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
qr{\[warn\] .*ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="level-warn-1" kid="ec1" alg=ES256}
--- no_error_log
[alert]
[crit]



=== TEST 21: the variables are empty in a location without ciba, and no decision is logged
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /plain {
        return 200 "decision=[$ciba_decision] reason=[$ciba_reason] action=[$ciba_action] digest=[$ciba_digest] subject=[$ciba_subject] approver=[$ciba_approver] jti=[$ciba_jti] ref=[$ciba_request_ref] msg=[$ciba_binding_message]\n";
    }
--- more_headers
X-User: alice
Approval-Token: x.y.z
--- request
GET /plain?order=A17
--- error_code: 200
--- response_body
decision=[] reason=[] action=[] digest=[] subject=[] approver=[] jti=[] ref=[] msg=[]
--- error_log
CIBA-ACCESS "GET /plain?order=A17 HTTP/1.1" 200 decision=- reason=- action=- subject=- approver=- jti=- digest=-
--- no_error_log
ciba: decision=
[alert]
[crit]



=== TEST 22: "ciba off" in a nested location: passes without a token, no decision
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;

        location /tools/public/ {
            ciba off;
            proxy_pass http://127.0.0.1:$server_port/backend;
        }
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
POST /tools/public/info
{"q":1}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
CIBA-ACCESS "POST /tools/public/info HTTP/1.1" 200 decision=- reason=- action=- subject=- approver=- jti=- digest=-
--- no_error_log
ciba: decision=
[alert]
[crit]



=== TEST 23: ... while the enclosing location stays protected
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;

        location /tools/public/ {
            ciba off;
            proxy_pass http://127.0.0.1:$server_port/backend;
        }
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: ^\{"error":"approval_required",.*"reason":"no_token"
--- error_log
ciba: decision=required reason=no_token action="refund"
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=required reason=no_token action=refund
--- no_error_log
/backend
[alert]
[crit]



=== TEST 24: the variables reach the upstream (proxy_set_header) and response headers (add_header)
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_subject $http_x_user;
        proxy_set_header X-Ciba-Approver $ciba_approver;
        proxy_set_header X-Ciba-Jti $ciba_jti;
        proxy_set_header X-Ciba-Decision $ciba_decision;
        proxy_set_header X-Ciba-Digest $ciba_digest;
        proxy_set_header Approval-Token "";
        add_header X-Ciba "$ciba_decision $ciba_reason $ciba_action $ciba_subject" always;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend {
        return 200 "approver=$http_x_ciba_approver jti=$http_x_ciba_jti decision=$http_x_ciba_decision digest=$http_x_ciba_digest token=[$http_approval_token]\n";
    }
--- mint
{ claims => { sub => 'dave', jti => 'vars-upstream-1' } }
--- more_headers
X-User: dave
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_headers
X-Ciba: approved token_valid refund dave
--- response_body eval
"approver=dave jti=vars-upstream-1 decision=approved digest=" . main::digest_of() . " token=[]\n"
--- no_error_log
[alert]
[crit]



=== TEST 25: the variables on a refusal, in response headers
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        add_header X-Ciba "$ciba_decision $ciba_reason $ciba_action" always;
        add_header X-Ciba-Digest $ciba_digest always;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ claims => { jti => 'vars-refusal-1' }, args => 'order=A17&amount=3000' }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 403
--- response_headers eval
"X-Ciba: mismatch digest_mismatch refund\nX-Ciba-Digest: " . main::digest_of()
--- response_body_like: ^\{"error":"approval_mismatch",.*"reason":"digest_mismatch"
--- error_log
ciba: decision=mismatch reason=digest_mismatch action="refund" subject="" approver="" jti="vars-refusal-1" kid="ec1" alg=ES256
--- no_error_log
/backend
[alert]
[crit]



=== TEST 26: the jti of a token that fails verification (untrusted signer) is escaped as well
--- mint
{ key => 'ec256-other', claims => { jti => "u1\n2026/01/01 00:00:00 [info] 1#1: *1 ciba: decision=approved UNVERIFIED\"\\" } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"bad_signature"
--- error_log
ciba: decision=invalid reason=bad_signature action="refund" subject="" approver="" jti="u1\x0a2026/01/01 00:00:00 [info] 1#1: *1 ciba: decision=approved UNVERIFIED\x22\x5c" kid="ec1" alg=ES256
--- no_error_log eval
[ qr{^2026/01/01 00:00:00}, qr{^\s*\[info\] 1#1: }, 'UNVERIFIED"', '/backend', '[alert]', '[crit]' ]



=== TEST 27: error_log at debug shows the flow of an approved request, step by step, with no token in it
--- log_level: debug
--- mint
{ claims => { jti => 'debug-flow-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log eval
[ qr/ciba: protected request, action "refund"/,
  qr/ciba: reading the body/,
  qr/ciba: an approval token: checking it/,
  qr/ciba: decided: approved, token_valid/,
  qr/ciba: decision=approved reason=token_valid action="refund" .* jti="debug-flow-1"/ ]
--- no_error_log
[alert]
[crit]



=== TEST 28: error_log at debug: a request without a token in a token-only location
--- log_level: debug
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"no_token"
--- error_log eval
[ qr/ciba: protected request, action "refund"/,
  qr/ciba: decided: required, no_token/ ]
--- no_error_log
ciba: an approval token: checking it
/backend
[alert]
[crit]
