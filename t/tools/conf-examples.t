#!/usr/bin/perl
#
# Every configuration in conf-examples/ passes "nginx -t".
#
# For each conf-examples/*.conf: copy it into a private prefix, then
#   - replace the load_module path with $TEST_NGINX_LOAD_MODULES (one
#     load_module line per module), or drop the line when that is empty
#     (an ASan nginx with the module built in);
#   - replace /etc/nginx/ciba/ (every external file the examples read) with
#     a directory of generated files: JWK sets and PEM public keys from
#     CibaTest::keys_dir(), a self-signed CA and server certificate made
#     with openssl, and a handle key from "openssl rand -hex 32";
#   - replace /var/log/nginx/ and /var/lib/nginx/ with the prefix, and add
#     the temp paths of the http block under the prefix;
#   - replace "listen PORT" with "listen 127.0.0.1:PORT'" on ports from
#     $TEST_NGINX_SERVER_PORT (nginx -t does not bind, but it stays tidy);
# and run  nginx -t -p PREFIX -e PREFIX/logs/error.log -c CONF
# expecting "syntax is ok" and "test is successful", and no warning.
#
#   TEST_NGINX_BINARY=/usr/sbin/nginx \
#   TEST_NGINX_LOAD_MODULES=/path/to/ngx_http_ciba_module.so \
#   prove t/tools/conf-examples.t

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use File::Copy qw(copy);
use File::Path qw(make_path);
use FindBin;
use lib "$FindBin::Bin/..";
use CibaTest ();

my $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $ROOT  = "$FindBin::Bin/../..";
my @MODULES = grep { length } split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');
# the value may be "PORT" or "127.0.0.1:PORT"
my $PORT  = $ENV{TEST_NGINX_SERVER_PORT} || 19860;
$PORT =~ s/.*://;

plan skip_all => "no $NGINX" unless -x $NGINX;
plan skip_all => 'no openssl' unless system('openssl version >/dev/null 2>&1') == 0;

my @confs = sort glob "$ROOT/conf-examples/*.conf";
ok(scalar @confs >= 13, 'conf-examples/ has the example configurations')
    or diag("found: @confs");
ok(-f "$ROOT/conf-examples/README.md", 'conf-examples/README.md exists');

my $tmp  = tempdir('ciba-conf-examples-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $keys = CibaTest::keys_dir();
my $files = "$tmp/files";
make_path($files);

sub run_quiet {
    my @cmd = @_;
    my $out = `@cmd 2>&1`;
    die "failed: @cmd\n$out" if $?;
    return $out;
}

# A self-signed CA and a server certificate it signed.
run_quiet("openssl req -x509 -newkey rsa:2048 -nodes -days 2"
          . " -subj /CN=ciba-test-ca -keyout $tmp/ca.key -out $tmp/ca.crt");
run_quiet("openssl req -newkey rsa:2048 -nodes -subj /CN=tools.example.com"
          . " -keyout $tmp/server.key -out $tmp/server.csr");
run_quiet("openssl x509 -req -in $tmp/server.csr -CA $tmp/ca.crt"
          . " -CAkey $tmp/ca.key -CAcreateserial -days 2 -out $tmp/server.crt");
my $handle_key = run_quiet('openssl rand -hex 32');

# The content of a file an example names under /etc/nginx/ciba/, by its name.
sub make_file {
    my ($name) = @_;
    my $path = "$files/$name";
    return if -e $path;
    (my $dir = $path) =~ s{/[^/]+$}{};
    make_path($dir);
    if ($name =~ /handle.*\.key$/) {
        open my $fh, '>', $path or die "$path: $!";
        print $fh $handle_key;
        close $fh;
    } elsif ($name =~ /\.json$/) {
        copy("$keys/jwks.json", $path) or die "copy: $!";
    } elsif ($name =~ /(?:^|[-\/])ca[^\/]*\.(?:pem|crt)$/) {
        copy("$tmp/ca.crt", $path) or die "copy: $!";
    } elsif ($name =~ /\.crt$/) {
        copy("$tmp/server.crt", $path) or die "copy: $!";
    } elsif ($name =~ /\.key$/) {
        copy("$tmp/server.key", $path) or die "copy: $!";
    } elsif ($name =~ /\.(?:pem|pub)$/) {
        copy("$keys/ec256.pub", $path) or die "copy: $!";
    } else {
        die "conf-examples names /etc/nginx/ciba/$name: no rule to make it\n";
    }
}

my $temp_paths = join '', map { "    ${_}_temp_path PREFIX/tmp/$_;\n" }
                          qw(client_body proxy fastcgi uwsgi scgi);

my $n = 0;
for my $conf (@confs) {
    (my $name = $conf) =~ s{.*/}{};
    my $prefix = "$tmp/p" . ++$n;
    make_path("$prefix/logs", "$prefix/var", "$prefix/tmp", "$prefix/conf");

    open my $in, '<', $conf or die "$conf: $!";
    my $text = do { local $/; <$in> };
    close $in;

    like($text, qr{^load_module /usr/lib/nginx/modules/ngx_http_ciba_module\.so;$}m,
         "$name: loads the module from the placeholder path");
    like($text, qr{^\s*ciba_zone\s}m, "$name: has a ciba_zone");

    my $load = join '', map { "load_module $_;\n" } @MODULES;
    $text =~ s{^load_module /usr/lib/nginx/modules/ngx_http_ciba_module\.so;\n}{$load}m;

    my %seen;
    for my $f ($text =~ m{/etc/nginx/ciba/([A-Za-z0-9._/-]+)}g) {
        make_file($f) unless $seen{$f}++;
    }
    $text =~ s{/etc/nginx/ciba/}{$files/}g;
    $text =~ s{/var/log/nginx/}{$prefix/logs/}g;
    $text =~ s{/var/lib/nginx/}{$prefix/var/}g;

    my %port;
    my $next = $PORT;
    $text =~ s{^(\s*listen\s+)(?:[\d.]+:)?(\d+)\b}{
        $1 . '127.0.0.1:' . ($port{$2} //= $next++)
    }gme;

    (my $tp = $temp_paths) =~ s/PREFIX/$prefix/g;
    $text =~ s!^http \{\n!http {\n$tp!m
        or die "$name: no 'http {' line\n";

    my $out = "$prefix/conf/nginx.conf";
    open my $fh, '>', $out or die "$out: $!";
    print $fh $text;
    close $fh;

    my $res = `$NGINX -t -p $prefix/ -e $prefix/logs/error.log -c $out 2>&1`;
    diag("$name: $_") for grep { /\[(?:warn|emerg|alert)\]/ } split /\n/, $res;
    my $ok = like($res, qr/syntax is ok/, "$name: syntax is ok");
    $ok = like($res, qr/test is successful/, "$name: test is successful") && $ok;
    # e.g. a ciba_binding_message_chars range that spans punctuation
    $ok = unlike($res, qr/\[warn\]/, "$name: no warning") && $ok;
    diag("$name:\n$res") unless $ok;
}

done_testing();
