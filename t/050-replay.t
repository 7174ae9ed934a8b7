# Single use: an approval token's jti is consumed once in the shared zone.
# A second use answers 403 approval_replayed, at the same or at another
# protected location; a refusal (bad signature, mismatch) consumes
# nothing; an internal redirect does not count as a second use.
#
# "--- init: main::prime(...)" sends one request before the block's own
# requests (the block's first request, with its headers, or with a token
# minted from the given mint() options), so that a block's single request
# can be the second use and its log lines can be asserted on their own.
# The lines of the priming request count for --- error_log as well.

use strict;
use warnings;

use lib 't';
use CibaTest qw(keys_dir digest);
use IO::Socket::INET ();
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
log_level('info');

CibaTest::keys_dir();

# Common to every block (t/CibaTest.pm): the zone, the trusted key ec1,
# issuer, audience, the "short" access log into error.log, /backend.
my $HttpConfig = CibaTest::http_config(log => 'short');

our $Block;     # the block about to run, for main::prime()

add_block_preprocessor(sub {
    my $block = shift;

    CibaTest::merge_config($block, http => $HttpConfig, backend => 1);

    CibaTest::preprocessor($block);

    $Block = $block;
});

# The priming request: the block's first request (or "request", in the
# same "METHOD URI\nbody" form) with the block's headers, its token
# replaced by one minted from the other options if there are any;
# "status" (default 200) is what it must be answered.
sub prime {
    my (%mint) = @_;
    my $block = $Block;
    my $name = $block->name;
    my $expect = delete $mint{status} // 200;

    my $req = delete $mint{request} // $block->request;
    $req = $req->[0] if ref $req eq 'ARRAY';
    my ($method, $uri, $body) = $req =~ m{\A\s*(\S+)\s+(\S+)[^\n]*\n?(.*)\z}s
        or die "$name - prime: cannot parse the request\n";
    $body =~ s/^\s+|\s+\z//g;

    my $more = $block->more_headers // '';
    $more = $more->[0] if ref $more eq 'ARRAY';

    if (%mint) {
        my ($path, $args) = split /\?/, $uri, 2;
        my $token = CibaTest::mint(method => $method, path => $path,
                                   args => $args // '', body => $body,
                                   %mint);
        $more =~ s/^Approval-Token:.*(?:\n|\z)//mig;
        $more .= "\n" if length $more && $more !~ /\n\z/;
        $more .= "Approval-Token: $token\n";
    }

    my $headers = join '', map { "$_\r\n" } grep { /\S/ } split /\n/, $more;
    my $raw = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n$headers"
              . 'Content-Length: ' . length($body) . "\r\n\r\n$body";

    my $port = server_port_for_client();
    $port =~ s/^.*://;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $port, Proto => 'tcp',
                                     Timeout => 5)
        or die "$name - prime: cannot connect to port $port: $!\n";
    print $sock $raw;
    my $resp = do { local $/; <$sock> } // '';
    close $sock;

    my ($status) = $resp =~ m{\AHTTP/1\.[01] (\d{3}) };
    Test::More::is($status // '', $expect,
                   "$name - the priming request is answered $expect");
}

sub req_digest {
    my (%req) = @_;
    return digest(action => 'refund', method => 'POST',
                  path => '/tools/refund', args => '',
                  body => '{"amount":5}', %req);
}

sub refusal {
    my ($error, $reason, %req) = @_;
    my $digest = req_digest(%req);
    return qr/\A\{"error":"\Q$error\E","error_description":"[^"]+",\Q"reason":"$reason","action":"refund","action_digest":"$digest"}\E\n\z/;
}

run_tests();

__DATA__

=== TEST 1: the same token twice: approved, then replayed
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
[
    "POST /tools/refund\n{\"amount\":5}",
    "POST /tools/refund\n{\"amount\":5}",
]
--- mint
{ claims => { jti => 'replay-twice' } }
--- error_code eval
[200, 403]
--- response_headers eval
[
    "Content-Type: text/plain",
    "Content-Type: application/json\nCache-Control: no-store\n!WWW-Authenticate",
]
--- response_body_like eval
[
    qr/\Aupstream ran POST\n\z/,
    main::refusal('approval_replayed', 'jti_replayed'),
]
--- error_log eval
[
    # checked after each request: the first logs approved, the second
    # replayed, both with the jti (TEST 2 checks the replay line alone)
    qr/ciba: decision=(?:approved reason=token_valid|replayed reason=jti_replayed) action="refund" subject="" approver="(?:alice)?" jti="replay-twice"/,
    qr/access: POST \/tools\/refund status=(?:200|403) decision=(?:approved|replayed) reason=(?:token_valid|jti_replayed) action=refund jti=replay-twice /,
]



=== TEST 2: a replay logs decision=replayed with the jti
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime();
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'replay-logged' } }
--- error_code: 403
--- response_headers
Content-Type: application/json
!WWW-Authenticate
--- response_body_like eval
main::refusal('approval_replayed', 'jti_replayed')
--- error_log eval
[
    # the priming request
    'ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="replay-logged"',
    # the block's request
    qr/ciba: decision=replayed reason=jti_replayed action="refund" subject="" approver="" jti="replay-logged" kid="ec1" alg=ES256 digest=\Q${\ main::req_digest() }\E, client: /,
    'access: POST /tools/refund status=403 decision=replayed reason=jti_replayed action=refund jti=replay-logged digest=' . main::req_digest(),
]
--- no_error_log
[error]



=== TEST 3: the same token at two protected locations sharing the zone
The digest covers method and args only, so the token fits both locations:
the second is refused as a replay, not as a mismatch.
--- config
    location /tools/a {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location /tools/b {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
[
    "POST /tools/a?amount=5",
    "POST /tools/b?amount=5",
]
--- mint
{ covers => [qw(method args)], claims => { jti => 'replay-two-locations' } }
--- error_code eval
[200, 403]
--- response_body_like eval
[
    qr/\Aupstream ran POST\n\z/,
    qr/\A\{"error":"approval_replayed","error_description":"[^"]+","reason":"jti_replayed","action":"refund","action_digest":"\Q${\ main::req_digest(covers => [qw(method args)], args => 'amount=5') }\E"\}\n\z/,
]
--- error_log eval
[
    qr/^access: POST \/tools\/[ab] status=(?:200|403) decision=(?:approved|replayed) reason=(?:token_valid|jti_replayed) action=refund jti=replay-two-locations /,
]



=== TEST 4: the same token at two protected locations: the replay's log
--- config
    location /tools/a {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location /tools/b {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime(request => "POST /tools/a?amount=5");
--- request
POST /tools/b?amount=5
--- mint
{ covers => [qw(method args)], claims => { jti => 'replay-b' } }
--- error_code: 403
--- response_body_like: ^\{"error":"approval_replayed","error_description":"[^"]+","reason":"jti_replayed",
--- error_log
access: POST /tools/a status=200 decision=approved reason=token_valid action=refund jti=replay-b digest=
access: POST /tools/b status=403 decision=replayed reason=jti_replayed action=refund jti=replay-b digest=
--- no_error_log
[error]



=== TEST 5: the same jti from another issuer is another approval
The single-use record is keyed by issuer and jti.
--- config
    location /tools/a {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location /tools/b {
        ciba on;
        ciba_action refund;
        ciba_digest method args;
        ciba_issuer https://as2.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime(request => "POST /tools/a?amount=5",
            covers => [qw(method args)], claims => { jti => 'shared-jti' });
--- request
POST /tools/b?amount=5
--- mint
{ covers => [qw(method args)],
  claims => { iss => 'https://as2.example', jti => 'shared-jti' } }
--- response_body
upstream ran POST
--- error_log
access: POST /tools/a status=200 decision=approved reason=token_valid action=refund jti=shared-jti digest=
access: POST /tools/b status=200 decision=approved reason=token_valid action=refund jti=shared-jti digest=
--- no_error_log
replayed



=== TEST 6: a forged token reusing a consumed jti
Either "replayed" or "invalid" would be acceptable: the module looks the
jti up before it checks the signature (a cheap check first, DESIGN.md
section 5), so the forgery is answered as a replay.  It records nothing.
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime(claims => { jti => 'replay-forged' });
--- request
POST /tools/refund
{"amount":5}
--- mint
{ key => 'ec256-other', claims => { jti => 'replay-forged' } }
--- error_code: 403
--- response_body_like eval
main::refusal('approval_replayed', 'jti_replayed')
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="replay-forged"
ciba: decision=replayed reason=jti_replayed action="refund" subject="" approver="" jti="replay-forged"
--- no_error_log
bad_signature
[error]



=== TEST 7: a token refused for a bad signature does not consume its jti
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime(key => 'ec256-other', claims => { jti => 'replay-after-forgery' },
            status => 401);
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'replay-after-forgery' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=invalid reason=bad_signature action="refund" subject="" approver="" jti="replay-after-forgery"
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="replay-after-forgery"
access: POST /tools/refund status=200 decision=approved reason=token_valid action=refund jti=replay-after-forgery digest=
--- no_error_log
replayed



=== TEST 8: a bad signature twice: the second is still "invalid", not a replay
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- init
main::prime(status => 401);
--- request
POST /tools/refund
{"amount":5}
--- mint
{ key => 'ec256-other', claims => { jti => 'replay-forged-twice' } }
--- error_code: 401
--- response_body_like eval
main::refusal('invalid_approval', 'bad_signature')
--- error_log
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
replayed
/backend



=== TEST 9: a token refused for a mismatch is not consumed
The first request changes the body, the second is the approved one.
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
[
    "POST /tools/refund\n{\"amount\":6}",
    "POST /tools/refund\n{\"amount\":5}",
]
--- mint
{ body => '{"amount":5}', claims => { jti => 'replay-after-mismatch' } }
--- error_code eval
[403, 200]
--- response_body_like eval
[
    main::refusal('approval_mismatch', 'digest_mismatch', body => '{"amount":6}'),
    qr/\Aupstream ran POST\n\z/,
]
--- error_log eval
[
    qr/ciba: decision=(?:mismatch reason=digest_mismatch action="refund" subject="" approver="" jti="replay-after-mismatch"|approved reason=token_valid action="refund" subject="" approver="alice" jti="replay-after-mismatch")/,
]
--- no_error_log
replayed



=== TEST 10: the same token after a mismatch, then once more: replayed
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- request eval
[
    "POST /tools/refund\n{\"amount\":6}",
    "POST /tools/refund\n{\"amount\":5}",
    "POST /tools/refund\n{\"amount\":5}",
]
--- mint
{ body => '{"amount":5}', claims => { jti => 'replay-third' } }
--- error_code eval
[403, 200, 403]
--- response_body_like eval
[
    main::refusal('approval_mismatch', 'digest_mismatch', body => '{"amount":6}'),
    qr/\Aupstream ran POST\n\z/,
    main::refusal('approval_replayed', 'jti_replayed'),
]



=== TEST 11: an internal redirect after the approval is not a second use
The upstream answers 418, intercepted and redirected to a named location
that is protected too: the request was approved once, and stays so.
--- config
    location /tools/refund {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/teapot;
        proxy_intercept_errors on;
        error_page 418 = @retry;
    }

    location @retry {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }

    location /teapot {
        return 418;
    }
--- request
POST /tools/refund
{"amount":5}
--- mint
{ claims => { jti => 'replay-redirect' } }
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="replay-redirect"
access: POST /teapot status=418
access: POST /backend status=200
access: POST /tools/refund status=200 decision=approved reason=token_valid action=refund jti=replay-redirect digest=
--- no_error_log
replayed
[error]
