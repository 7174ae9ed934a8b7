# Attacks on approval-token validation: "none", algorithm confusion, kid
# games, keys and key URLs carried in the token, tampering, malformed shapes,
# base64 and JSON, hostile numbers, header tricks and sizes.  Every refusal
# is checked for its status, JSON body and reason, headers, both log lines
# (the access-log line through the $ciba_* variables, and the module's
# "ciba:" line), the absence of serious log messages, that the upstream never
# ran ("/backend" never appears in the log), and that the token does not
# appear in any log.
#
# The preprocessor below adds the common http_config (zone, issuer,
# audience, the five trusted PEM keys at http level, the log format) and,
# for a block without "--- config", the default server config:
#
#     location /tools/ { ciba on; ciba_action refund; add_header
#                        X-Ciba-Decision "$ciba_decision $ciba_reason" always;
#                        proxy_pass http://127.0.0.1:$server_port/backend; }
#     location /backend { return 200 "upstream ran $request_method\n"; }
#     location /attacker/ { return 200 '<a JWK set with the attacker's key>'; }
#
# "--- forge" holds Perl code run right before the block (never earlier: the
# module refuses tokens issued before its zone started).  It returns the
# token, or a list (array ref) of Approval-Token values for one request, or,
# for a block of several requests, one such entry per request; a value that
# already looks like "Name: value" is sent as that header.  The helpers below
# (minted, claims, tamper, resign, signed, ...) build on CibaTest's mint()
# and default to the block's (first) request, so a token is bound to it
# unless a block says otherwise.  The last 16 characters of every token sent
# are added to "--- no_error_log".

use strict;
use warnings;

use lib 't';
use CibaTest ();
use Test::Nginx::Socket 'no_plan';

use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use Crypt::PK::Ed25519;
use JSON::PP ();
use MIME::Base64 qw(decode_base64url encode_base64);

repeat_each(1);
log_level('info');

our $Keys = CibaTest::keys_dir();

# the attacker's JWK set (its key claims the trusted kid "ec1"), served by
# the test server at /attacker/: a jku/x5u follower would find it there
$ENV{TEST_NGINX_ATTACKER_JWKS} = json({ keys => [ { %{ public_jwk('ec256-other') },
                                                    kid => 'ec1', use => 'sig' } ] });

# the zone, issuer, audience, the trusted key of each type (ec1, ec2, ec3,
# rsa1, ed1), the "full" access log into error.log (t/CibaTest.pm)
our $HttpConfig = CibaTest::http_config(log => 'full', keys => 'all');

our $DefaultConfig = <<'_EOC_';
    location /tools/ {
        ciba on;
        ciba_action refund;
        add_header X-Ciba-Decision "$ciba_decision $ciba_reason" always;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
    location /attacker/ { return 200 '$TEST_NGINX_ATTACKER_JWKS'; }
_EOC_

our %Req;   # method, path, args, body of the block's (first) request

add_block_preprocessor(sub {
    my $block = shift;

    CibaTest::merge_config($block, http => $HttpConfig,
                           default => $DefaultConfig);

    my $req = $block->request;
    my $many = ref $req eq 'ARRAY';
    $req = $req->[0] if $many;
    local %Req;
    if (defined $req && $req =~ m{^(\S+)\s+(\S+)(?:\s+HTTP/\S+)?\s*\n?(.*)\z}s) {
        my ($method, $uri, $body) = ($1, $2, $3);
        $body =~ s/^\s+|\s+\z//g;
        my ($path, $args) = split /\?/, $uri, 2;
        %Req = (method => $method, path => $path, args => $args // '',
                body => $body);
    }

    if (defined(my $code = $block->forge)) {
        my $res = eval "package main; $code";
        die "bad --- forge section in ", $block->name, ": $@" if $@;
        my $base = $block->more_headers // '';
        $base .= "\n" if length $base && $base !~ /\n\z/;
        my @more;
        for my $entry ($many ? @$res : ($res)) {
            push @more, $base . join '', map {
                /^[A-Za-z-]+: / ? "$_\n" : "Approval-Token: $_\n"
            } ref $entry ? @$entry : ($entry);
        }
        $block->set_value(more_headers => $many ? \@more : $more[0]);
    }

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

# ---- helpers for "--- forge" ----------------------------------------------

sub port { ($ENV{TEST_NGINX_SERVER_PORT} // '') =~ /(\d+)\s*$/ ? $1 : 1984 }

sub json { JSON::PP->new->canonical->encode($_[0]) }

sub b64u { CibaTest::b64u(@_) }

sub raw_jwt { CibaTest::raw_jwt(@_) }

# a valid token bound to the block's request (mint() options override)
sub minted { CibaTest::mint(%Req, @_) }

# the claims of a valid token bound to the block's request, as a hash
sub claims {
    my $tok = minted(@_);
    return JSON::PP->new->decode(decode_base64url((split /\./, $tok)[1]));
}

sub request_digest {
    return CibaTest::digest(action => 'refund', %Req);
}

# changes the header and/or payload (code refs get the decoded hash) and
# keeps the original signature
sub tamper {
    my ($tok, %f) = @_;
    my @p = split /\./, $tok, -1;
    for ([ header => 0 ], [ payload => 1 ]) {
        my ($what, $i) = @$_;
        next unless $f{$what};
        my $obj = JSON::PP->new->decode(decode_base64url($p[$i]));
        $f{$what}->($obj);
        $p[$i] = b64u(json($obj));
    }
    return join '.', @p;
}

# like tamper(), then signed properly again (ES256 with the trusted ec256)
sub resign {
    my $tok = tamper(@_);
    my ($h, $p) = split /\./, $tok;
    my $pk = Crypt::PK::ECC->new("$Keys/ec256.key");
    return "$h.$p." . b64u($pk->sign_message_rfc7518("$h.$p", 'SHA256'));
}

# RS256 over raw header and payload texts, with the trusted RSA key
sub signed {
    my ($header, $payload, $key) = @_;
    my $input = b64u($header) . '.' . b64u($payload);
    my $pk = Crypt::PK::RSA->new("$Keys/" . ($key // 'rsa') . ".key");
    return "$input." . b64u($pk->sign_message($input, 'SHA256', 'v1.5'));
}

# ES256 with the trusted key, but the signature in DER instead of r||s
sub der_es256 {
    my ($header, $payload) = @_;
    my $input = b64u($header) . '.' . b64u($payload);
    my $pk = Crypt::PK::ECC->new("$Keys/ec256.key");
    return "$input." . b64u($pk->sign_message($input, 'SHA256'));
}

# an HMAC token whose secret is a public key's PEM text (the RS->HS attack)
sub hs_with_pem {
    my ($alg, $name, %hdr) = @_;
    return hs_with_text($alg, CibaTest::key_pem($name), %hdr);
}

sub hs_with_text {
    my ($alg, $secret, %hdr) = @_;
    return encode_jwt(payload => claims(), alg => $alg, key => $secret,
                      extra_headers => \%hdr);
}

sub jwks_text {
    open my $fh, '<', "$Keys/jwks.json" or die "jwks.json: $!";
    local $/;
    return <$fh>;
}

sub public_jwk {
    my ($name) = @_;
    my $file = "$Keys/$name.pub";
    my $pk = $name =~ /^ec/  ? Crypt::PK::ECC->new($file)
           : $name =~ /^rsa/ ? Crypt::PK::RSA->new($file)
           :                   Crypt::PK::Ed25519->new($file);
    return $pk->export_key_jwk('public', 1);
}

# a self-signed certificate for the attacker's key (for "x5c"), made once
sub attacker_cert_b64 {
    my $cert = "$Keys/atk-ec256-other.der";
    if (!-s $cert) {
        system('openssl', 'req', '-x509', '-new', '-key',
               "$Keys/ec256-other.key", '-subj', '/CN=attacker',
               '-days', '3650', '-outform', 'DER', '-out', "$cert.$$") == 0
            or die "openssl req failed\n";
        rename "$cert.$$", $cert or die "rename $cert: $!";
    }
    open my $fh, '<', $cert or die "$cert: $!";
    binmode $fh;
    local $/;
    my $der = <$fh>;
    return encode_base64($der, '');
}

# the same base64url text with the bits after its last whole byte set: a
# second encoding of the same bytes (not canonical, RFC 4648 3.5)
sub noncanonical {
    my ($b64) = @_;
    my $alpha = join '', 'A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_';
    my $rest = length($b64) % 4;
    die "no spare bits in a length of 4n\n" unless $rest == 2 || $rest == 3;
    my $v = index $alpha, substr($b64, -1);
    my $out = substr($b64, 0, -1)
              . substr($alpha, $v | ($rest == 2 ? 0x0f : 0x03), 1);
    die "not a second encoding\n"
        if $out eq $b64 || decode_base64url($out) ne decode_base64url($b64);
    return $out;
}

# the header and payload of a token as texts of length 3n + 1, so that
# their base64url has spare bits (JSON allows the trailing spaces)
sub spare_bits {
    my ($text) = @_;
    $text .= ' ' while length($text) % 3 != 1;
    return b64u($text);
}

# the header and payload of one token with the signature of another
sub splice_sig {
    my ($a, $b) = @_;
    my ($h, $p) = split /\./, $a;
    my $s = (split /\./, $b)[2];
    return "$h.$p.$s";
}

# a token of exactly $len bytes: a real header, fresh claims padded with a
# "pad" claim, and a made-up signature of about 64 bytes
sub big_token {
    my ($len) = @_;
    my $h = b64u('{"alg":"ES256","kid":"ec1"}');
    my $c = claims();
    my $base = length($h) + 2 + length(b64u(json({ %$c, pad => '' })));
    my $n = int(($len - $base - 86) * 3 / 4) - 4;
    $n = 0 if $n < 0;
    for my $pad ($n .. $n + 8) {
        my $p = b64u(json({ %$c, pad => 'x' x $pad }));
        for my $sig (60 .. 68) {
            my $s = b64u(join '', map { chr(($_ * 37 + 11) % 256) } 1 .. $sig);
            my $tok = "$h.$p.$s";
            return $tok if length $tok == $len;
        }
    }
    die "big_token($len): no fit\n";
}

run_tests();

__DATA__

=== TEST 1: alg "none" with an empty signature
--- forge
raw_jwt('{"alg":"none","typ":"JWT"}', json(claims()), '')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 2: alg "none" with a signature
--- forge
raw_jwt('{"alg":"none","kid":"ec1"}', json(claims()), 'garbage-signature')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"alg_not_allowed","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=alg_not_allowed action=refund
ciba: decision=invalid reason=alg_not_allowed action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 3: alg "NONE" (another spelling)
--- forge
raw_jwt('{"alg":"NONE","kid":"ec1"}', json(claims()), 'garbage-signature')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"alg_not_allowed","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=alg_not_allowed action=refund
ciba: decision=invalid reason=alg_not_allowed action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 4: alg missing from the header
--- forge
resign(minted(), header => sub { delete $_[0]{alg} })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 5: alg not a string
--- forge
resign(minted(), header => sub { $_[0]{alg} = ['ES256'] })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 6: HS256 signed with the RSA public key PEM as the secret (HS256 not allowed)
--- forge
hs_with_pem('HS256', 'rsa', kid => 'rsa1')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"alg_not_allowed","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=alg_not_allowed action=refund
ciba: decision=invalid reason=alg_not_allowed action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 7: HS256 with the RSA PEM as secret, HS256 allowed: an RSA key never verifies HMAC
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_algorithms RS256 HS256;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
hs_with_pem('HS256', 'rsa', kid => 'rsa1')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 8: HS256 with the RSA PEM as secret, HS256 allowed, no kid: no oct key exists
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_algorithms RS256 HS256;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
hs_with_pem('HS256', 'rsa')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"no_key_for_alg","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=no_key_for_alg action=refund
ciba: decision=invalid reason=no_key_for_alg action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 9: HS512 with the JWK set text as secret, keys from the JWK set
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_algorithms RS256 ES256 HS512;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
hs_with_text('HS512', jwks_text(), kid => 'rsa1')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 10: an RS256 token that names the EC key
--- forge
minted(key => 'rsa', alg => 'RS256', header => { kid => 'ec1' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 11: an ES256 token that names the P-384 key
--- forge
minted(key => 'ec256', alg => 'ES256', header => { kid => 'ec2' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 12: alg switched from ES256 to ES384 in the header, signature kept
--- forge
tamper(minted(key => 'ec256'), header => sub { $_[0]{alg} = 'ES384' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 13: alg switched from RS256 to PS256 in the header, signature kept
--- forge
tamper(minted(key => 'rsa', alg => 'RS256'), header => sub { $_[0]{alg} = 'PS256' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 14: an unknown kid (the token is otherwise valid)
--- forge
minted(header => { kid => 'nope' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"unknown_kid","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=unknown_kid action=refund
ciba: decision=invalid reason=unknown_kid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 15: a kid with path characters: ../../etc/passwd
--- forge
minted(header => { kid => '../../etc/passwd' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"unknown_kid","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=unknown_kid action=refund
ciba: decision=invalid reason=unknown_kid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 16: a kid with path characters: /dev/null
--- forge
minted(header => { kid => '/dev/null' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"unknown_kid","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=unknown_kid action=refund
ciba: decision=invalid reason=unknown_kid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 17: a kid naming a key file: ec256.pub
--- forge
minted(header => { kid => "$ENV{TEST_NGINX_CIBA_KEYS}/ec256.pub" })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"unknown_kid","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=unknown_kid action=refund
ciba: decision=invalid reason=unknown_kid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 18: an empty kid
--- forge
minted(header => { kid => '' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"unknown_kid","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=unknown_kid action=refund
ciba: decision=invalid reason=unknown_kid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 19: a kid that is a number
--- forge
minted(header => { kid => 1 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 20: a kid that is an object
--- forge
minted(header => { kid => { kid => 'ec1' } })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 21: a kid of 300 characters
--- forge
minted(header => { kid => 'k' x 300 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 22: jku pointing at the attacker's JWK set, signed by the attacker (kid ec1)
--- forge
minted(key => 'ec256-other', header => { jku => "http://127.0.0.1:" . port() . "/attacker/jwks.json" })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend
/attacker/



=== TEST 23: x5u pointing at the attacker, signed by the attacker
--- forge
minted(key => 'ec256-other', header => { x5u => "http://127.0.0.1:" . port() . "/attacker/cert.pem" })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend
/attacker/



=== TEST 24: the attacker's key embedded as "jwk", kid ec1
--- forge
minted(key => 'ec256-other', header => { jwk => public_jwk('ec256-other') })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 25: the attacker's key embedded as "jwk", no kid
--- forge
minted(key => 'ec256-other', no_kid => 1, header => { jwk => public_jwk('ec256-other') })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 26: the attacker's certificate embedded as "x5c"
--- forge
minted(key => 'ec256-other', header => { x5c => [ attacker_cert_b64() ] })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 27: tampered payload: sub changed, signature kept
--- forge
tamper(minted(), payload => sub { $_[0]{sub} = 'mallory' })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 28: tampered payload: exp extended, signature kept
--- forge
tamper(minted(), payload => sub { $_[0]{exp} += 3600 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 29: tampered payload: the binding rewritten for a larger refund
--- forge
tamper(minted(args => 'order=A17&amount=30', body => '{"amount":30}'), payload => sub { $_[0]{authorization_details}[0]{identifier} = request_digest() })
--- request
POST /tools/refund?order=A17&amount=3000
{"amount":3000}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=3000 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 30: signed by another RSA key, with the trusted kid
--- forge
minted(key => 'rsa-other', alg => 'RS256')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 31: signed by another P-256 key, with the trusted kid
--- forge
minted(key => 'ec256-other')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 32: signed by another Ed25519 key, with the trusted kid
--- forge
minted(key => 'ed-other')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 33: the signature of another valid token by the same key
--- forge
splice_sig(minted(), minted())
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 34: an ECDSA signature in DER form instead of r||s
--- forge
der_es256(json({ alg => 'ES256', kid => 'ec1' }), json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 35: a truncated signature
--- forge
substr(minted(key => 'rsa'), 0, -8)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 36: a signature of zero bytes in base64url ("AA")
--- forge
(minted() =~ s/[^.]+\z/AA/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 37: crit names a claim
--- forge
minted(header => { crit => ['exp'], exp => 1 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"crit_unsupported","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=crit_unsupported action=refund
ciba: decision=invalid reason=crit_unsupported action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 38: crit is empty
--- forge
minted(header => { crit => [] })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"crit_unsupported","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=crit_unsupported action=refund
ciba: decision=invalid reason=crit_unsupported action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 39: one part
--- more_headers eval
"Approval-Token: " . CibaTest::b64u('{"alg":"ES256","kid":"ec1"}')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 40: two parts (no signature)
--- forge
(minted() =~ s/\.[^.]+\z//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 41: four parts
--- forge
minted() . '.AAAA'
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 42: five parts (a JWE)
--- forge
join '.', map { CibaTest::b64u($_) } '{"alg":"RSA-OAEP","enc":"A256GCM","kid":"rsa1"}', 'k' x 32, 'iv', 'ciphertext', 'tag'
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 43: an empty header part
--- forge
(minted() =~ s/^[^.]+//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 44: an empty payload part
--- forge
(minted() =~ s/\.[^.]+\./../r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 45: an empty signature part
--- forge
(minted() =~ s/[^.]+\z//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 46: only dots
--- more_headers
Approval-Token: ..
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 47: base64 padding "=" after the signature
--- forge
minted() . '=='
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 48: standard base64 "+" in the signature
--- forge
(minted() =~ s/.\z/+/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 49: standard base64 "/" in the payload
--- forge
(minted() =~ s/\.(.)/.\//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 50: a space inside the token
--- forge
(minted() =~ s/\./ ./r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 51: percent-encoded dots
--- forge
(minted() =~ s/\./%2E/gr)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 52: a header part that is not base64url-decodable (one character)
--- forge
'e.' . (minted() =~ s/^[^.]+\.//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 53: a header that is a JSON array
--- forge
raw_jwt('["alg","ES256"]', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 54: a header that is a JSON string
--- forge
raw_jwt('"ES256"', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 55: a header that is a JSON number
--- forge
raw_jwt('256', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 56: a header that is JSON null
--- forge
raw_jwt('null', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 57: a header that is not JSON
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 58: a header with trailing bytes after the object
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}x', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 59: a payload that is a JSON array
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}', '[' . json(claims()) . ']')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 60: a payload that is a JSON string
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}', '"refund"')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 61: a payload that is a JSON number
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}', '1')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 62: a payload that is not JSON
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}', '{"iss":"https://as.example",')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 63: a payload with trailing bytes after the object
--- forge
raw_jwt('{"alg":"ES256","kid":"ec1"}', json(claims()) . '{}')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 64: duplicate "aud" members, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/^\{/{"aud":"https:\/\/evil.example",/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 65: duplicate "exp" members, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/\}\z/,"exp":4102444800}/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 66: duplicate "alg" members in the header, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1","alg":"HS256"}', json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 67: a payload that is not UTF-8, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"alice"/"al\xffice"/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 68: a header that is not UTF-8
--- forge
raw_jwt(qq({"alg":"RS256","kid":"rsa\xc3\x281"}), json(claims()))
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 69: a NUL (\u0000) in the jti, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"jti":"/"jti":"a\\u0000/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 70: JSON nested 5000 levels deep in the payload
--- config
    large_client_header_buffers 4 2m;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
raw_jwt(q({"alg":"ES256","kid":"ec1"}), json(claims()) =~ s/\}\z/,"deep":${\(q([) x 5000)}${\(q(]) x 5000)}}/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 71: exp 1e400 (overflows a double), properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"exp":\d+/"exp":1e400/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 72: exp 99999999999999999999999 (overflows an integer), properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"exp":\d+/"exp":99999999999999999999999/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 73: exp 1e300, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"exp":\d+/"exp":1e300/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 74: exp 9223372036854775807, properly signed
--- forge
minted(claims => { exp => 9223372036854775807 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 75: exp beyond the year 9999, properly signed
--- forge
minted(claims => { exp => 253402300800 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 76: a negative exp, properly signed
--- forge
minted(claims => { exp => -1 })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 77: exp as a string, properly signed
--- forge
minted(claims => { exp => '' . (time + 120) })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 78: exp true, properly signed
--- forge
minted(claims => { exp => JSON::PP::true })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 79: exp null, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s/"exp":\d+/"exp":null/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 80: no exp, properly signed
--- forge
minted(drop => ['exp'])
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_exp","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_exp action=refund
ciba: decision=invalid reason=bad_exp action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 81: iat as a string, properly signed
--- forge
minted(claims => { iat => '' . (time + 5) })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_iat","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_iat action=refund
ciba: decision=invalid reason=bad_iat action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 82: nbf as an array, properly signed
--- forge
minted(claims => { nbf => [ time ] })
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_nbf","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_nbf action=refund
ciba: decision=invalid reason=bad_nbf action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 83: an empty Approval-Token header
--- more_headers
Approval-Token:
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"empty_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=empty_token action=refund
ciba: decision=invalid reason=empty_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 84: only the word "Bearer"
--- more_headers
Approval-Token: Bearer 
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 85: bytes that are not UTF-8 in the header value
--- more_headers eval
"Approval-Token: \xff\xfe\xc3\x28.\x80\x81.\xf0\x9f"
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 86: a 1 MiB token, with header buffers large enough for nginx to pass it on
--- config
    large_client_header_buffers 4 2m;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
big_token(1024 * 1024)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"token_too_large","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=token_too_large action=refund
ciba: decision=invalid reason=token_too_large action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 87: a token of 16385 bytes: over the limit
--- config
    large_client_header_buffers 4 2m;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
big_token(16385)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"token_too_large","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=token_too_large action=refund
ciba: decision=invalid reason=token_too_large action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 88: a token of 16384 bytes: at the limit, parsed (and refused for its signature)
--- config
    large_client_header_buffers 4 2m;
    location /tools/ {
        ciba on;
        ciba_action refund;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- forge
big_token(16384)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 89: two Approval-Token headers are refused; the valid one is not used up by that
--- forge
my $t = minted(); [ [ $t, minted(key => 'ec256-other') ], [ $t ] ]
--- request eval
[ "POST /tools/refund?order=A17&amount=30\n{\"amount\":30}",
  "POST /tools/refund?order=A17&amount=30\n{\"amount\":30}" ]
--- error_code eval
[ 401, 200 ]
--- response_headers eval
[ qq{Content-Type: application/json\nCache-Control: no-store\nWWW-Authenticate: Approval realm="ciba", error="invalid_approval"\nX-Ciba-Decision: invalid several_tokens},
  qq{X-Ciba-Decision: approved token_valid} ]
--- response_body_like eval
[ '^\{"error":"invalid_approval","error_description":"[^"]+","reason":"several_tokens","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$',
  '^upstream ran POST$' ]
--- error_log eval
qr/ciba: decision=(?:invalid reason=several_tokens|approved reason=token_valid) action="refund"/
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 90: the same token twice, under differently cased header names
--- forge
my $t = minted(); [ $t, "approval-token: $t" ]
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
X-Ciba-Decision: invalid several_tokens
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"several_tokens","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=several_tokens action=refund
ciba: decision=invalid reason=several_tokens action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 91: a 1 MiB token with the default header buffers: nginx itself answers 400, the module never runs
--- forge
big_token(1024 * 1024)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 400
--- response_headers
Content-Type: text/html
!WWW-Authenticate
!X-Ciba-Decision
--- response_body_like: <title>400 Request Header Or Cookie Too Large</title>
--- error_log
client sent too long header line
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 400 decision=- reason=- action=- subject=- approver=- jti=- digest=-
--- no_error_log
ciba: decision=
decision=invalid
/backend
[alert]
[crit]
[emerg]



=== TEST 92: a JWK's own "alg" pins it: a PS256 token for a key declared RS256
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_key_file ../html/rs256-only.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'rs256-only.jwks', main::json({ keys => [ { %{ main::public_jwk('rsa') }, kid => 'rsa1', alg => 'RS256', use => 'sig' } ] }) ] ]
--- forge
minted(key => 'rsa', alg => 'PS256')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"key_alg_mismatch","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=key_alg_mismatch action=refund
ciba: decision=invalid reason=key_alg_mismatch action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 93: a member name repeated through an escape ("j\u0074i" after "jti"), properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"j\\u0074i":"other"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 94: a lone high surrogate escape in a string, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"\\ud800"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 95: a lone low surrogate escape in a string, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"\\udc00x"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 96: an escaped NUL (\u0000) in a string, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"a\\u0000b"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 97: a raw control character (0x1f) in a string, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"a\x1fb"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 98: an unknown escape (\x) in a string, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"a\\xb"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 99: an integer over 63 bits in a claim the module does not read, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"n":9223372036854775808}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 100: a number that is not finite (1e999), properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"n":1e999}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 101: a number with a leading zero, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"n":0123}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 102: a number without digits after the point, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"n":1.}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 103: an escaped surrogate encoded in UTF-8 bytes (ED A0 80), properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"\xed\xa0\x80"}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 104: JSON nested 32 levels below the payload object, properly signed
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"deep":${\("[" x 32)}${\("]" x 32)}}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 105: JSON nested 31 levels below the payload object is taken
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"deep":${\("[" x 31)}${\("]" x 31)}}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]


=== TEST 106: 257 members in the payload object, properly signed
--- forge
do { my $c = claims(); $c->{"x$_"} = $_ for 1 .. 257 - keys %$c; signed('{"alg":"RS256","kid":"rsa1"}', json($c)) }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend


=== TEST 107: 256 members in the payload object are taken
--- forge
do { my $c = claims(); $c->{"x$_"} = $_ for 1 .. 256 - keys %$c; signed('{"alg":"RS256","kid":"rsa1"}', json($c)) }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]


=== TEST 108: escapes, a surrogate pair, a real NumericDate and literals in the payload are taken
--- forge
signed('{"alg":"RS256","kid":"rsa1"}', json(claims()) =~ s#\}\z#,"note":"caf\\u00e9 \\ud83d\\ude00 \\/ \\"q\\" \\t","r":1.5e3,"t":true,"f":false,"z":null,"e":[],"o":{}}#r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 109: a valid ES256 signature in a second, non-canonical base64url encoding
--- forge
(minted() =~ s/([^.]+)\z/noncanonical($1)/er)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 110: a valid RS256 signature in a second, non-canonical base64url encoding
--- forge
(minted(key => 'rsa') =~ s/([^.]+)\z/noncanonical($1)/er)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 111: the RS256 token of TEST 110 in its canonical encoding is taken
--- forge
minted(key => 'rsa')
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 200
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund"
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 112: a header with its spare base64url bits set
--- forge
noncanonical(spare_bits('{"alg":"ES256","kid":"ec1"}')) . '.' . (minted() =~ s/^[^.]+\.//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_header","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_header action=refund
ciba: decision=invalid reason=malformed_header action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 113: the header of TEST 112 with its spare bits clear reaches the signature check
--- forge
spare_bits('{"alg":"ES256","kid":"ec1"}') . '.' . (minted() =~ s/^[^.]+\.//r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"bad_signature","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=bad_signature action=refund
ciba: decision=invalid reason=bad_signature action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 114: a payload with its spare base64url bits set
--- forge
do { my @p = split /\./, minted(); "$p[0]." . noncanonical(spare_bits(json(claims()))) . ".$p[2]" }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 115: a payload part of 4n + 1 characters
--- forge
do { my @p = split /\./, minted(); my $b = b64u(json(claims())); $b .= 'A' x ((1 - length($b)) % 4); "$p[0].$b.$p[2]" }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_payload","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_payload action=refund
ciba: decision=invalid reason=malformed_payload action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 116: a byte outside the alphabet in the signature outranks a header that is not JSON
--- forge
b64u('not json') . '.' . (minted() =~ s/^[^.]+\.//r =~ s/.\z/*/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend



=== TEST 117: a third dot inside the signature outranks a header that is not JSON
--- forge
b64u('not json') . '.' . (minted() =~ s/^[^.]+\.//r =~ s/(.{10})\z/.$1/r)
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
Cache-Control: no-store
WWW-Authenticate: Approval realm="ciba", error="invalid_approval"
--- response_body_like: ^\{"error":"invalid_approval","error_description":"[^"]+","reason":"malformed_token","action":"refund","action_digest":"[A-Za-z0-9_-]{43}"\}$
--- error_log
CIBA-ACCESS "POST /tools/refund?order=A17&amount=30 HTTP/1.1" 401 decision=invalid reason=malformed_token action=refund
ciba: decision=invalid reason=malformed_token action="refund"
--- no_error_log
[alert]
[crit]
[emerg]
/backend
