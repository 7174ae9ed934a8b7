# What the human approves is exactly what the tool executes (issue 9),
# in locations that ask the human, against the mock AS
# (t/fixtures/mock-as/mock-as.mjs) started by this file:
#
# - refusals before anyone is asked (400 approval_bad_request, the AS sees
#   nothing): a repeated argument, a path not in canonical form, a bound
#   header given twice, an authorization detail that is not UTF-8;
# - a canonical path that is not UTF-8 once decoded (/c/%FF%FE) is asked
#   for, carried as sent in authorization_details (no 503);
# - authorization_details: the path as digested, the arguments decoded in
#   request order (a repeated name as an array with ciba_duplicate_args
#   keep; bounded: args_truncated), body_sha256, the operator's fields
#   (ciba_authorization_detail), which cannot replace the module's own;
# - the binding message from $ciba_arg_NAME (decoded), with spaces when the
#   character set allows them, cut at a UTF-8 boundary; the set's syntax
#   ("\-") and the warning about a range over punctuation; the decision
#   line and $ciba_binding_message carry what the human was shown;
# - the AS's error_description in the error line of a refused request;
# - nothing of the agent's request reaches the AS, also through variables
#   in proxy_set_header of the AS location ($http_user_agent, $http_cookie,
#   $proxy_add_x_forwarded_for, $http_x_user after the module read it);
# - "ciba on" at server level, inherited by the AS locations and the
#   callback: the module's own subrequests pass.
#
# What the mock received is checked by "--- as_check" sections (t/MockAS.pm).

use strict;
use warnings;

use lib 't';

use CibaTest ();

use Test::Nginx::Socket CibaTest::node_ok()
    ? ('no_plan') : (skip_all => 'node >= 20 is needed for the mock AS');

use MockAS;
use Digest::SHA qw(sha256_hex);
use JSON::PP ();

BEGIN { MockAS::as_check_import() }

repeat_each(1);
no_shuffle();
log_level('info');

my $AS_PORT = MockAS::free_port();

MockAS::start($AS_PORT);
$ENV{TEST_NGINX_AS_PORT} = $AS_PORT;

our $BODY = '{"amount":30}';

sub digest_of {
    my (%o) = @_;
    return CibaTest::digest(action => 'refund', method => 'POST',
                            path => '/tools/refund', args => '',
                            body => $BODY, %o);
}

# authorization_details as the module must send them
sub ad {
    my (%o) = @_;
    my $path = $o{path} // '/tools/refund';
    return [ {
        type        => 'nginx_ciba_action',
        actions     => [ 'refund' ],
        locations   => [ "http://localhost$path" ],
        identifier  => $o{digest},
        method      => 'POST',
        path        => $path,
        (defined $o{args} ? (args => $o{args}) : ()),
        body_sha256 => sha256_hex($o{body} // $BODY),
        %{ $o{more} || {} },
    } ];
}

sub sent_ad {
    # the mock's log is decoded already: characters, not bytes
    return scalar eval { JSON::PP->new->decode(
        as_req('/bc-authorize')->{form}{authorization_details} // '') };
}

my $HttpConfig = <<'_EOC_';
    ciba_zone ciba_exact:1m;

    log_format ciba_exact 'access: $request_method $uri status=$status '
                          'decision=$ciba_decision reason=$ciba_reason '
                          'bm=[$ciba_binding_message]';
    access_log logs/error.log ciba_exact;
_EOC_

my $AsLocations = "\n" . MockAS::locations('$TEST_NGINX_AS_PORT',
                                              'proxy_read_timeout 2s;')
    . <<"_EOC_";
    location /backend {
        return 200 "upstream ran \$request_method\\n";
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;

    MockAS::as_check_block($block);

    $block->set_value(http_config => $HttpConfig
                                     . ($block->http_config // ''));

    my $config = $block->config // '';
    $config .= $AsLocations unless $config =~ m{location\s+=\s+/_as/bc\b};
    $block->set_value(config => $config);

    return $block;
});

add_cleanup_handler(sub {
    MockAS::as_check_run();
    MockAS::stop();
});

run_tests();

__DATA__

=== TEST 1: a repeated argument in a CIBA location: 400 duplicate_arg, nobody is asked
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Refund $ciba_arg_amount EUR";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup();
--- request
POST /tools/refund?amount=30&amount=3000
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 400
--- response_headers
Content-Type: application/json
!Retry-After
--- response_body_like: ^\{"error":"approval_bad_request","error_description":"[^"]+","reason":"duplicate_arg","action":"refund","action_digest":""\}$
--- error_log eval
[
    qr/ciba: the query repeats the argument "amount"/,
    qr/ciba: decision=bad_request reason=duplicate_arg action="refund" subject="" /,
    'access: POST /tools/refund status=400 decision=bad_request reason=duplicate_arg bm=[-]',
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 2: a path not in canonical form in a CIBA location: 400 noncanonical_path, nobody is asked
--- config
    location /d/ {
        ciba on;
        ciba_action delete;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup();
--- request
DELETE /d/files/a%2Fb
--- more_headers
X-User: alice
--- error_code: 400
--- response_body_like: "reason":"noncanonical_path"
--- error_log eval
[ qr/ciba: decision=bad_request reason=noncanonical_path action="delete" / ]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0, '/token' => 0);



=== TEST 3: a canonical path that is not UTF-8 decoded (/c/%FF%FE): asked for, carried as sent, no 503
--- config
    location /c/ {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup();
--- request
POST /c/%FF%FE
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "error":"approval_pending","error_description":"[^"]+","reason":"asked"
--- error_log eval
[ qr/ciba: decision=pending reason=asked action="refund" subject="alice" / ]
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1);
Test::More::is_deeply(sent_ad(),
    ad(path => '/c/%FF%FE', digest => main::digest_of(path => '/c/%FF%FE')),
    "$Name - authorization_details: the path as sent");



=== TEST 4: authorization_details: decoded args in request order, body_sha256, the operator's fields; the binding message from $ciba_arg_ with spaces
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Refund $ciba_arg_amount EUR on order $ciba_arg_order";
        ciba_binding_message_chars "A-Za-z0-9 \-._,:";
        ciba_binding_message_max 64;
        ciba_authorization_detail uri $scheme://$host$request_uri;
        ciba_authorization_detail tenant "acme $http_x_tenant";
        ciba_authorization_detail empty "$http_x_none";
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup(config => { binding_message_regex => '^[a-zA-Z0-9 .,:_-]{1,64}$' });
--- request
POST /tools/refund?order=A%2017&amount=30&note=caf%C3%A9+noir&flag
{"amount":30}
--- more_headers
X-User: alice
X-Tenant: eu-1
--- error_code: 401
--- response_body_like: "binding_message":"Refund 30 EUR on order A 17"
--- error_log eval
[
    qr/ciba: decision=pending reason=asked action="refund" subject="alice" .* binding_message="Refund 30 EUR on order A 17"(?:,| while )/,
    'access: POST /tools/refund status=401 decision=pending reason=asked bm=[Refund 30 EUR on order A 17]',
]
--- no_error_log
[error]
--- as_check
count_is('/bc-authorize' => 1);
my $bc = as_req('/bc-authorize');
Test::More::is($bc->{form}{binding_message}, 'Refund 30 EUR on order A 17',
               "$Name - the binding message, decoded, with spaces");
my $args = 'order=A%2017&amount=30&note=caf%C3%A9+noir&flag';
Test::More::is_deeply(sent_ad(),
    ad(args => { order => 'A 17', amount => '30', note => "caf\x{e9} noir",
                 flag => '' },
       digest => main::digest_of(args => $args),
       more => { uri => "http://localhost/tools/refund?$args",
                 tenant => 'acme eu-1' }),
    "$Name - authorization_details");
Test::More::like($bc->{form}{authorization_details},
                 qr/"args":\{"order":"A 17","amount":"30","note":"caf\x{e9} noir","flag":""\}/,
                 "$Name - the args in request order");



=== TEST 5: ciba_duplicate_args keep: a repeated name is shown as an array of its values, in order; $ciba_arg_ shows them all
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_duplicate_args keep;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Refund $ciba_arg_amount EUR";
        ciba_binding_message_chars "A-Za-z0-9 \-._,";
        ciba_binding_message_max 64;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup(config => { binding_message_regex => '^[a-zA-Z0-9 .,_-]{1,64}$' });
--- request
POST /tools/refund?amount=30&AMOUNT=3000&amount=5
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "binding_message":"Refund 30, 3000, 5 EUR"
--- error_log eval
[ qr/binding_message="Refund 30, 3000, 5 EUR"/ ]
--- as_check
count_is('/bc-authorize' => 1);
my $args = 'amount=30&AMOUNT=3000&amount=5';
Test::More::is_deeply(sent_ad(),
    ad(args => { amount => [ '30', '5' ], AMOUNT => '3000' },
       digest => main::digest_of(args => $args)),
    "$Name - authorization_details: amount as an array");



=== TEST 6: at most 32 arguments are shown (args_truncated); the digest covers all 40
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup();
--- request eval
"POST /tools/refund?" . CORE::join('&', map { "a$_=$_" } 1 .. 40) . "\n{\"amount\":30}"
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "reason":"asked"
--- as_check
count_is('/bc-authorize' => 1);
my $args = CORE::join '&', map { "a$_=$_" } 1 .. 40;
Test::More::is_deeply(sent_ad(),
    ad(args => { map { ("a$_" => "$_") } 1 .. 32 },
       digest => main::digest_of(args => $args),
       more => { args_truncated => JSON::PP::true }),
    "$Name - 32 arguments shown, args_truncated");



=== TEST 7: an authorization detail that is not UTF-8: 400 not_utf8, logged, nobody is asked
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_authorization_detail note $ciba_arg_note;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup();
--- request
POST /tools/refund?note=%FF
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 400
--- response_headers
!Retry-After
--- response_body_like: "reason":"not_utf8"
--- error_log eval
[
    qr/\[info\] .*ciba: the value of the authorization detail "note" is not valid UTF-8/,
    qr/ciba: decision=bad_request reason=not_utf8 action="refund" subject="alice" /,
]
--- no_error_log
/backend
--- as_check
count_is('/bc-authorize' => 0);



=== TEST 8: ciba_authorization_detail cannot set the module's own fields
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_authorization_detail identifier "forged";
    }
--- must_die
--- error_log
"identifier" is set by the module and cannot be given by "ciba_authorization_detail"



=== TEST 9: ciba_binding_message_chars: a range over punctuation draws a warning ("A-Za-z0-9 -._" is space..".", with '"', "%", "&")
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Pay $ciba_arg_to";
        ciba_binding_message_chars "A-Za-z0-9 -._";
        ciba_binding_message_max 64;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup(config => { binding_message_regex => undef });
--- request
POST /tools/refund?to=%22x%26y%22
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "binding_message":"Pay \\"x&y\\""
--- error_log eval
[ qr/\[warn\] .*the range " -\." of "ciba_binding_message_chars" spans 15 bytes, punctuation included; write a literal "-" as "\\-"/ ]



=== TEST 10: ciba_binding_message_chars "A-Za-z0-9 \-._": the hyphen is literal, '"' and "&" are replaced, no warning
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        ciba_binding_message "Pay $ciba_arg_to";
        ciba_binding_message_chars "A-Za-z0-9 \-._";
        ciba_binding_message_max 64;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup(config => { binding_message_regex => undef });
--- request
POST /tools/refund?to=%22x-%26y%22
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "binding_message":"Pay _x-_y_"
--- no_error_log
[warn]



=== TEST 11: the AS refuses the request: the error line carries its error_description, escaped and bounded
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        ciba_backchannel_endpoint /_as/bc;
        ciba_token_endpoint /_as/token;
        ciba_login_hint $http_x_user;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
MockAS::setup(script => { '/bc-authorize' => [ { status => 400, json => {
    error => 'invalid_authorization_details',
    error_description => "needs method and uri \"x\"\n" } } ] });
--- request
POST /tools/refund
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 502
--- response_body_like: "error":"approval_misconfigured"
--- error_log eval
[
    qr/\[error\] .*ciba: the authorization server refused the backchannel request: "invalid_authorization_details" \(error_description: "needs method and uri \\x22x\\x22\\x0a"\); check the client's configuration/,
    qr/ciba: decision=misconfigured reason=invalid_authorization_details /,
]



=== TEST 12: nothing of the agent's request reaches the AS, not even through variables in the AS location
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
        proxy_set_header X-FF $proxy_add_x_forwarded_for;
        proxy_set_header X-UA $http_user_agent;
        proxy_set_header X-Cookie $http_cookie;
        proxy_set_header X-Cookie-Sess $cookie_sess;
        proxy_set_header X-User-Seen $http_x_user;
        proxy_set_header X-Auth-Seen $http_authorization;
        proxy_set_header X-Remote-User $remote_user;
        proxy_set_header X-Host-Seen $http_host;
        proxy_set_header X-Ciba-Action $ciba_action;
    }

    location = /_as/token {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_AS_PORT/token;
    }
--- init
MockAS::setup();
--- request
POST /tools/refund
{"amount":30}
--- more_headers
X-User: alice
X-Forwarded-For: 6.6.6.6
User-Agent: evil-agent
Cookie: sess=SECRET
Authorization: Basic ZXZpbDpldmls
--- error_code: 401
--- response_body_like: "reason":"asked"
--- as_check
count_is('/bc-authorize' => 1);
headers_are(as_req('/bc-authorize'), {
    authorization   => $MockAS::BASIC,
    'x-ff'          => '127.0.0.1',
    'x-ciba-action' => 'refund',
}, 'backchannel request: no agent header, no agent value');



=== TEST 13: "ciba on" at server level, inherited by the AS locations and the callback: the module's own subrequests pass
--- config
    ciba on;
    ciba_action refund;
    ciba_backchannel_endpoint /_as/bc;
    ciba_token_endpoint /_as/token;
    ciba_login_hint $http_x_user;

    location /tools/refund {
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location = /ciba/callback {
        ciba_callback;
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
--- init
MockAS::setup();
--- request
POST /tools/refund
{"amount":30}
--- more_headers
X-User: alice
--- error_code: 401
--- response_body_like: "reason":"asked"
--- error_log eval
[ qr/ciba: decision=pending reason=asked action="refund" subject="alice" / ]
--- no_error_log eval
[ 'into a protected location', 'as_not_json', '[error]' ]
--- as_check
count_is('/bc-authorize' => 1);



=== TEST 14: "ciba on" at server level: the callback location answers as a callback (401 without a bearer), not as a protected location
--- config
    ciba on;
    ciba_action refund;
    ciba_backchannel_endpoint /_as/bc;
    ciba_token_endpoint /_as/token;
    ciba_login_hint $http_x_user;

    location = /ciba/callback {
        ciba_callback;
    }
--- init
MockAS::setup();
--- request
POST /ciba/callback
{"auth_req_id":"x"}
--- error_code: 401
--- response_headers_like
WWW-Authenticate: Bearer.*
--- no_error_log
ciba: decision=
