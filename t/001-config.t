# Configuration: what nginx refuses to start with (and says why), and a few
# valid configurations that start and work.
#
# A protected location ("ciba on") must be complete: a zone, an action, an
# issuer, an audience and at least one usable verification key.  Every
# refusal below is a "--- must_die" block that names the message.

use strict;
use warnings;

use lib 't';
use CibaTest ();
use MIME::Base64 ();
use Test::Nginx::Socket 'no_plan';

repeat_each(1);
log_level('info');

my $Keys = CibaTest::keys_dir();

# extra key material for this file only, made once into the keys directory:
# a 1024-bit RSA public key (too short), and a self-signed certificate for
# the ec256 key (a certificate is a valid key source)
{
    my $rsa1024 = "$Keys/cfg-rsa1024.pub";
    if (!-s $rsa1024) {
        require Crypt::PK::RSA;
        my $pk = Crypt::PK::RSA->new;
        $pk->generate_key(128, 65537);
        write_atomic($rsa1024, $pk->export_key_pem('public'));
        write_atomic("$Keys/cfg-rsa1024.jwks", JSON::PP->new->canonical
                     ->encode({ keys => [ { %{ $pk->export_key_jwk('public', 1) },
                                            kid => 'short1' } ] }));
    }

    my $cert = "$Keys/cfg-ec256.crt";
    if (!-s $cert) {
        system('openssl', 'req', '-x509', '-new', '-key', "$Keys/ec256.key",
               '-subj', '/CN=ciba-test-as', '-days', '3650',
               '-out', "$cert.tmp") == 0
            or die "openssl req failed\n";
        rename "$cert.tmp", $cert or die "rename $cert: $!";
    }
}

sub write_atomic {
    my ($name, $data) = @_;
    open my $fh, '>', "$name.tmp" or die "open $name.tmp: $!";
    print $fh $data;
    close $fh or die "close $name.tmp: $!";
    rename "$name.tmp", $name or die "rename $name: $!";
}

# a JWK of one of the test keys, for JWK sets written as user files
sub jwk {
    my ($name, %extra) = @_;
    my $file = "$Keys/$name.pub";
    my $pk = $name =~ /^ec/  ? Crypt::PK::ECC->new($file)
           : $name =~ /^rsa/ ? Crypt::PK::RSA->new($file)
           :                   Crypt::PK::Ed25519->new($file);
    return { %{ $pk->export_key_jwk('public', 1) }, %extra };
}

sub private_jwk {
    my ($name, %extra) = @_;
    my $pk = Crypt::PK::ECC->new("$Keys/$name.key");
    return { %{ $pk->export_key_jwk('private', 1) }, %extra };
}

sub jwks { JSON::PP->new->canonical->encode({ keys => [ @_ ] }) }

add_block_preprocessor(sub { CibaTest::preprocessor(@_) });

run_tests();

__DATA__

=== TEST 1: "ciba on" without a ciba_zone in the http block
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but no "ciba_zone" is defined in the http block



=== TEST 2: "ciba on" without any ciba_key_file
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but no "ciba_key_file" gives a verification key



=== TEST 3: "ciba on" without ciba_issuer
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but "ciba_issuer" is not set



=== TEST 4: "ciba on" without ciba_audience
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but "ciba_audience" is not set



=== TEST 5: "ciba on" without ciba_action
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but "ciba_action" is not set



=== TEST 6: an incomplete "ciba on" at server level fails even if no location adds anything
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    ciba on;
    ciba_action refund;
    ciba_issuer https://as.example;
    ciba_audience https://tools.example;
    location /tools/ {
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba" is on but no "ciba_key_file" gives a verification key



=== TEST 7: an unknown algorithm
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms ES256 ES257;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
unknown algorithm "ES257", expected ES256, ES384, ES512, RS256, RS384, RS512, PS256, PS384, PS512, EdDSA, HS256, HS384 or HS512



=== TEST 8: algorithm names are case-sensitive, as in JWS ("es256" is not ES256)
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms es256;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
unknown algorithm "es256"



=== TEST 9: "none" is never an algorithm, alone or with others
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms ES256 none;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
algorithm "none" is never accepted



=== TEST 10: "NONE" in any case is refused the same way
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms NoNe;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
algorithm "none" is never accepted



=== TEST 11: ciba_algorithms given twice
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms ES256;
        ciba_algorithms RS256;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_algorithms" directive is duplicate



=== TEST 12: a key file that does not exist
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/no-such-key.pem;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{\[emerg\] .*open\(\) ".*/no-such-key\.pem" failed \(2: No such file or directory\)} ]



=== TEST 13: a key "file" that cannot be read (a directory)
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{\[emerg\] .*key file ".*" is not a regular file} ]



=== TEST 14: an empty key file (relative names are relative to the conf directory)
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/empty.pem;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'empty.pem', '' ] ]
--- must_die
--- error_log eval
[ "[emerg]",
  qr{key file ".*/html/empty\.pem" is empty or larger than 1m} ]



=== TEST 15: a key file larger than 1 MiB is not read
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/huge.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'huge.jwks', '{"keys":[]}' . (' ' x (1024 * 1024)) ] ]
--- must_die
--- error_log eval
[ "[emerg]",
  qr{key file ".*/html/huge\.jwks" is empty or larger than 1m} ]



=== TEST 16: a file that is neither PEM nor JWKS
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/garbage.pem;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files
>>> garbage.pem
this is not a key at all
--- must_die
--- error_log eval
[ "[emerg]",
  qr{".*/html/garbage\.pem" holds neither a JWK set nor a PEM public key \("BEGIN PUBLIC KEY"\) or certificate} ]



=== TEST 17: a PEM with a broken body
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/broken.pem;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files
>>> broken.pem
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE!!!!not-base64!!!!
-----END PUBLIC KEY-----
--- must_die
--- error_log
[emerg]
holds neither a JWK set nor a PEM public key



=== TEST 18: a private key PEM is not a public key file
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.key kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{".*/ec256\.key" holds a private key; configure the public key} ]



=== TEST 19: a JWK set that is not valid JSON
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/bad.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files
>>> bad.jwks
{"keys": [ {"kty": "EC", "crv": "P-256",
--- must_die
--- error_log eval
[ "[emerg]",
  qr{(?:loading the JWK set|invalid JWK set) ".*/html/bad\.jwks"} ]



=== TEST 20: a JWK set without keys
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/nokeys.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files
>>> nokeys.jwks
{"keys": []}
--- must_die
--- error_log eval
[ "[emerg]",
  qr{(?:no key found in|invalid JWK set) ".*/html/nokeys\.jwks"} ]



=== TEST 21: a JWK set whose only key is for encryption gives no verification key
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/enc.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'enc.jwks', main::jwks(main::jwk('ec256', kid => 'enc1', use => 'enc')) ] ]
--- must_die
--- error_log eval
[ "[emerg]",
  qr{\[notice\] .*key "enc1" in ".*/html/enc\.jwks" is for encryption, ignored},
  qr{"ciba" is on but no "ciba_key_file" gives a verification key} ]



=== TEST 22: an RSA key shorter than 2048 bits (PEM)
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/cfg-rsa1024.pub kid=short;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{RSA key in ".*/cfg-rsa1024\.pub" has 1024 bits, at least 2048 are required} ]



=== TEST 23: an RSA key shorter than 2048 bits (JWKS)
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/cfg-rsa1024.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{RSA key in ".*/cfg-rsa1024\.jwks" has 1024 bits, at least 2048 are required} ]



=== TEST 24: "kid=" on a JWK set
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json kid=mine;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{"kid=" applies to PEM files only; ".*/jwks\.json" is a JWK set, whose keys carry their own "kid"} ]



=== TEST 25: a second parameter that is not kid=, or an empty kid=
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
invalid parameter "kid="



=== TEST 26: the same kid for two PEM keys
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=k1;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/rsa.pub kid=k1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{duplicate key id "k1" in ".*/rsa\.pub"} ]



=== TEST 27: a PEM kid that collides with a kid of a JWK set
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec384.pub kid=rsa1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log eval
[ "[emerg]",
  qr{duplicate key id "rsa1" in ".*/ec384\.pub"} ]



=== TEST 28: two keys with the same kid inside one JWK set
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/dup.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'dup.jwks', main::jwks(main::jwk('ec256', kid => 'same'),
                           main::jwk('ec256-other', kid => 'same')) ] ]
--- must_die
--- error_log eval
[ "[emerg]",
  qr{duplicate key id "same" in ".*/html/dup\.jwks"} ]



=== TEST 29: a JWK whose "alg" its key type cannot verify
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/alg.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'alg.jwks', main::jwks(main::jwk('ec256', kid => 'p256', alg => 'ES384')) ] ]
--- must_die
--- error_log eval
[ "[emerg]",
  qr{key "p256" in ".*/html/alg\.jwks" declares an "alg" its key type cannot verify} ]



=== TEST 30: ciba_leeway over 300 seconds
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_leeway 301s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_leeway" directive must not exceed 300 seconds



=== TEST 31: ciba_leeway over 300 seconds, in minutes, at http level
--- http_config
    ciba_zone ciba_cfg:1m;
    ciba_leeway 6m;
--- config
    location /tools/ {
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_leeway" directive must not exceed 300 seconds



=== TEST 32: ciba_leeway that is not a time
--- http_config
    ciba_zone ciba_cfg:1m;
    ciba_leeway soon;
--- config
    location /tools/ {
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_leeway" directive invalid value



=== TEST 33: ciba_token_max_age must be positive
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_token_max_age 0s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_token_max_age" must be positive



=== TEST 34: ciba_zone without a size
--- http_config
    ciba_zone ciba_cfg;
--- config
--- must_die
--- error_log
[emerg]
invalid zone "ciba_cfg", expected name:size



=== TEST 35: ciba_zone without a name
--- http_config
    ciba_zone :1m;
--- config
--- must_die
--- error_log
[emerg]
invalid zone ":1m", expected name:size



=== TEST 36: ciba_zone with a size that is not a size
--- http_config
    ciba_zone ciba_cfg:lots;
--- config
--- must_die
--- error_log
[emerg]
invalid zone size "ciba_cfg:lots"



=== TEST 37: ciba_zone too small
--- http_config
    ciba_zone ciba_cfg:4k;
--- config
--- must_die
--- error_log
[emerg]
zone "ciba_cfg:4k" is too small



=== TEST 38: ciba_zone with an unknown parameter
--- http_config
    ciba_zone ciba_cfg:1m persist=/tmp/x;
--- config
--- must_die
--- error_log
[emerg]
invalid parameter "persist=/tmp/x"



=== TEST 39: ciba_zone given twice
--- http_config
    ciba_zone ciba_cfg:1m;
    ciba_zone ciba_other:1m;
--- config
--- must_die
--- error_log
[emerg]
"ciba_zone" directive is duplicate



=== TEST 40: ciba_zone is for the http block only
--- config
    ciba_zone ciba_cfg:1m;
--- must_die
--- error_log
[emerg]
"ciba_zone" directive is not allowed here



=== TEST 41: ciba_zone with the name of another module's zone (nginx refuses it)
--- http_config
    limit_req_zone $binary_remote_addr zone=shared_name:1m rate=1r/s;
    ciba_zone shared_name:1m;
--- config
--- must_die
--- error_log
[emerg]
the shared memory zone "shared_name" is already declared for a different use



=== TEST 42: ciba_digest with an unknown part
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_digest method path headers;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
invalid part "headers", expected "method", "path", "args" or "body"



=== TEST 43: ciba_digest with a part given twice
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_digest method path path;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
part "path" is given twice



=== TEST 44: only HMAC algorithms allowed, but only public keys configured
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/rsa.pub kid=rsa1;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms HS256 HS384 HS512;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
no configured key can verify any algorithm allowed by "ciba_algorithms"



=== TEST 45: a P-256 key cannot serve ES384 only
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_algorithms ES384;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
no configured key can verify any algorithm allowed by "ciba_algorithms"



=== TEST 46: an empty audience
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example "";
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
"ciba_audience" directive has an empty audience



=== TEST 47: an unknown ciba_log_level
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba_log_level debug;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- must_die
--- error_log
[emerg]
invalid value "debug"



=== TEST 48: valid: keys from a JWK set; a request without a token is asked for one
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_headers
Content-Type: application/json
WWW-Authenticate: Approval realm="ciba", error="approval_required"
--- response_body_like: ^\{.*"error":"approval_required".*"reason":"no_token".*\}$
--- error_log
ciba: decision=required reason=no_token action="refund"
--- no_error_log
[emerg]
[alert]
[crit]
[warn]



=== TEST 49: valid: a token verified by a key from a JWK set (RSA, kid rsa1)
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'rsa', alg => 'RS256', claims => { jti => 'cfg-jwks-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-jwks-1" kid="rsa1" alg=RS256
--- no_error_log
[error]
[warn]



=== TEST 50: valid: several key files (PEM and JWKS); the last one's key verifies
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/jwks.json;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec384.pub kid=ec2;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec521.pub kid=ec3;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec521', alg => 'ES512', claims => { jti => 'cfg-several-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-several-1" kid="ec3" alg=ES512
--- no_error_log
[error]
[warn]



=== TEST 51: valid: a certificate as the key source
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/cfg-ec256.crt kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', claims => { jti => 'cfg-cert-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-cert-1" kid="ec1" alg=ES256
--- no_error_log
[error]



=== TEST 52: valid: a JWK set with private key material starts, with a warning
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file ../html/private.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'private.jwks', main::jwks(main::private_jwk('ec256', kid => 'ec1')) ] ]
--- mint
{ key => 'ec256', claims => { jti => 'cfg-private-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log eval
[ qr{\[warn\] .*key "ec1" in ".*/html/private\.jwks" holds private key material; only a public key is needed},
  'ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-private-1" kid="ec1" alg=ES256' ]



=== TEST 52b: an HMAC (oct) key shorter than 32 bytes is refused
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_algorithms HS256;
        ciba_key_file ../html/short.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
--- user_files eval
[ [ 'short.jwks', main::jwks({ kty => 'oct', kid => 'h1',
                               k => MIME::Base64::encode_base64url('x' x 16) }) ] ]
--- must_die
--- error_log eval
qr{\[emerg\] .*HMAC key in ".*/html/short\.jwks" has 16 bytes, at least 32 are required}



=== TEST 52c: a 32-byte HMAC key verifies HS256 only (not HS384, HS512), without a private key warning
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_algorithms HS256 HS384 HS512;
        ciba_key_file ../html/hmac.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'hmac.jwks', main::jwks({ kty => 'oct', kid => 'h1',
                              k => MIME::Base64::encode_base64url('k' x 32) }) ] ]
--- mint
{ secret => 'k' x 32, kid => 'h1', claims => { jti => 'cfg-hmac-256' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-hmac-256" kid="h1" alg=HS256
--- no_error_log
holds private key material



=== TEST 52d: a 32-byte HMAC key does not verify HS512 (RFC 7518: the key must be as long as the hash)
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_algorithms HS256 HS384 HS512;
        ciba_key_file ../html/hmac.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'hmac.jwks', main::jwks({ kty => 'oct', kid => 'h1',
                              k => MIME::Base64::encode_base64url('k' x 32) }) ] ]
--- mint
{ secret => 'k' x 32, kid => 'h1', alg => 'HS512', claims => { jti => 'cfg-hmac-512' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- error_log eval
qr/ciba: decision=invalid reason=(key_alg_mismatch|no_key_for_alg) /



=== TEST 52e: a 64-byte HMAC key verifies HS512
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_algorithms HS512;
        ciba_key_file ../html/hmac64.jwks;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- user_files eval
[ [ 'hmac64.jwks', main::jwks({ kty => 'oct', kid => 'h2',
                                k => MIME::Base64::encode_base64url('s' x 64) }) ] ]
--- mint
{ secret => 's' x 64, kid => 'h2', alg => 'HS512', claims => { jti => 'cfg-hmac-512b' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-hmac-512b" kid="h2" alg=HS512



=== TEST 53: valid: everything at server level, a location only says "ciba on"
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    ciba_action refund;
    ciba_issuer https://as.example;
    ciba_audience https://tools.example;
    ciba_key_file $TEST_NGINX_CIBA_KEYS/ed.pub kid=ed1;
    location /tools/ {
        ciba on;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ed', claims => { jti => 'cfg-server-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-server-1" kid="ed1" alg=EdDSA
--- no_error_log
[error]



=== TEST 54: valid: everything at http level, "ciba on" at server level; /backend opts out
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
    ciba_action refund;
    ciba_issuer https://as.example;
    ciba_audience https://tools.example;
    ciba_key_file $TEST_NGINX_CIBA_KEYS/ec384.pub kid=ec2;
--- config
    ciba on;
    location /tools/ {
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend {
        ciba off;
        return 200 "upstream ran $request_method\n";
    }
--- mint
{ key => 'ec384', alg => 'ES384', claims => { jti => 'cfg-http-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- response_body
upstream ran POST
--- error_log
ciba: decision=approved reason=token_valid action="refund" subject="" approver="alice" jti="cfg-http-1" kid="ec2" alg=ES384
--- no_error_log
[error]



=== TEST 55: a location's own ciba_key_file replaces the server's keys (no merge)
--- http_config
    ciba_zone ciba_cfg:1m state=$TEST_NGINX_CIBA_STATE;
--- config
    ciba_action refund;
    ciba_issuer https://as.example;
    ciba_audience https://tools.example;
    ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
    location /tools/ {
        ciba on;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/rsa.pub kid=rsa1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- mint
{ key => 'ec256', claims => { jti => 'cfg-override-1' } }
--- request
POST /tools/refund?order=A17&amount=30
{"amount":30}
--- error_code: 401
--- response_body_like: "reason":"unknown_kid"
--- error_log
ciba: decision=invalid reason=unknown_kid



=== TEST 56: valid: ciba_leeway of exactly 300s; "ciba off" needs no other directive
--- http_config
    ciba_zone ciba_cfg:1m;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        ciba_leeway 300s;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /open/ {
        ciba off;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
POST /open/refund
{"amount":30}
--- response_body
upstream ran POST
--- no_error_log
ciba: decision=
[emerg]



=== TEST 57: valid: a small zone with a state file
--- http_config
    ciba_zone ciba_cfg:64k state=logs/ciba.state;
--- config
    location /tools/ {
        ciba on;
        ciba_action refund;
        ciba_issuer https://as.example;
        ciba_audience https://tools.example;
        ciba_key_file $TEST_NGINX_CIBA_KEYS/ec256.pub kid=ec1;
        proxy_pass http://127.0.0.1:$server_port/backend;
    }
    location /backend { return 200 "upstream ran $request_method\n"; }
--- request
GET /tools/list
--- error_code: 401
--- response_body_like: "error":"approval_required"
--- error_log
ciba: decision=required reason=no_token
