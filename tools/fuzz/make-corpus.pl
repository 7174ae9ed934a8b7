#!/usr/bin/env perl
# Writes the seed corpus of the fuzz targets, tools/fuzz/corpus/<target>/,
# from the fixed test keys in tools/fuzz/keys: valid tokens (minted with
# Crypt::JWT, as t/CibaTest.pm does, not with the module's code), AS
# answers as the mock AS (t/fixtures/mock-as) and oidc-provider give them,
# ping and push bodies, sealed handles (an independent implementation of
# the handle format, as in t/090-ciba-as.t), requests, and edge cases.
#
# Every time in a seed is relative to the harness's fixed clock
# (fuzz_common.h: NOW = 1767229200), so the seeds stay valid.  The
# corpus is committed; run this again only when the harness's
# configurations or the formats change:
#
#   perl tools/fuzz/make-corpus.pl        (from the repository root)

use strict;
use warnings;

use Crypt::AuthEnc::GCM qw(gcm_encrypt_authenticate);
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::Ed25519;
use Crypt::PK::RSA;
use Digest::SHA qw(sha256);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use JSON::PP ();
use MIME::Base64 qw(encode_base64url decode_base64url decode_base64);

my $DIR  = dirname(__FILE__);
my $KEYS = "$DIR/keys";
my $OUT  = "$DIR/corpus";

# fuzz_common.h
my $EPOCH   = 1767225600;
my $NOW     = $EPOCH + 3600;
my $ISS     = 'https://as.example';
my $AUD     = 'https://gw.example';
my $CLIENT  = 'fuzz-client';
my $DIGEST  = 'fuzzDigestfuzzDigestfuzzDigestfuzzDigest123';
my $AREQ    = 'areq-fuzz-1';
my $ACCESS  = 'fuzz-access-token';

my $JSON = JSON::PP->new->canonical;

sub slurp {
    my ($name) = @_;
    open my $fh, '<', $name or die "$name: $!";
    local $/;
    return scalar <$fh>;
}

my %KEY = (
    ec  => Crypt::PK::ECC->new("$KEYS/ec256.key"),
    rsa => Crypt::PK::RSA->new("$KEYS/rsa.key"),
    ed  => Crypt::PK::Ed25519->new("$KEYS/ed.key"),
    hs  => decode_base64url($JSON->decode(slurp("$KEYS/hmac.jwks"))
                            ->{keys}[0]{k}),
);

my $HANDLE_KEY = pack 'H*', (slurp("$KEYS/handle.key") =~ /([0-9a-f]{64})/)[0];

my %ALG_KEY = (ES256 => 'ec', RS256 => 'rsa', PS256 => 'rsa',
               RS512 => 'rsa', EdDSA => 'ed', HS256 => 'hs', HS384 => 'hs',
               HS512 => 'hs');

my $Seq = 0;

sub target_dir {
    my ($target) = @_;
    my $d = "$OUT/$target";
    make_path($d) unless -d $d;
    return $d;
}

sub seed {
    my ($target, $name, $data) = @_;
    my $file = target_dir($target) . "/$name";
    open my $fh, '>', $file or die "$file: $!";
    binmode $fh;
    print $fh $data;
    close $fh or die "$file: $!";
}

# the claims of an approval token for the configurations
sub claims {
    my (%o) = @_;
    my %c = (
        iss => $ISS,
        aud => $AUD,
        sub => 'alice',
        jti => sprintf('fuzz-jti-%04d', ++$Seq),
        iat => $NOW - 10,
        exp => $NOW + 290,
    );
    if ($o{claim}) {
        $c{ciba_digest} = $DIGEST;
    } elsif (!$o{no_binding}) {
        $c{authorization_details} = [ {
            type       => $o{rar_type} // 'nginx_ciba_action',
            identifier => $DIGEST,
            actions    => [ 'refund' ],
        } ];
    }
    delete $c{jti} if $o{no_jti};
    %c = (%c, %{ $o{extra} || {} });
    return \%c;
}

sub mint {
    my ($alg, $claims, $header) = @_;
    my $key = $KEY{ $ALG_KEY{$alg} } // die "no key for $alg";
    return encode_jwt(payload => $JSON->encode($claims), alg => $alg,
                      key => $key, extra_headers => $header || {});
}

sub b64u { encode_base64url($_[0]) }

sub raw_jwt {
    my ($h, $p, $s) = @_;
    return b64u($h) . '.' . b64u($p) . '.' . b64u($s // 'sig');
}

remove_tree($OUT) if -d $OUT;

# ---- token_raw: selector byte (configuration | 0x80 from the AS), token

my @valid = (
    [ 'asym-es256',  0, 'ES256', claims(), { kid => 'ec1', typ => 'JWT' } ],
    [ 'asym-rs256',  0, 'RS256', claims(), { kid => 'rsa1' } ],
    [ 'asym-eddsa',  0, 'EdDSA', claims(), { kid => 'ed1' } ],
    [ 'asym-aud-array', 0, 'ES256',
      claims(extra => { aud => [ 'x', $AUD ], nbf => $NOW - 20 }),
      { kid => 'ec1' } ],
    [ 'hmac-hs256',  1, 'HS256', claims(claim => 1),
      { kid => 'hs1', typ => 'approval+jwt' } ],
    [ 'hmac-hs512-typ', 1, 'HS512', claims(claim => 1),
      { typ => 'application/APPROVAL+JWT' } ],
    [ 'pem-es256-kid', 2, 'ES256', claims(rar_type => 'x_fuzz_action'),
      { kid => 'pem-ec' } ],
    [ 'pem-es256-kid-required', 2, 'ES256', claims(rar_type => 'x_fuzz_action'),
      {} ],
    [ 'pem-rs256',   2, 'RS256', claims(rar_type => 'x_fuzz_action'), {} ],
    [ 'pem-ps256',   2, 'PS256', claims(rar_type => 'x_fuzz_action'),
      { kid => 'pem-rsa' } ],
    [ 'pem-eddsa',   2, 'EdDSA',
      claims(rar_type => 'x_fuzz_action', extra => { exp => $NOW + 0.5 }),
      {} ],
    [ 'flow-from-as', 0x83, 'ES256', claims(no_jti => 1, no_binding => 1),
      { kid => 'ec1' } ],
    [ 'flow-from-as-hs256', 0x83, 'HS256',
      claims(no_jti => 1,
             extra => { authorization_details => [ { type => 'other' } ] }),
      {} ],
    [ 'asym-from-as', 0x80, 'RS256', claims(), { kid => 'rsa1' } ],
);

my %TOKENS;

for my $v (@valid) {
    my ($name, $sel, $alg, $claims, $hdr) = @$v;
    my $t = mint($alg, $claims, $hdr);
    $TOKENS{$name} = $t;
    seed('token_raw', $name, chr($sel) . $t);
}

my $good = $TOKENS{'asym-es256'};
my ($gh, $gp, $gs) = split /\./, $good;

my %edge = (
    'empty'            => '',
    'dots'             => '..',
    'three-parts'      => 'a.b.c',
    'four-parts'       => "$gh.$gp.$gs.x",
    'padding'          => "$gh=.$gp.$gs",
    'alg-none'         => raw_jwt('{"alg":"none"}', $JSON->encode(claims()), ''),
    'crit'             => raw_jwt('{"alg":"ES256","kid":"ec1","crit":["x"]}',
                                  $JSON->encode(claims())),
    'dup-member'       => raw_jwt('{"alg":"ES256","alg":"HS256"}',
                                  $JSON->encode(claims())),
    'header-array'     => raw_jwt('[1]', '{}'),
    'kid-unknown'      => raw_jwt('{"alg":"ES256","kid":"nope"}',
                                  $JSON->encode(claims())),
    'kid-empty'        => raw_jwt('{"alg":"ES256","kid":""}', '{}'),
    'kid-number'       => raw_jwt('{"alg":"ES256","kid":7}', '{}'),
    'hs256-confusion'  => raw_jwt('{"alg":"HS256","kid":"ec1"}',
                                  $JSON->encode(claims())),
    'exp-real'         => raw_jwt('{"alg":"ES256","kid":"ec1"}',
                                  $JSON->encode(claims(extra =>
                                      { exp => 1.0e300 }))),
    'exp-negative'     => raw_jwt('{"alg":"ES256","kid":"ec1"}',
                                  $JSON->encode(claims(extra =>
                                      { exp => -1 }))),
    'payload-nul'      => raw_jwt('{"alg":"ES256","kid":"ec1"}',
                                  '{"iss":"https://as.example\u0000x"}'),
    'payload-deep'     => raw_jwt('{"alg":"ES256","kid":"ec1"}',
                                  ('[' x 200) . (']' x 200)),
    'binary-garbage'   => "\x00\xff." . "\x80\x81.abc",
);

for my $name (sort keys %edge) {
    seed('token_raw', "edge-$name", chr(0) . $edge{$name});
}

# ---- token_signed: selector, header JSON, NUL, payload JSON [NUL access]

my $at_hash = b64u(substr(sha256($ACCESS), 0, 16));

my @signed = (
    [ 'asym-es256', 0, { alg => 'ES256', kid => 'ec1' }, claims() ],
    [ 'asym-rs256', 0, { alg => 'RS256', kid => 'rsa1' }, claims() ],
    [ 'asym-eddsa', 0, { alg => 'EdDSA' }, claims() ],
    [ 'hmac-hs256', 1, { alg => 'HS256', typ => 'approval+jwt' },
      claims(claim => 1) ],
    [ 'hmac-hs384', 1, { alg => 'HS384', typ => 'approval+jwt',
                         kid => 'hs1' }, claims(claim => 1) ],
    [ 'pem-ps256', 2, { alg => 'PS256', kid => 'pem-rsa' },
      claims(rar_type => 'x_fuzz_action') ],
    [ 'pem-rs512', 2, { alg => 'RS512' },
      claims(rar_type => 'x_fuzz_action') ],
    [ 'flow-from-as', 3 | 0x04, { alg => 'ES256', kid => 'ec1' },
      claims(no_jti => 1, no_binding => 1) ],
    [ 'corrupt', 0 | 0x08, { alg => 'ES256', kid => 'ec1' }, claims() ],
    [ 'id-token', 0x10, { alg => 'ES256', kid => 'ec1' },
      { iss => $ISS, aud => $CLIENT, sub => 'alice', iat => $NOW - 5,
        exp => $NOW + 300, at_hash => $at_hash,
        'urn:openid:params:jwt:claim:auth_req_id' => $AREQ } ],
    [ 'id-token-hs256', 0x10, { alg => 'HS256' },
      { iss => $ISS, aud => [ 'x', $CLIENT ], iat => $NOW - 5,
        exp => $NOW + 300, at_hash => $at_hash,
        'urn:openid:params:jwt:claim:auth_req_id' => $AREQ } ],
);

for my $s (@signed) {
    my ($name, $sel, $hdr, $claims) = @$s;
    seed('token_signed', $name,
         chr($sel) . $JSON->encode($hdr) . "\0" . $JSON->encode($claims));
}

seed('token_signed', 'id-token-access',
     chr(0x10) . '{"alg":"EdDSA","kid":"ed1"}' . "\0"
     . $JSON->encode({ iss => $ISS, aud => $CLIENT, iat => $NOW,
                       exp => $NOW + 60,
                       at_hash => b64u(substr(Digest::SHA::sha512('tok-2'),
                                              0, 32)),
                       'urn:openid:params:jwt:claim:auth_req_id' => $AREQ })
     . "\0tok-2");

seed('token_signed', 'edge-typ-missing',
     chr(1) . '{"alg":"HS256"}' . "\0" . $JSON->encode(claims(claim => 1)));
seed('token_signed', 'edge-escaped-digest',
     chr(1) . '{"alg":"HS256","typ":"approval+jwt"}' . "\0"
     . '{"iss":"https://as.example","aud":"https://gw.example",'
     . '"sub":"alice","jti":"j\u0031","iat":' . ($NOW - 1)
     . ',"exp":' . ($NOW + 60) . ',"ciba_digest":"\u0066uzzDigestfuzzDigest'
     . 'fuzzDigestfuzzDigest123"}');

# ---- digest: byte 0 covers | normalize 0x10 | keep 0x20 | bound << 6,
#      byte 1 extras | bufs << 2 | file 0x10 | small limit 0x20 |
#      repeated 0x40 0x80, byte 2 limit; action NUL method NUL target NUL
#      extras... NUL headers ("name:value\n") NUL body

my %digest = (
    'all'              => [ 0x0f, 0x00, "refund\0POST\0/tools/refund?b=2&a=1&&a=0\0\0", '{"amount":10}' ],
    'readme-example'   => [ 0x4f, 0x01, "refund\0POST\0/tools/refund?order=A17&amount=30\0agent-7\0X-Agent-Id:agent-7\0", '{"order":"A17","amount":30,"currency":"EUR"}' ],
    'extras-bufs-file' => [ 0x2f, 0x1e, "refund\0POST\0/x?z&y\0e1\0\0\0", 'b' x 100 ],
    'limit'            => [ 0x08, 0x20, "a\0GET\0/\0\0", '0123456789', 5 ],
    'method-path'      => [ 0x03, 0x00, "\0DELETE\0/a/b?q=1\0\0", '' ],
    'args-only'        => [ 0x24, 0x04, "x\0\0/?&&&b&a&b&\0\0", 'body' ],
    'canonical-escapes'=> [ 0x0f, 0x00, "refund\0GET\0/t/caf%C3%A9/%FF%FE/a:b\@c;d=e?q=%2f\0\0", '' ],
    'noncanonical-2f'  => [ 0x0f, 0x00, "refund\0GET\0/t/a%2Fb\0\0", '' ],
    'noncanonical-2f-lower' => [ 0x0f, 0x00, "refund\0GET\0/t/a%2fb\0\0", '' ],
    'noncanonical-hex-lower' => [ 0x0f, 0x00, "refund\0GET\0/t/caf%c3%a9\0\0", '' ],
    'noncanonical-dotdot' => [ 0x0f, 0x00, "refund\0GET\0/t/y/../x\0\0", '' ],
    'noncanonical-dot-end' => [ 0x0f, 0x00, "refund\0GET\0/t/y/.\0\0", '' ],
    'noncanonical-dslash' => [ 0x0f, 0x00, "refund\0GET\0/t//b\0\0", '' ],
    'noncanonical-unreserved' => [ 0x0f, 0x00, "refund\0GET\0/t/%41%7E%2E\0\0", '' ],
    'noncanonical-quote' => [ 0x0f, 0x00, "refund\0GET\0/t/a\"b\0\0", '' ],
    'noncanonical-no-slash' => [ 0x0f, 0x00, "refund\0GET\0?a=1\0\0", '' ],
    'nul-escape'       => [ 0x0f, 0x00, "refund\0GET\0/t/%00\0\0", '' ],
    'fragment'         => [ 0x0f, 0x00, "refund\0GET\0/p?a=1#frag&b=2\0\0", '' ],
    'dup-arg'          => [ 0x0f, 0x00, "refund\0GET\0/r?amount=30&amount=3000\0\0", '' ],
    'dup-arg-case'     => [ 0x0f, 0x00, "refund\0GET\0/r?AMOUNT=1&amount=5000\0\0", '' ],
    'dup-arg-decoded'  => [ 0x0f, 0x00, "refund\0GET\0/r?amount=1&%61mount=2\0\0", '' ],
    'dup-arg-plus'     => [ 0x0f, 0x00, "refund\0GET\0/r?a+b=1&a%20b=2\0\0", '' ],
    'dup-arg-no-eq'    => [ 0x0f, 0x00, "refund\0GET\0/r?x&x=\0\0", '' ],
    'dup-arg-bad-escape' => [ 0x0f, 0x00, "refund\0GET\0/r?%zz=1&%ZZ=2&%2=3\0\0", '' ],
    'keep-dup'         => [ 0x2f, 0x00, "refund\0GET\0/r?a=1&&a=1&B=0&b=2\0\0", '' ],
    'dup-header'       => [ 0x4f, 0x00, "refund\0GET\0/r\0X-Agent-Id:agent-7\nx-agent-id:agent-evil\n\0", '' ],
    'repeated-header'  => [ 0x8f, 0x40, "refund\0GET\0/r\0X-Agent-Id:a\nx-b:1\nx-agent-id:b\nOther:z\nX-B:2\n\0", '' ],
    'absent-header'    => [ 0xcf, 0x80, "refund\0GET\0/r\0x-b:1\nx-b:2\n\0", '' ],
    'not-utf8-action'  => [ 0x0f, 0x00, "caf\xe9\0GET\0/r\0\0", '' ],
    'not-utf8-surrogate' => [ 0x0f, 0x00, "\xed\xa0\x80\0GET\0/r\0\0", "\xf4\x90\x80\x80 %41+%4" ],
    'normalize'        => [ 0x1f, 0x00, "refund\0GET\0/a//../b?x=1&X=2\0\0", '' ],
    'normalize-keep'   => [ 0x3f, 0x00, "refund\0GET\0/caf\xc3\xa9 x?x=1&X=2\0\0", '' ],
);

for my $name (sort keys %digest) {
    my ($b0, $b1, $fields, $body, $limit) = @{ $digest{$name} };
    seed('digest', $name, chr($b0) . chr($b1) . chr($limit // 0) . $fields
                          . $body);
}

# ---- as_answer: selector, body (the answers of t/fixtures/mock-as and
#      oidc-provider)

my $flow_token = $TOKENS{'flow-from-as'};

my %ans = (
    'bc-ok'            => [ 0x00, '{"auth_req_id":"1c266114-a1be-4252-8ad1-04986c5b9ac1","expires_in":300,"interval":5}' ],
    'bc-ok-ping'       => [ 0x02, '{"auth_req_id":"areq-x","expires_in":120}' ],
    'bc-ok-push'       => [ 0x04, '{"auth_req_id":"areq-x","expires_in":86400,"interval":3600}' ],
    'bc-bad-expires'   => [ 0x00, '{"auth_req_id":"a","expires_in":0}' ],
    'bc-denied'        => [ 0x30, '{"error":"access_denied","error_description":"no"}' ],
    'bc-unknown-user'  => [ 0x10, '{"error":"unknown_user_id"}' ],
    'bc-invalid-client'=> [ 0x20, '{"error":"invalid_client"}' ],
    'bc-server-error'  => [ 0x40, '<html>502</html>' ],
    'bc-failed'        => [ 0x70, '' ],
    'bc-redirect'      => [ 0x80, '' ],
    'token-ok'         => [ 0x01, $JSON->encode({ access_token => $flow_token, token_type => 'Bearer', expires_in => 300, id_token => 'x.y.z' }) ],
    'token-ok-opaque'  => [ 0x09, '{"access_token":"opaque-access-token","token_type":"Bearer","expires_in":300}' ],
    'token-pending'    => [ 0x11, '{"error":"authorization_pending"}' ],
    'token-slow-down'  => [ 0x13, '{"error":"slow_down"}' ],
    'token-expired'    => [ 0x15, '{"error":"expired_token"}' ],
    'token-invalid-grant' => [ 0x11, '{"error":"invalid_grant"}' ],
    'token-denied'     => [ 0x31, '{"error":"access_denied"}' ],
    'token-odd-error'  => [ 0x11, '{"error":"Weird Error!"}' ],
    'token-dup'        => [ 0x01, '{"access_token":"a","access_token":"b"}' ],
    'token-not-object' => [ 0x01, '["access_token"]' ],
);

for my $name (sort keys %ans) {
    seed('as_answer', $name, chr($ans{$name}[0]) . $ans{$name}[1]);
}

# ---- handle: mode, data

sub seal {
    my ($plain, $key) = @_;
    my $nonce = substr(sha256($plain), 0, 12);
    my ($ct, $tag) = gcm_encrypt_authenticate('AES', $key // $HANDLE_KEY,
                                              $nonce, 'ngx-ciba-handle/1',
                                              $plain);
    return 'h1.' . b64u($nonce . $ct . $tag);
}

sub plain {
    my (%h) = @_;
    my $areq = $h{areq} // $AREQ;
    return pack('C', $h{version} // 1)
         . pack('Q<', $h{expire} // $NOW + 300)
         . pack('L<', $h{interval} // 5)
         . pack('C', $h{mode} // 0)
         . ($h{digest} // "\x11" x 32)
         . ($h{subject} // "\x22" x 32)
         . pack('n', $h{len} // length $areq)
         . $areq;
}

seed('handle', 'open-valid', "\x00" . seal(plain()));
seed('handle', 'open-push', "\x00" . seal(plain(mode => 2, areq => 'x' x 1024)));
seed('handle', 'open-other-key', "\x00" . seal(plain(), "\x01" x 32));
seed('handle', 'open-truncated', "\x00" . substr(seal(plain()), 0, 60));
seed('handle', 'open-no-prefix', "\x00" . substr(seal(plain()), 3));
seed('handle', 'open-bad-alphabet', "\x00h1.AAAA+/==");
seed('handle', 'plain-valid', "\x01" . plain());
seed('handle', 'plain-bad-len', "\x01" . plain(len => 0xffff));
seed('handle', 'plain-version-2', "\x01" . plain(version => 2));
seed('handle', 'plain-short', "\x01" . substr(plain(), 0, 80));
seed('handle', 'seal-fields',
     "\x02" . pack('Q<', $NOW + 300) . pack('L<', 5) . "\x01"
     . ("\x33" x 32) . ("\x44" x 32) . 'auth-req-id-1');

# ---- callback: configuration byte, Authorization, newline, body

my $push_access = 'pushed-access-token';
my $push_id = mint('ES256', {
    iss => $ISS, aud => $CLIENT, sub => 'alice', iat => $NOW - 5,
    exp => $NOW + 300,
    at_hash => b64u(substr(sha256($push_access), 0, 16)),
    'urn:openid:params:jwt:claim:auth_req_id' => 'areq-push',
}, { kid => 'ec1' });

my %cb = (
    'ping'            => [ 0x00, 'Bearer ping-token', '{"auth_req_id":"areq-ping"}' ],
    'ping-bufs'       => [ 0x06, 'bearer ping-token', ' { "auth_req_id" : "areq-ping" } ' ],
    'ping-wrong-token'=> [ 0x00, 'Bearer push-token', '{"auth_req_id":"areq-ping"}' ],
    'ping-unknown'    => [ 0x00, 'Bearer ping-token', '{"auth_req_id":"areq-nope"}' ],
    'no-bearer'       => [ 0x00, 'Basic cGluZy10b2tlbg==', '{"auth_req_id":"areq-ping"}' ],
    'push'            => [ 0x00, 'Bearer push-token', $JSON->encode({ auth_req_id => 'areq-push', access_token => $push_access, token_type => 'Bearer', expires_in => 300, id_token => $push_id }) ],
    'push-no-keys'    => [ 0x01, 'Bearer push-token', $JSON->encode({ auth_req_id => 'areq-push', access_token => $push_access, id_token => $push_id }) ],
    'push-bad-id'     => [ 0x02, 'Bearer push-token', $JSON->encode({ auth_req_id => 'areq-push', access_token => 'other', id_token => $push_id }) ],
    'push-error'      => [ 0x00, 'Bearer push-token', '{"auth_req_id":"areq-push","error":"access_denied"}' ],
    'push-expired'    => [ 0x00, 'Bearer push-token', '{"auth_req_id":"areq-push","error":"expired_token"}' ],
    'push-error-num'  => [ 0x00, 'Bearer push-token', '{"auth_req_id":"areq-push","error":5}' ],
    'not-json'        => [ 0x00, 'Bearer ping-token', 'auth_req_id=areq-ping' ],
    'empty-body'      => [ 0x00, 'Bearer ping-token', '' ],
);

for my $name (sort keys %cb) {
    my ($sel, $auth, $body) = @{ $cb{$name} };
    seed('callback', $name, chr($sel) . $auth . "\n" . $body);
}

# ---- binding: max length, flags (charset 0x01, normalize 0x02, keep 0x04,
#      covers << 3, operator fields 0x80), set NUL action NUL method NUL
#      target NUL field NUL field

my %bind = (
    'default'      => [ 20, 0, '', 'refund', 'POST', '/tools/refund' ],
    'long-action'  => [ 10, 0, '', 'transfer 1000 EUR to Mallory', 'POST', '/x' ],
    'set'          => [ 64, 1, 'A-Za-z0-9_ .', 'Pay 10 EUR (café)', 'PUT', '/pay?x' ],
    'set-reversed' => [ 64, 1, 'z-a_', 'abc', 'GET', '/' ],
    'set-no-under' => [ 64, 1, 'a-z', 'abc', 'GET', '/' ],
    'set-dash'     => [ 64, 1, '-_a-', 'a-b', 'GET', '/' ],
    'set-escaped'  => [ 64, 1, '\\-\\\\A-Z_\\', 'A-B\\C', 'GET', '/' ],
    'not-utf8'     => [ 255, 1, "\x01-\xff", "caf\xe9", 'GET', "/\xff" ],
    'zero-max'     => [ 0, 0, '', 'refund', 'POST', '/' ],
    'utf8-cut'     => [ 4, 0, '', "caf\xc3\xa9s", 'POST', '/' ],
    'args-decoded' => [ 64, 0x80, '', 'refund', 'POST', '/tools/refund?order=A%2017&note=caf%C3%A9&x&=v&n+m=a+b', 'T-1', "\xc3\xa9t\xc3\xa9" ],
    'args-keep-repeated' => [ 64, 0x04, '', 'refund', 'GET', '/r?a=1&A=2&a=3&a=4' ],
    'args-nul-key' => [ 64, 0, '', 'refund', 'GET', '/ay?%E%00T=%00' ],
    'args-not-utf8' => [ 64, 0, '', 'refund', 'GET', "/r?n=%FF&%FE=1&raw=\xff&\xfe=2" ],
    'args-truncated' => [ 64, 0, '', 'refund', 'GET', '/r?' . join('&', map { "a$_=$_" } 1 .. 40) ],
    'args-long'    => [ 64, 0, '', 'refund', 'GET', '/r?a=' . ('x' x 1000) . '&b=' . ('y' x 1040) ],
    'args-not-covered' => [ 64, 0x18, '', 'refund', 'GET', '/r?a=1' ],
    'normalize-path' => [ 64, 0x02, '', 'refund', 'GET', "/caf\xc3\xa9 x%?q=1#" ],
    'detail-not-utf8' => [ 64, 0x80, '', 'refund', 'POST', '/x', "\xff", 'ok' ],
    'detail-empty' => [ 64, 0x80, '', 'refund', 'POST', '/x', '', "\x00\xf0\x9f\x98\x80" ],
    'refused-path' => [ 64, 0, '', 'refund', 'POST', '/a//b' ],
);

for my $name (sort keys %bind) {
    my ($max, $flags, @f) = @{ $bind{$name} };
    seed('binding', $name, chr($max) . chr($flags) . join("\0", @f));
}

# ---- store: operations of 4 bytes (fuzz_store.c): opcode, a, b, c

sub ops { return join '', map { pack 'C4', @$_ } @_ }

seed('store', 'flow-poll', ops(
    [ 0, 0, 0, 203 ],       # begin K0 for S0 (max 4), expires in 203 s
    [ 1, 16, 1, 60 ],       # the AS's answer: waiting, areq-1
    [ 3, 0, 1, 0 ],         # poll with areq-1
    [ 3, 0, 1, 0 ],         # too early
    [ 13, 6, 0, 0 ],        # 6 s later
    [ 3, 0, 1, 0 ],         # poll again
    [ 4, 0, 0, 0x85 ],      # slow_down: interval 0x85 % 6 + 1, 5 s
    [ 6, 0, 0x80, 100 ],    # consumed, with the pending record
    [ 6, 0, 0x80, 100 ],    # a replay
));
seed('store', 'flow-ping-push', ops(
    [ 0, 1, 1, 203 ],
    [ 1, 16, 1, 60 ],
    [ 8, 1, 1, 2 ],         # notification record: areq-1, token of 3
    [ 9, 0, 1, 2 ],         # the ping, right token
    [ 9, 0, 1, 1 ],         # a wrong token
    [ 11, 3, 1, 20 ],       # a pushed token of 212 bytes
    [ 11, 3, 1, 20 ],       # pushed again: kept once
    [ 12, 0, 1, 0 ],        # taken
    [ 12, 0, 1, 0 ],        # not twice
    [ 10, 0, 1, 0 ],        # the notification removed
    [ 5, 1, 0, 0 ],         # abandon: not while waiting
));
seed('store', 'full', ops(
    (map { [ 0, $_, $_ % 4, 255 ] } 0 .. 7),
    (map { [ 11, 200, $_, 250 ] } 0 .. 3),
    (map { [ 6, $_, 0, 2 ] } 0 .. 7),
    [ 1, 0x30, 0xf1, 0xff ],    # a large answer: a new, larger record
    [ 13, 255, 0, 0 ],
    [ 0, 0, 0, 3 ],
));

# the input of t/085-fuzz-regressions.t's first case: in a full zone, the
# room for alice's new approval came from her expired one, whose removal
# took her counter away (found while writing the store target, caught by
# its checks)
seed('store', 'regression-counter-freed', ops(
    [ 6, 1, 0, 1 ],         # consume H1, expires in 1 s
    [ 6, 2, 0, 1 ],         # consume H2, expires in 1 s
    [ 0, 0, 0, 2 ],         # begin K0 for S0, max 3, expires in 2 s
    (map { [ 0, $_, 1, 203 ] } 2 .. 5),     # K2-K5 for S1, long-lived
    (map { [ 0, $_, 2, 203 ] } 6, 7),       # K6, K7 for S2
    [ 11, 4, 1, 44 ],       # a pushed token of 300 bytes: the last chunk
    [ 11, 200, 0, 200 ],    # a pushed token: the rest of the zone
    [ 13, 5, 0, 0 ],        # 5 s later: H1, H2, K0 expired
    [ 0, 1, 0, 3 ],         # begin K1 for S0
));

# the same, as the store target found it by itself in the code before the
# fix (71077 inputs, with its "fill" operation)
seed('store', 'regression-counter-freed-fuzzed', decode_base64(
    'WCXLAB7J1AAAAAAAAAMAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALgA3Nzc3Nzc3AAAAAF8ABY0eyQ=='));

print "seeds written to $OUT\n";
