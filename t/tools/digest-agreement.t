#!/usr/bin/perl
#
# tools/ciba-digest against the module itself (the action digest,
# version 2).
#
# Starts nginx (/usr/sbin/nginx or $TEST_NGINX_BINARY, with the module
# loaded from $TEST_NGINX_LOAD_MODULES, none when that is empty) under a
# temporary prefix, with protected locations that take the action from a
# request header, so that one location covers many actions.  Four servers
# on one port, chosen by the Host header, hold four configurations:
# tools.example (ciba_path canonical, ciba_duplicate_args refuse, bound
# headers), norm.example (ciba_path normalize), keep.example
# (ciba_duplicate_args keep) and hdr.example (several bound headers, with
# and without "repeated").  Then, for several hundred requests (hand-picked
# ones, the README's attacks among them, and ones generated from a fixed
# seed), sends the raw request without an approval token and checks that
# the "action_digest" of the 401 answer is the digest computed by
# tools/ciba-digest.mjs on the same inputs (through its exported
# functions, imported once), and, for a subset, by the tools/ciba-digest
# command itself.  Where the module refuses the request (400
# approval_bad_request), the tool must refuse it for the same reason
# (noncanonical_path, duplicate_arg, duplicate_header); where nginx itself
# answers 400, the tool must say so (reason invalid_request).  Last, some
# invariants that hold whatever the tool says: reordering the args keeps
# the digest; changing one body byte, the method, one path byte, one arg,
# the action, an extra or a bound header changes it.
#
# Run from the repository root:
#   TEST_NGINX_LOAD_MODULES=/path/to/ngx_http_ciba_module.so \
#   TEST_NGINX_SERVER_PORT=127.0.0.1:1984 prove t/tools/digest-agreement.t

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(sha256_hex sha256_base64);
use File::Temp qw(tempdir);
use FindBin;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my @MODULES = grep { length } split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '');
my $PORT = $ENV{TEST_NGINX_SERVER_PORT} || 1984;
$PORT =~ s/^.*://;
my $ROOT = "$FindBin::Bin/../..";
my $TOOL = "$ROOT/tools/ciba-digest";
my $LIB  = "$ROOT/tools/ciba-digest.mjs";

plan skip_all => "no $NGINX" unless -x $NGINX;
plan skip_all => 'no node' unless system('node -v >/dev/null 2>&1') == 0;
plan skip_all => "no $LIB" unless -f $LIB;
for my $m (@MODULES) {
    plan skip_all => "no module $m" unless -f $m;
}

$SIG{PIPE} = 'IGNORE';

my $dir = tempdir('ciba-agree-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $json = JSON::PP->new->utf8->canonical;

###########################################################################
# helpers

sub b64url { my $s = sha256_base64($_[0]); $s =~ tr{+/}{-_}; $s }

sub ns { length($_[0]) . ':' . $_[0] . ',' }

# a byte string made readable, cut short for test names
sub show {
    my $s = shift // '(none)';
    my $len = length $s;
    my $cut = $len > 70;
    $s = substr($s, 0, 60) if $cut;
    $s =~ s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    $s .= "...($len bytes)" if $cut;
    return $s;
}

sub slurp {
    my $f = shift;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    my $d = <$fh>;
    return $d // '';
}

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $d;
    close $fh or die "$f: $!";
}

sub is_utf8_bytes {
    my $s = shift;
    return utf8::decode($s);
}

# a small generator of its own, so that the cases are the same everywhere
my $seed = 31415926;
sub rnd {
    $seed = ($seed * 1103515245 + 12345) & 0x7fffffff;
    return ($seed >> 4) % $_[0];
}
sub pick { $_[ rnd(scalar @_) ] }
sub rbytes {
    my $n = shift;
    return join '', map { chr rnd(256) } 1 .. $n;
}

###########################################################################
# nginx

my $nginx_pid;

END {
    local $?;
    if ($nginx_pid) {
        kill 'TERM', $nginx_pid;
        for (1 .. 50) {
            last if waitpid($nginx_pid, WNOHANG) != 0;
            sleep 0.1;
        }
        if (kill 0, $nginx_pid) {
            kill 'KILL', $nginx_pid;
            waitpid $nginx_pid, 0;
        }
    }
}

sub make_key {
    my $pem;
    if (eval { require Crypt::PK::ECC; 1 }) {
        my $pk = Crypt::PK::ECC->new;
        $pk->generate_key('secp256r1');
        $pem = $pk->export_key_pem('public');
    } else {
        system("openssl ecparam -name prime256v1 -genkey -noout"
               . " -out '$dir/ec.key' 2>/dev/null") == 0
            && system("openssl ec -in '$dir/ec.key' -pubout"
                      . " -out '$dir/ec.pub' 2>/dev/null") == 0
            or BAIL_OUT('cannot make an EC key');
        $pem = slurp("$dir/ec.pub");
    }
    spew("$dir/ec.pub", $pem);
    return "$dir/ec.pub";
}

# The configurations, as the tool is told them: per server (the Host
# header) and location.  Keep in step with the nginx.conf below.
my %LOC = (
    # tools.example, the default server
    main   => { extras => [qw(x1 x2)], covers => undef,
                bind => [ 'X-Agent-Id', 'X-Tag:repeated' ] },
    mp     => { extras => [qw(x1)], covers => 'method,path', bind => [] },
    ba     => { extras => [], covers => 'body,args', bind => [] },
    refund => { extras => [qw(agent)], covers => undef,
                bind => [ 'X-Agent-Id' ], action => 'refund' },
    # norm.example: ciba_path normalize
    nmain  => { extras => [qw(x1 x2)], covers => undef, bind => [],
                path_mode => 'normalize' },
    nmp    => { extras => [], covers => 'method,path',
                bind => [ 'X-Agent-Id' ], path_mode => 'normalize' },
    # keep.example: ciba_duplicate_args keep
    kmain  => { extras => [qw(x1)], covers => undef,
                bind => [ 'X-Tag:repeated' ], dup => 'keep' },
    kargs  => { extras => [], covers => 'args', bind => [], dup => 'keep' },
    # hdr.example: bound headers
    hmain  => { extras => [], covers => undef,
                bind => [ 'X-Agent-Id', 'x-TAG:repeated', 'X-Empty' ] },
    htwo   => { extras => [qw(x1)], covers => 'method',
                bind => [ 'X-B:repeated', 'X-A' ] },
);
my @LOCS = sort keys %LOC;

my %SERVER_LOCS = (
    'tools.example' => [qw(main mp ba refund)],
    'norm.example'  => [qw(nmain nmp)],
    'keep.example'  => [qw(kmain kargs)],
    'hdr.example'   => [qw(hmain htwo)],
);

# the location nginx picks for a normalized path ($uri)
sub location_of {
    my ($host, $path) = @_;
    if ($host eq 'norm.example') {
        return index($path, '/nmp/') == 0 ? 'nmp' : 'nmain';
    }
    if ($host eq 'keep.example') {
        return index($path, '/kargs/') == 0 ? 'kargs' : 'kmain';
    }
    if ($host eq 'hdr.example') {
        return index($path, '/two/') == 0 ? 'htwo' : 'hmain';
    }
    return 'refund' if $path eq '/tools/refund';
    return 'mp' if index($path, '/covers-mp/') == 0;
    return 'ba' if index($path, '/covers-ba/') == 0;
    return 'main';
}

sub start_nginx {
    if (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT")) {
        BAIL_OUT("something already listens on 127.0.0.1:$PORT");
    }

    my $key = make_key();
    mkdir "$dir/logs";
    my $load = join '', map { "load_module $_;\n" } @MODULES;

    my $common = <<"COMMON";
            ciba on;
            ciba_issuer https://as.example;
            ciba_audience https://tools.example;
            ciba_key_file $key;
            add_header X-Ciba-Digest \$ciba_digest always;
            proxy_pass http://127.0.0.1:1;
COMMON

    spew("$dir/nginx.conf", <<"CONF");
${load}daemon off;
master_process off;
worker_processes 1;
pid $dir/logs/nginx.pid;
error_log $dir/logs/error.log info;

events {
    worker_connections 64;
}

http {
    access_log off;

    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

    large_client_header_buffers 4 64k;
    client_max_body_size 2m;

    ciba_zone approvals:1m;

    server {
        listen 127.0.0.1:$PORT default_server;
        server_name tools.example;

        # every path is protected
        location / {
            ciba_action \$http_x_action;
            ciba_digest_extra \$http_x_extra1;
            ciba_digest_extra \$http_x_extra2;
            ciba_digest_header X-Agent-Id;
            ciba_digest_header X-Tag repeated;
$common
        }

        location ^~ /covers-mp/ {
            ciba_action \$http_x_action;
            ciba_digest method path;
            ciba_digest_extra \$http_x_extra1;
$common
        }

        location ^~ /covers-ba/ {
            ciba_action \$http_x_action;
            ciba_digest body args;
$common
        }

        # the worked example of the README and tools/DIGEST-EXAMPLE.md
        location = /tools/refund {
            ciba_action refund;
            ciba_digest_extra \$http_x_agent;
            ciba_digest_header X-Agent-Id;
$common
        }
    }

    server {
        listen 127.0.0.1:$PORT;
        server_name norm.example;
        ciba_path normalize;

        location / {
            ciba_action \$http_x_action;
            ciba_digest_extra \$http_x_extra1;
            ciba_digest_extra \$http_x_extra2;
$common
        }

        location ^~ /nmp/ {
            ciba_action \$http_x_action;
            ciba_digest method path;
            ciba_digest_header X-Agent-Id;
$common
        }
    }

    server {
        listen 127.0.0.1:$PORT;
        server_name keep.example;
        ciba_duplicate_args keep;

        location / {
            ciba_action \$http_x_action;
            ciba_digest_extra \$http_x_extra1;
            ciba_digest_header X-Tag repeated;
$common
        }

        location ^~ /kargs/ {
            ciba_action \$http_x_action;
            ciba_digest args;
$common
        }
    }

    server {
        listen 127.0.0.1:$PORT;
        server_name hdr.example;

        location / {
            ciba_action \$http_x_action;
            ciba_digest_header X-Agent-Id;
            ciba_digest_header x-TAG repeated;
            ciba_digest_header X-Empty;
$common
        }

        location ^~ /two/ {
            ciba_action \$http_x_action;
            ciba_digest method;
            ciba_digest_extra \$http_x_extra1;
            ciba_digest_header X-B repeated;
            ciba_digest_header X-A;
$common
        }
    }
}
CONF

    $nginx_pid = fork // die "fork: $!";
    if ($nginx_pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$dir/logs/stdout.log";
        open STDERR, '>>', "$dir/logs/stderr.log";
        exec $NGINX, '-p', "$dir/", '-c', "$dir/nginx.conf",
            '-e', "$dir/logs/error.log";
        exit 127;
    }

    for (1 .. 200) {
        return if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT");
        if (waitpid($nginx_pid, WNOHANG) != 0) {
            $nginx_pid = undef;
            last;
        }
        sleep 0.05;
    }

    my $log = -f "$dir/logs/error.log" ? slurp("$dir/logs/error.log") : '';
    $log .= slurp("$dir/logs/stderr.log") if -f "$dir/logs/stderr.log";
    BAIL_OUT("nginx did not start: $log");
}

# the raw request of a case
sub wire {
    my $c = shift;
    my $req = "$c->{method} $c->{target} HTTP/1.1\r\n"
        . "Host: $c->{host}\r\nConnection: close\r\n";
    $req .= "X-Action: $c->{action}\r\n" if defined $c->{action};
    $req .= "X-Extra1: $c->{x1}\r\n" if defined $c->{x1};
    $req .= "X-Extra2: $c->{x2}\r\n" if defined $c->{x2};
    $req .= "X-Agent: $c->{agent}\r\n" if defined $c->{agent};
    $req .= "$_->[0]:$_->[1]\r\n" for @{ $c->{hdrs} };

    my $body = $c->{body};
    if (defined $body && $c->{chunked}) {
        $req .= "Transfer-Encoding: chunked\r\n\r\n";
        my $n = $c->{chunked} > 1 ? $c->{chunked} : 1000;
        for (my $i = 0; $i < length $body; $i += $n) {
            my $piece = substr $body, $i, $n;
            $req .= sprintf("%x\r\n", length $piece) . "$piece\r\n";
        }
        $req .= "0\r\n\r\n";
    } elsif (defined $body) {
        $req .= 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    } else {
        $req .= "\r\n";
    }
    return $req;
}

# send one request, return (status, { lower-case headers }, body)
sub ask_nginx {
    my $req = shift;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT",
                                  Timeout => 5)
        or die "connect: $!";
    binmode $s;

    local $SIG{ALRM} = sub { die "nginx did not answer\n" };
    alarm 10;

    my $off = 0;
    while ($off < length $req) {
        my $n = syswrite $s, $req, 65536, $off;
        last unless $n;                 # nginx may close early on a 400
        $off += $n;
    }

    my $resp = '';
    while (1) {
        my $n = sysread $s, my $buf, 65536;
        last if !$n;                    # EOF, or a reset after the answer
        $resp .= $buf;
    }
    alarm 0;
    close $s;

    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    $head //= '';
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
    my %h;
    for (split /\r\n/, $head) {
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($status // 0, \%h, $body // '');
}

###########################################################################
# the cases
#
# host (the server), method, target (raw, as on the wire), body (undef:
# none, no Content-Length), chunked, action / x1 / x2 / agent (header
# values, undef: the header is not sent), hdrs (more header fields, in
# order, [name, value as after the colon]), url (what the tool gets as a
# URL instead of the wire target; "abs" = https://host + target), reason
# (the refusal the README says this request gets), group / role for the
# invariants.

my @cases;

sub case {
    my %c = (method => 'GET', action => 'refund', x1 => 'agent-7',
             host => 'tools.example', hdrs => [], @_);
    $c{url} = "https://$c{host}$c{target}" if ($c{url} // '') eq 'abs';
    push @cases, \%c;
}

# a header field as a client writes it
sub hf { [ $_[0], " $_[1]" ] }

my $bin = "\x00\xff\x00abc\x80\r\n\x00";

# -- canonical paths: accepted, the path digested as sent
for my $t ('/', '/a', '/a/', '/a/b', '/a/b/', '/c/%FF%FE', '/caf%C3%A9',
    '/a%20b', '/a%2Bb', '/a+b', '/a;b', '/a;b=c,d', "/a!\$&'()*+,;=:\@b",
    '/~user', '/a-b_c.d~e', '/.a/..b/...', '/a./b..', '/%25', '/a%3Fb',
    '/a%23b', '/%00', '/%3A%40', '/%2C', '/' . ('s/' x 200) . 'end',
    '/' . ('x' x 3000), '/' . ('%C3%A9' x 300))
{
    case(target => $t);
}

# -- not canonical: the module refuses them (noncanonical_path), or nginx
#    itself does (400)
for my $t ('/d/files/a%2Fb', '/a%2fb', '/d/bucket/a//b', '//', '//a',
    '/a//', '///a//b//', '/a/./b', '/a/../b', '/a/.', '/a/..', '/.',
    '/./a', '/a/b/..', '/%41', '/%61', '/%7E', '/%7e', '/%2E', '/%2e/a',
    '/a/%2E%2E/b', '/%30', '/%2D', '/%5F', '/c/%ff%fe', '/caf%c3%a9',
    '/a%3f', "/caf\xc3\xa9", "/\xff", "/\x80", '/a\\b', '/a"b', '/a<b>',
    '/a[b]', '/a{b}', '/a|b', '/a^b', '/a`b', '/a%', '/a%2', '/%zz',
    '/%g0', '/%0', '/..', '/a/../..', '/%2e%2e', '/a#b', '/a#b?c=1',
    '/a%23#b', '/tools//refund', '/tools/%72efund', '/covers-ba//x',
    '/a b', "/a\x01b", "/a\x7fb")
{
    case(target => $t);
}

# -- ciba_path normalize: nginx's $uri, as version 1 had it
for my $t ('/', '/a', '/a/', '/a/../b', '/a/./b', '/a/b/..', '/a/b/.',
    '/a/b/../..', '/a//b', '//', '///a//b//', '/a%2Fb', '/a%2fb/',
    '/a%2F..%2Fb', '/%2e/a', '/a/%2e%2e/b', '/a/%2E%2e', '/a/.%2e/b',
    '/caf%C3%A9', '/caf%c3%a9/x', "/caf\xc3\xa9", '/%ff', "/\xff\x80",
    '/a+b', '/a%2Bb', '/a;b/../c', '/..;/a', '/a%3Fb', '/a%25', '/a%23b',
    '/a%20b', '/a\\b', '/a\\..\\b', '/a#b', '/a/..#x', '/a/b#/../..',
    '/%41%42', '/nmp/a', '/nmp/../nmp/b', '/nmp//x/./y', '/x/../nmp/z',
    '/..', '/a/../..', '/%2e%2e/', '/%00', '/a%00b', '/%', '/%zz',
    '/a%?x', '/a/b/../../../c', '/' . ('a/' x 100) . ('../' x 100) . 'z')
{
    case(target => $t, host => 'norm.example', method => 'POST',
         body => 'n', x2 => 'two', hdrs => [ hf('X-Agent-Id', 'ag') ]);
}

# -- the same paths in the covers-mp and covers-ba locations
for my $t ('/covers-mp/a', '/covers-mp/a/b/', '/covers-mp/%C3%A9',
    '/covers-mp//x', '/covers-mp/a/../b', '/covers-ba/a',
    '/covers-ba/a%2Fb', '/covers-ba/./a', '/covers-mpx', '/covers-ba.',
    '/Covers-mp/a')
{
    case(target => $t, method => 'POST', body => 'payload');
    case(target => "$t?b=2&a=1", method => 'PUT', body => '', x1 => undef);
    case(target => "$t?a=1&a=2", method => 'PUT', body => '');
}

# -- refused by nginx (400): the tool must refuse too
case(target => '/a', method => 'get');
case(target => '/covers-mp/a', method => 'post', body => 'x');
case(target => "/a?b\x01c");
case(target => '/a?b c');

# -- args: name keys, duplicates, sorting
for my $q ('a=1', 'b=2&a=1', 'a=1&a=1', 'a=1&a=2&a=1', 'a=1&&b=2&', '&&&',
    '&a', 'a&', 'x', 'x&y', 'x&y&x', 'a=', '=a', '=', '=a&=b', 'a==b',
    'a&a=', 'a=1&A=2', 'AMOUNT=1&amount=5000', 'amount=30&amount=3000',
    'amount=3000&amount=30', 'amount=1&%61mount=2', 'amount=1&%41MOUNT=2',
    'a+b=1&a%20b=2', 'a+b=1&a b=2', 'a%2Bb=1&a+b=2', 'a%2bb=1&a%2Bb=2',
    '%zz=1&%ZZ=2', '%zz=1&%zZ=2', '%=1&%25=2', 'k%3D=1&k=2', 'k%3D1&k',
    'B=1&a=2&C=3', 'b=1&A=2', 'Z&y&X&w', '%C3%A9=1&%c3%a9=2', "\xc3\xa9=1",
    "%C3%A9=1&\xc3\xa9=2", "\xc3\x89=1&\xc3\xa9=2", '%FF=1&%fe=2',
    '%00=1&%00=2', '%00=1&=2', '+=1&%20=2', '+&++', 'a%3D1=2&a=3',
    'z=A&z=%41', 'a=%20&b=+&c=%2B', 'q=a+b', 'k=%26&k=&', 'u=%C3%A9',
    "u=\xc3\xa9", "z=\xff", 'a=1;b=2', 'a=1;a=2', '?', 'a=?&b=c?d',
    'p=/x/../y', 'p=%2F', 'A=1&a=1&B&b', '', 'a=1#frag&b=2', 'x#', '#a=1',
    'long=' . ('v' x 2000), join('&', map { "n$_=$_" } reverse 1 .. 100),
    join('&', map { "N$_=$_" } 1 .. 50), join('&', ('dup') x 50))
{
    case(target => "/args?$q", x2 => 'second');
    case(target => "/args?$q", host => 'keep.example');
    case(target => "/kargs/x?$q", host => 'keep.example');
}

# -- absolute URL for the tool, origin form on the wire, and absolute
#    form on the wire too
for my $t ('/a?b=1', '/a/b?x&y', '/', '/?q', '/%25/x?%zz', '/covers-mp/a?z',
    '/covers-ba/a?b&a')
{
    case(target => $t, url => 'abs', method => 'POST', body => 'b');
    case(target => "http://tools.example$t", method => 'POST', body => 'b');
    case(target => $t, url => "https://other.example:8443$t#frag",
         method => 'POST', body => 'b');
}
case(target => 'http://tools.example');
case(target => 'http://tools.example?x=1', reason => 'noncanonical_path');
case(target => 'http://norm.example?x=1', host => 'norm.example');
case(target => '/a?b=1', url => 'https://tools.example/a?b=1#x&y');
case(target => 'http://norm.example/a/../b?x', host => 'norm.example');

# -- bodies
my $big = join '', map { chr(($_ * 7 + ($_ >> 8)) & 0xff) } 0 .. 65535;
for my $b ('', "\x00", "\xff", $bin, "\r\n\r\n", 'x' x 1000,
    rbytes(100), rbytes(5000), rbytes(20000), $big, $big . 'z',
    '{"order":"A17","amount":30}', "caf\xc3\xa9")
{
    case(target => '/upload', method => 'PUT', body => $b);
    case(target => '/covers-ba/upload?k=v', method => 'POST', body => $b);
}
case(target => '/upload', method => 'POST', body => $big, chunked => 1);
case(target => '/upload', method => 'POST', body => $bin, chunked => 3);
case(target => '/covers-ba/u', method => 'POST', body => rbytes(9000),
     chunked => 4096);
case(target => '/get-with-body?x=1', method => 'GET', body => 'surprise');
case(target => '/cl0', method => 'POST', body => '');
case(target => '/nocl', method => 'POST');

# -- methods
for my $m (qw(GET POST PUT DELETE PATCH OPTIONS PROPFIND M-SEARCH MY_VERB)) {
    case(target => '/m?x=1', method => $m, body => 'm');
    case(target => '/covers-mp/m', method => $m);
}
case(target => '/head?x=1', method => 'HEAD');
case(target => '/covers-mp/head', method => 'HEAD');

# -- actions and extras
for my $a ('r', 'refund', 'transfer funds', 'a b  c', "r\xc3\xa9sum\xc3\xa9",
    "\xe6\x94\xaf\xe6\x89\x95", "\xf0\x9f\x92\xb8 pay", 'a,b:c', '1:a,',
    'A' x 300, 'z' x 5000, "\xff\xfe", "tab\there")
{
    case(target => '/act', action => $a, x1 => "\xc3\xa9", x2 => 'two');
}
case(target => '/act', action => '  padded  ', tool_action => 'padded');
for my $x ([undef, undef], ['', ''], [undef, ''], ['', 'v'], ['v', ''],
    ['v', undef], [undef, 'v'], ['a b', "\xe2\x82\xac"], ["\xff", 'x'],
    ['1:a,', ''], ['x' x 2000, 'y'])
{
    case(target => '/ext', x1 => $x->[0], x2 => $x->[1]);
    case(target => '/covers-mp/ext', x1 => $x->[0], x2 => $x->[1]);
}
# no action: nginx answers 503, the tool refuses an empty action
case(target => '/noaction', action => undef, expect => 503);
case(target => '/noaction', action => '', expect => 503);

# -- bound headers: absent, present, repeated, mixed case names, empty
#    values, spaces around values
for my $hs (
    [], [ hf('X-Agent-Id', 'agent-7') ], [ hf('x-agent-id', 'agent-7') ],
    [ hf('X-AGENT-ID', 'agent-7') ], [ ['X-Agent-Id', ''] ],
    [ ['X-Agent-Id', '   '] ], [ ['X-Agent-Id', '  a  b  '] ],
    [ ['X-Agent-Id', 'agent-7   '] ], [ hf('X-Agent-Id', "a\tb") ],
    [ hf('X-Agent-Id', "\xc3\xa9\xff") ], [ hf('X-Agent-Id', '1:a,') ],
    [ hf('X-Agent-Id', 'a'), hf('X-Agent-Id', 'b') ],
    [ hf('X-Agent-Id', 'a'), hf('x-agent-ID', 'a') ],
    [ hf('X-Agent-Id', 'a'), ['X-Agent-Id', ''] ],
    [ hf('X-Tag', 't1') ], [ hf('X-Tag', 't1'), hf('X-Tag', 't2') ],
    [ hf('X-Tag', 't2'), hf('X-Tag', 't1') ],
    [ hf('x-tag', 't1'), hf('X-Agent-Id', 'a'), hf('X-TAG', 't2'),
      hf('X-tag', '') ],
    [ hf('X-Tag', 't1'), hf('X-Other', 'o'), hf('X-Tag', 't1') ],
    [ hf('X-Other', 'o') ], [ hf('X-Agent-Idx', 'a') ],
    [ hf('X-Empty', '') ], [ ['X-Empty', ''] ],
    [ ['X-Empty', ''], ['X-Empty', ''] ],
    [ hf('X-A', '1'), hf('X-B', '2') ], [ hf('X-B', '2'), hf('X-A', '1') ],
    [ hf('X-B', '2'), hf('X-B', '3'), hf('X-A', '1') ],
    [ hf('X-A', '1'), hf('X-A', '1') ],
    [ hf('X-Agent-Id', 'a'), hf('X-Agent-Id', 'b'), hf('X-Tag', 't'),
      hf('X-Tag', 'u') ])
{
    case(target => '/h?q=1', hdrs => $hs);
    case(target => '/h?q=1', hdrs => $hs, host => 'hdr.example');
    case(target => '/two/h', hdrs => $hs, host => 'hdr.example');
    case(target => '/h', hdrs => $hs, host => 'keep.example');
}
# a refusal that comes after the path and the args
case(target => '/h?a=1&a=2', hdrs => [ hf('X-Agent-Id', 'a'),
     hf('X-Agent-Id', 'b') ], reason => 'duplicate_arg');
case(target => '/h//x?a=1&a=2', hdrs => [ hf('X-Agent-Id', 'a'),
     hf('X-Agent-Id', 'b') ], reason => 'noncanonical_path');
case(target => '/h//x?a=1&a=2', hdrs => [ hf('X-Agent-Id', 'a'),
     hf('X-Agent-Id', 'b') ], host => 'hdr.example',
     reason => 'noncanonical_path');
case(target => '/h?a=1&a=2', hdrs => [ hf('X-Agent-Id', 'a'),
     hf('X-Agent-Id', 'b') ], host => 'keep.example');

# -- the README's attacks, with the refusal they get
{
    my @att = (
        [ '/tools/refund?amount=30&amount=3000', 'duplicate_arg' ],
        [ '/tools/refund?amount=3000&amount=30', 'duplicate_arg' ],
        [ '/tools/refund?AMOUNT=1&amount=5000', 'duplicate_arg' ],
        [ '/tools/refund?amount=1&%61mount=2', 'duplicate_arg' ],
        [ '/tools/refund?order=A17&amount=30&amount=3000', 'duplicate_arg' ],
        [ '/d/files/a%2Fb', 'noncanonical_path' ],
        [ '/d/files/a%2fb', 'noncanonical_path' ],
        [ '/d/bucket/a//b', 'noncanonical_path' ],
        [ '/tools//refund?order=A17&amount=30', 'noncanonical_path' ],
        [ '/tools/%72efund?order=A17&amount=30', 'noncanonical_path' ],
        [ '/tools/./refund?order=A17&amount=30', 'noncanonical_path' ],
        [ '/x/../tools/refund?order=A17&amount=30', 'noncanonical_path' ],
        [ '/c/%ff%fe', 'noncanonical_path' ],
        [ '/%41', 'noncanonical_path' ],
        [ '/c/%FF%FE', undef ],
    );
    for my $a (@att) {
        case(target => $a->[0], method => 'POST', body => '{}',
             agent => 'agent-7', hdrs => [ hf('X-Agent-Id', 'agent-7') ],
             reason => $a->[1], expect => defined $a->[1] ? 400 : 401);
    }
    case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
         body => '{}', agent => 'agent-7',
         hdrs => [ hf('X-Agent-Id', 'agent-7'), hf('X-Agent-Id', 'agent-8') ],
         reason => 'duplicate_header', expect => 400);
    # allowed where the configuration says so
    case(target => '/tools/refund?amount=30&amount=3000', method => 'POST',
         body => '{}', host => 'keep.example', group => 'keep-order',
         role => 'base');
    case(target => '/tools/refund?amount=3000&amount=30', method => 'POST',
         body => '{}', host => 'keep.example', group => 'keep-order',
         role => 'diff');
    case(target => '/tools/refund?AMOUNT=1&amount=5000', method => 'POST',
         body => '{}', host => 'keep.example', group => 'keep-order',
         role => 'diff');
    case(target => '/d/files/a%2Fb', host => 'norm.example',
         group => 'norm-slash', role => 'base');
    case(target => '/d/files/a/b', host => 'norm.example',
         group => 'norm-slash', role => 'same');
    case(target => '/d/files//a/./b', host => 'norm.example',
         group => 'norm-slash', role => 'same');
}

# -- the worked example
my $ex_body = '{"order":"A17","amount":30,"currency":"EUR"}';
my $ex_id = [ hf('X-Agent-Id', 'agent-7') ];
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, action => 'ignored', agent => 'agent-7',
     hdrs => $ex_id,
     url => 'https://api.example.com/tools/refund?order=A17&amount=30',
     group => 'example', role => 'base');
case(target => '/tools/refund?amount=30&order=A17', method => 'POST',
     body => $ex_body, agent => 'agent-7', hdrs => $ex_id,
     group => 'example', role => 'same');
case(target => 'http://tools.example/tools/refund?amount=30&order=A17',
     method => 'POST', body => $ex_body, agent => 'agent-7',
     hdrs => [ hf('x-agent-id', 'agent-7'), hf('X-Other', 'x') ],
     group => 'example', role => 'same');
case(target => '/tools/refund?order=A17&amount=31', method => 'POST',
     body => $ex_body, agent => 'agent-7', hdrs => $ex_id,
     group => 'example', role => 'diff');
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, agent => 'agent-8', hdrs => $ex_id,
     group => 'example', role => 'diff');
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, agent => 'agent-7',
     hdrs => [ hf('X-Agent-Id', 'agent-8') ], group => 'example',
     role => 'diff');
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, agent => 'agent-7', group => 'example',
     role => 'diff');

# -- invariants: permutations of args give one digest
{
    my @perm3 = (['a=1', 'b=2', 'c=3'], ['a=1', 'c=3', 'b=2'],
        ['b=2', 'a=1', 'c=3'], ['b=2', 'c=3', 'a=1'],
        ['c=3', 'a=1', 'b=2'], ['c=3', 'b=2', 'a=1']);
    my $role = 'base';
    for my $p (@perm3) {
        case(target => '/perm?' . join('&', @$p), group => 'perm3',
             role => $role);
        $role = 'same';
    }
    case(target => '/perm?&a=1&&c=3&b=2&', group => 'perm3', role => 'same');
    case(target => '/perm?a=1&b=2', group => 'perm3', role => 'diff');
    case(target => '/perm?a=1&b=2&C=3', group => 'perm3', role => 'diff');

    # by name key: "B" sorts as "b", "%61" as "a"
    $role = 'base';
    for my $p (['%61=1', 'B=2', 'c'], ['B=2', 'c', '%61=1'],
        ['c', '%61=1', 'B=2'])
    {
        case(target => '/perm?' . join('&', @$p), group => 'key',
             role => $role);
        $role = 'same';
    }
    case(target => '/perm?a=1&b=2&c', group => 'key', role => 'diff');

    # keep: values of one name stay in request order, others move freely
    $role = 'base';
    for my $p (['x=1', 'x=2', 'y'], ['y', 'x=1', 'x=2'], ['x=1', 'y', 'x=2'],
        ['X=1', 'y', 'x=2'])
    {
        case(target => '/kargs/perm?' . join('&', @$p),
             host => 'keep.example', group => 'perm-keep',
             role => $p->[0] eq 'X=1' ? 'diff' : $role);
        $role = 'same';
    }
    for my $p (['x=2', 'x=1', 'y'], ['y', 'x=2', 'x=1'], ['x=1', 'y', 'x=2',
        'x=2'])
    {
        case(target => '/kargs/perm?' . join('&', @$p),
             host => 'keep.example', group => 'perm-keep', role => 'diff');
    }
}

# -- invariants: what changes the digest and what does not
{
    my %base = (target => '/inv/p?a=1&b=2', method => 'POST',
        body => 'hello world', action => 'inv', x1 => 'e1', x2 => 'e2',
        hdrs => [ hf('X-Agent-Id', 'id1'), hf('X-Tag', 't1'),
                  hf('X-Tag', 't2') ],
        group => 'change');
    my $v = sub { case(%base, @_) };

    $v->(role => 'base');
    $v->(role => 'same', target => '/inv/p?b=2&a=1');
    $v->(role => 'same', target => '/inv/p?a=1&&b=2&');
    $v->(role => 'same', target => 'http://elsewhere/inv/p?a=1&b=2');
    $v->(role => 'same', chunked => 4);
    $v->(role => 'same', hdrs => [ hf('X-Tag', 't1'), hf('x-agent-id', 'id1'),
                                   hf('X-Other', 'z'), hf('x-tag', 't2') ]);
    $v->(role => 'same', hdrs => [ hf('X-Agent-Id', 'id1'),
                                   ['X-Tag', 't1  '], ['X-Tag', '   t2'] ]);
    $v->(role => 'diff', body => 'hello worle');
    $v->(role => 'diff', body => "hello world\x00");
    $v->(role => 'diff', body => 'hello worl');
    $v->(role => 'diff', method => 'PUT');
    $v->(role => 'diff', target => '/inv/q?a=1&b=2');
    $v->(role => 'diff', target => '/inv/p/?a=1&b=2');
    $v->(role => 'diff', target => '/Inv/p?a=1&b=2');
    $v->(role => 'diff', target => '/inv/p%20?a=1&b=2');
    $v->(role => 'diff', target => '/inv/p?a=2&b=2');
    $v->(role => 'diff', target => '/inv/p?a=1&b=2&c');
    $v->(role => 'diff', target => '/inv/p?a=1&b=%32');
    $v->(role => 'diff', target => '/inv/p?A=1&b=2');
    $v->(role => 'diff', action => 'inv2');
    $v->(role => 'diff', action => 'Inv');
    $v->(role => 'diff', x1 => 'e2', x2 => 'e1');
    $v->(role => 'diff', x1 => 'e1', x2 => 'e3');
    $v->(role => 'diff', x1 => undef);
    $v->(role => 'diff', hdrs => [ hf('X-Agent-Id', 'id2'), hf('X-Tag', 't1'),
                                   hf('X-Tag', 't2') ]);
    $v->(role => 'diff', hdrs => [ hf('X-Agent-Id', 'id1'), hf('X-Tag', 't2'),
                                   hf('X-Tag', 't1') ]);
    $v->(role => 'diff', hdrs => [ hf('X-Agent-Id', 'id1'),
                                   hf('X-Tag', 't1') ]);
    $v->(role => 'diff', hdrs => [ hf('X-Agent-Id', 'id1'), hf('X-Tag', 't1'),
                                   hf('X-Tag', 't2'), hf('X-Tag', '') ]);
    $v->(role => 'diff', hdrs => [ hf('X-Tag', 't1'), hf('X-Tag', 't2') ]);
    $v->(role => 'diff', hdrs => [ ['X-Agent-Id', ''], hf('X-Tag', 't1'),
                                   hf('X-Tag', 't2') ]);

    # normalize: spellings of one $uri give one digest
    my %n = (%base, host => 'norm.example', group => 'norm', hdrs => []);
    case(%n, role => 'base');
    case(%n, role => 'same', target => '/inv/./p?b=2&a=1');
    case(%n, role => 'same', target => '/inv//p?a=1&b=2');
    case(%n, role => 'same', target => '/inv/x/../p?a=1&b=2');
    case(%n, role => 'same', target => '/%69nv/%70?a=1&b=2');
    case(%n, role => 'same', target => '/inv%2Fp?a=1&b=2');
    case(%n, role => 'diff', target => '/inv/p/?a=1&b=2');
    case(%n, role => 'diff', target => '/inv/p?a=1&b=3');

    # absent and empty extras are the same thing; where the bytes go is not
    my %b2 = (target => '/inv2', action => 'inv', group => 'extras');
    case(%b2, x1 => undef, x2 => 'a', role => 'base');
    case(%b2, x1 => '', x2 => 'a', role => 'same');
    case(%b2, x1 => 'a', x2 => '', role => 'diff');
    case(%b2, x1 => 'a', x2 => undef, role => 'diff');
    case(%b2, x1 => undef, x2 => undef, role => 'diff');

    # an absent bound header is not an empty one
    my %b3 = (target => '/inv3', action => 'inv', host => 'hdr.example',
              group => 'hdr-absent');
    case(%b3, role => 'base');
    case(%b3, role => 'same', hdrs => [ hf('X-Unbound', '') ]);
    case(%b3, role => 'diff', hdrs => [ ['X-Empty', ''] ]);
    case(%b3, role => 'diff', hdrs => [ ['X-Agent-Id', ''] ]);
    case(%b3, role => 'diff', hdrs => [ ['X-Tag', ''] ]);
    case(%b3, role => 'diff', hdrs => [ ['X-Tag', ''], ['X-Tag', ''] ]);

    # covers method,path: body and args do not count
    my %mp = (target => '/covers-mp/inv?a=1', method => 'POST',
        body => 'one', action => 'inv', x1 => 'e1', x2 => 'e2',
        group => 'mp');
    case(%mp, role => 'base');
    case(%mp, role => 'same', body => 'two');
    case(%mp, role => 'same', target => '/covers-mp/inv?a=2&z');
    case(%mp, role => 'same', target => '/covers-mp/inv?b=2&a=3');
    case(%mp, role => 'same', target => '/covers-mp/inv');
    case(%mp, role => 'same', x2 => 'other');   # not configured there
    case(%mp, role => 'same', hdrs => [ hf('X-Agent-Id', 'a') ]);
    case(%mp, role => 'diff', method => 'PUT');
    case(%mp, role => 'diff', target => '/covers-mp/inw?a=1');
    case(%mp, role => 'diff', x1 => 'e9');
    case(%mp, role => 'diff', action => 'inw');

    # covers body,args: method and path do not count
    my %ba = (target => '/covers-ba/inv?a=1', method => 'POST',
        body => 'one', action => 'inv', x1 => 'e1', group => 'ba');
    case(%ba, role => 'base');
    case(%ba, role => 'same', method => 'PUT');
    case(%ba, role => 'same', target => '/covers-ba/other/path?a=1');
    case(%ba, role => 'same', x1 => 'e9');      # no extras there
    case(%ba, role => 'diff', body => 'onf');
    case(%ba, role => 'diff', target => '/covers-ba/inv?a=2');
    case(%ba, role => 'diff', action => 'inw');
}

my $hand = scalar @cases;

# -- generated from the fixed seed
{
    # path segments: mostly canonical, some not, a few nginx refuses
    my @seg = ('a', 'b', 'xyz', 'A1', '%20', '%C3%A9', '%FF', '%2B', '%3F',
        '%23', '%25', '%3D', '+', ';', '~', '-', '_', '=', '&', ',', ':',
        '@', '!', '$', "'", '(', ')', '*', '.a', 'a.', '...');
    my @bad = ('.', '..', '%2F', '%2f', '%2e', '%41', '%7e', '%c3%a9', "\xff",
        "\xc3\xa9", '\\', '%7E', '"', '');
    my @rare = ('%zz', '%00', '%', ' ', "\x01");
    # arg pieces with colliding and near-colliding name keys
    my @ap = ('a=1', 'A=2', '%61=3', '%41=4', 'b=2', 'b', 'x', 'x=', '=y',
        '', '', '%zz', '%ZZ=1', 'q=%20', 'q+r=1', 'q%20r=2', 'k=%26',
        "z=\xc3\xa9", "\xc3\xa9=1", '%C3%A9=2', 'a=1;b=2', '?', 'p=%2F',
        "h=\xff", 'n=%00', '%', 'long=' . ('v' x 100), 'e=%', 'k', '+', '=');
    my @acts = ('refund', 'transfer funds', "r\xc3\xa9sum\xc3\xa9",
        'a' x 300, 'x', "\xe6\x94\xaf\xe6\x89\x95", 'a,b:c', '0');
    my @ext = (undef, undef, '', 'agent-7', "\xc3\xa9l\xc3\xa8ve",
        'a b,c:d', '12:x,');
    my @hn = ('X-Agent-Id', 'x-agent-id', 'X-AGENT-ID', 'X-Tag', 'x-tag',
        'X-Empty', 'X-A', 'x-a', 'X-B', 'X-Other');
    my @hv = ('', 'v', 'agent-7', 'a b', "\xc3\xa9", '1:x,', ' padded ');
    my @meth = qw(GET GET POST POST PUT DELETE PATCH);
    my @hosts = (('tools.example') x 6, ('norm.example') x 2,
        ('keep.example') x 2, 'hdr.example');

    for my $i (1 .. 240) {
        my $host = pick(@hosts);
        my $r = rnd(100);
        my $t = $host ne 'tools.example' ? '/'
            : $r < 70 ? '/' : $r < 85 ? '/covers-mp/' : '/covers-ba/';
        $t .= 'kargs/' if $host eq 'keep.example' && rnd(3) == 0;
        $t .= 'two/' if $host eq 'hdr.example' && rnd(3) == 0;
        $t .= 'nmp/' if $host eq 'norm.example' && rnd(3) == 0;
        my @s = map { rnd(8) ? pick(@seg) : pick(@bad) } 1 .. rnd(6);
        $t .= join '/', @s;
        $t .= '/' if rnd(5) == 0;
        $t .= pick(@rare) if rnd(40) == 0;
        if (rnd(10) < 7) {
            my @a = map { pick(@ap) } 1 .. rnd(6);
            $t .= '?' . join('&', @a);
            $t .= '&' if rnd(4) == 0;
        }

        my @h = map { hf(pick(@hn), pick(@hv)) } 1 .. rnd(4);

        my $m = pick(@meth);
        my $b = rnd(10);
        my $body = $b < 4 ? undef : $b < 5 ? '' : $b < 9
            ? rbytes(1 + rnd(4000)) : rbytes(10000 + rnd(60000));

        case(host => $host, target => $t, method => $m, body => $body,
             chunked => (defined $body && length $body && rnd(10) == 0),
             action => pick(@acts) . ($i % 3 ? '' : "-$i"),
             x1 => pick(@ext), x2 => pick(@ext), hdrs => \@h,
             url => (rnd(10) < 3 ? 'abs' : undef));
    }
}

###########################################################################
# the tool, through the library: one node process for all the cases

sub tool_action {
    my ($c, $loc) = @_;
    return $LOC{$loc}{action} // $c->{tool_action} // $c->{action} // '';
}

sub tool_extras {
    my ($c, $loc) = @_;
    return [ map { $c->{$_} // '' } @{ $LOC{$loc}{extras} } ];
}

# the header fields as the tool takes them ("Name:value", raw)
sub tool_headers {
    my $c = shift;
    return [ map { "$_->[0]:$_->[1]" } @{ $c->{hdrs} } ];
}

# the tool's options for a case in a location
sub tool_opts {
    my ($c, $loc) = @_;
    my $l = $LOC{$loc};
    my %o = (
        action  => unpack('H*', tool_action($c, $loc)),
        method  => unpack('H*', $c->{method}),
        body    => defined $c->{body} ? unpack('H*', $c->{body}) : undef,
        extras  => [ map { unpack 'H*', $_ } @{ tool_extras($c, $loc) } ],
        headers => [ map { unpack 'H*', $_ } @{ tool_headers($c) } ],
        bind    => $l->{bind},
        covers  => $l->{covers},
        pathMode => $l->{path_mode} // 'canonical',
        duplicateArgs => $l->{dup} // 'refuse',
    );
    if (defined $c->{url}) {
        $o{url} = unpack 'H*', $c->{url};
    } else {
        $o{target} = unpack 'H*', $c->{target};
    }
    return \%o;
}

my @lines;
for my $c (@cases) {
    push @lines, $json->encode({ op => 'norm',
                                 target => unpack('H*', $c->{target}) });
    for my $loc (@{ $SERVER_LOCS{ $c->{host} } }) {
        push @lines, $json->encode({ op => 'digest', %{ tool_opts($c, $loc) } });
    }
}

spew("$dir/helper.mjs", <<'JS');
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const lib = await import(pathToFileURL(process.argv[2]).href);
const hx = (h) => Buffer.from(h, 'hex');
const out = [];
for (const line of readFileSync(0, 'latin1').split('\n')) {
    if (line === '') {
        continue;
    }
    const j = JSON.parse(line);
    try {
        if (j.op === 'norm') {
            const { path } = lib.splitTarget(hx(j.target), { wire: true });
            out.push('OK ' + lib.normalizePath(path).toString('hex'));
        } else {
            const o = { action: hx(j.action),
                        method: hx(j.method).toString('latin1'),
                        extras: j.extras.map(hx), headers: j.headers.map(hx),
                        bindHeaders: j.bind, pathMode: j.pathMode,
                        duplicateArgs: j.duplicateArgs };
            if (j.url !== undefined) {
                o.url = hx(j.url);
            } else {
                o.target = hx(j.target);
            }
            if (j.body !== null) {
                o.body = hx(j.body);
            }
            if (j.covers !== null) {
                o.covers = j.covers;
            }
            const c = lib.canonical(o);
            out.push('OK ' + lib.digest(c) + ' ' + lib.escapeBytes(c)
                .replace(/ /g, '\\x20'));
        }
    } catch (e) {
        if (!(e instanceof lib.DigestError)) {
            throw e;
        }
        out.push('ERR ' + (e.reason ?? 'usage') + ' '
                 + e.message.replace(/\s+/g, ' '));
    }
}
process.stdout.write(out.join('\n') + '\n');
JS

spew("$dir/helper.in", join('', map { "$_\n" } @lines));
my $rc = system("node '$dir/helper.mjs' '$LIB' < '$dir/helper.in'"
                . " > '$dir/helper.out' 2> '$dir/helper.err'");
BAIL_OUT('node helper failed: ' . slurp("$dir/helper.err")) if $rc;
my @answers = split /\n/, slurp("$dir/helper.out");
is scalar(@answers), scalar(@lines), 'the library answered every case';

for my $c (@cases) {
    $c->{tool_norm} = shift @answers;
    $c->{tool}{$_} = shift(@answers) // 'ERR (none)'
        for @{ $SERVER_LOCS{ $c->{host} } };
    $c->{loc} = $c->{tool_norm} =~ /^OK (\S*)$/
        ? location_of($c->{host}, pack 'H*', $1)
        : $SERVER_LOCS{ $c->{host} }[0];
}

###########################################################################
# nginx, case by case

start_nginx();

my %n = (agree => 0, refused => 0, nginx400 => 0, other => 0);
my %reasons;

for my $i (0 .. $#cases) {
    my $c = $cases[$i];
    my ($status, $h, $body) = ask_nginx(wire($c));
    my $name = "#$i $c->{method} $c->{host} " . show($c->{target})
        . ($c->{loc} !~ /^(main|nmain|kmain|hmain)$/ ? " [$c->{loc}]" : '')
        . (@{ $c->{hdrs} } ? ' +' . show(join '|', map { "$_->[0]:$_->[1]" }
                                         @{ $c->{hdrs} }) : '');
    my $tool = $c->{tool}{ $c->{loc} } // 'ERR (no location)';
    my ($tool_digest, $tool_c) = $tool =~ /^OK (\S+) (\S*)$/;
    $c->{status} = $status;

    if (defined $c->{expect}) {
        is $status, $c->{expect}, "$name: nginx answers $c->{expect}";
    }

    if ($status == 401) {
        my $j = eval { $json->decode($body) } // {};
        my $digest = $c->{method} eq 'HEAD' ? $h->{'x-ciba-digest'}
                                            : $j->{action_digest};
        $c->{digest} = $digest;

        if ($c->{method} ne 'HEAD') {
            is $j->{error}, 'approval_required', "$name: approval_required";
            is $h->{'x-ciba-digest'}, $digest,
                "$name: \$ciba_digest is the digest of the answer";
            my $a = tool_action($c, $c->{loc});
            if (is_utf8_bytes($a)) {
                my $got = $j->{action};
                utf8::encode($got) if defined $got;
                is show($got), show($a), "$name: the action of the answer";
            }
        }

        like $digest // '', qr/^[A-Za-z0-9_-]{43}$/, "$name: 43 base64url";
        is $tool_digest // $tool, $digest // '(none)', "$name: the tool agrees"
            and $n{agree}++
            or diag "tool's C: " . ($tool_c // '(none)');

    } elsif ($status == 400 && $body =~ /^\s*\{/) {
        my $j = eval { $json->decode($body) } // {};
        my $reason = $j->{reason} // '(none)';
        $c->{reason_got} = $reason;
        $reasons{$reason}++;
        is $j->{error}, 'approval_bad_request',
            "$name: 400 approval_bad_request";
        is $reason, $c->{reason}, "$name: reason $c->{reason}"
            if defined $c->{reason};
        my ($tr) = $tool =~ /^ERR (\S+)/;
        is $tr // "accepts ($tool)", $reason,
            "$name: the module refuses ($reason), the tool too"
            and $n{refused}++;

    } elsif ($status == 400) {
        like $tool, qr/^ERR invalid_request /,
            "$name: nginx itself says 400, so does the tool"
            and $n{nginx400}++;

    } elsif ($status == 503 && $body =~ /"empty_action"/) {
        like $tool, qr/^ERR usage /, "$name: empty action, the tool refuses"
            and $n{refused}++;

    } else {
        fail "$name: nginx answers $status";
        diag $body;
        $n{other}++;
    }
}

diag "cases: " . scalar(@cases) . " ($hand hand-picked); nginx and the"
    . " tool agree on $n{agree} digests, on $n{refused} refusals of the"
    . " module (" . join(', ', map { "$_ $reasons{$_}" } sort keys %reasons)
    . ") and on $n{nginx400} of nginx; $n{other} other answers";

cmp_ok $n{agree}, '>=', 400, 'most cases got a digest';
cmp_ok $reasons{$_} // 0, '>=', 10, "$_ refusals seen"
    for qw(noncanonical_path duplicate_arg duplicate_header);
cmp_ok $reasons{not_utf8} // 0, '>=', 1, 'not_utf8 refusals seen';

###########################################################################
# the worked example of the README and tools/DIGEST-EXAMPLE.md

{
    my ($ex) = grep { ($_->{group} // '') eq 'example' } @cases;
    my $c = join '', map { ns($_) } 'ngx-ciba-digest/2',
        'method,path,args,body', 'refund', 'POST', '/tools/refund', '2',
        'amount=30', 'order=A17', sha256_hex($ex_body), '1', 'agent-7',
        '1', 'x-agent-id', '1', 'agent-7';
    is length($c), 221, 'the worked example: C is 221 bytes';
    is b64url($c), 'jf_GfV_YmfCjjbjwrPySqKZ_ID4za3ntE-TCYUA_rjM',
        'the worked example, computed here';
    is $ex->{digest}, 'jf_GfV_YmfCjjbjwrPySqKZ_ID4za3ntE-TCYUA_rjM',
        'the worked example, from nginx';
}

###########################################################################
# invariants, on nginx's digests alone

{
    my %base;
    for my $c (grep { $_->{group} } @cases) {
        $base{ $c->{group} } = $c->{digest} if $c->{role} eq 'base';
    }
    for my $i (0 .. $#cases) {
        my $c = $cases[$i];
        next unless $c->{group} && $c->{role} ne 'base';
        my $b = $base{ $c->{group} };
        my $name = "$c->{group}: #$i $c->{method} " . show($c->{target})
            . ' body ' . show($c->{body}) . ' action ' . show($c->{action})
            . ' extras ' . show($c->{x1}) . '/' . show($c->{x2})
            . ' headers ' . show(join '|', map { "$_->[0]:$_->[1]" }
                                 @{ $c->{hdrs} });
        ok defined($b) && defined($c->{digest}), "$name: has a digest"
            or next;
        if ($c->{role} eq 'same') {
            is $c->{digest}, $b, "$name: same digest";
        } else {
            isnt $c->{digest}, $b, "$name: another digest";
        }
    }

    # no two different requests collide, and each digest is the tool's
    # digest of exactly one canonical request in a location
    my %seen;
    for my $c (grep { defined $_->{digest} } @cases) {
        $seen{ $c->{digest} }{ $c->{loc} } = 1;
    }
    is scalar(grep { keys %{ $seen{$_} } > 1 } keys %seen), 0,
        'no digest is shared by two locations';
}

###########################################################################
# the command itself, for a subset of the cases

sub run_tool {
    my (@args) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$dir/tool.out" or die;
        open STDERR, '>', "$dir/tool.err" or die;
        exec $TOOL, @args or exit 127;
    }
    waitpid $pid, 0;
    return ($? >> 8, slurp("$dir/tool.out"), slurp("$dir/tool.err"));
}

my %EXIT = (noncanonical_path => 3, duplicate_arg => 4,
            duplicate_header => 5, not_utf8 => 6);

{
    # the command line takes its arguments as UTF-8 text (node decodes
    # argv), so only cases whose action, extras, URL and headers are UTF-8,
    # and never a NUL byte, can be given to it; it takes a URL, so a raw
    # "#" on the wire cannot be said
    my $ok = sub {
        my $c = shift;
        return 0 if !defined $c->{url} && $c->{target} =~ /#/;
        return 0 if !defined $c->{url} && $c->{target} =~ m{^http://[^/]*$};
        for my $v (tool_action($c, $c->{loc}), $c->{url} // $c->{target},
                   @{ tool_extras($c, $c->{loc}) }, @{ tool_headers($c) })
        {
            return 0 if $v =~ /\x00/ || !is_utf8_bytes($v);
        }
        return 1;
    };

    my @pick;
    my %got;
    for my $i (0 .. $#cases) {
        my $c = $cases[$i];
        next unless $ok->($c);
        my $kind = $c->{status} == 401 ? 'ok'
            : $c->{reason_got} ? $c->{reason_got} : 'other';
        my $max = $kind eq 'ok' ? 60 : 12;
        next if $kind eq 'ok' && $i % 7;
        next if ($got{$kind} // 0) >= $max;
        $got{$kind}++;
        push @pick, $i;
    }

    cmp_ok scalar(@pick), '>=', 60, 'the command runs for 60 cases or more';

    for my $i (@pick) {
        my $c = $cases[$i];
        my $loc = $c->{loc};
        my $l = $LOC{$loc};
        my @args = ('--action', tool_action($c, $loc),
                    '--method', $c->{method},
                    '--url', $c->{url} // $c->{target});
        if (defined $c->{body}) {
            spew("$dir/body-$i", $c->{body});
            push @args, '--body-file', "$dir/body-$i";
        }
        push @args, map { ('--extra', $_) } @{ tool_extras($c, $loc) };
        push @args, map { ('--bind-header', $_) } @{ $l->{bind} };
        push @args, map { ('--header', $_) } @{ tool_headers($c) };
        push @args, '--covers', $l->{covers} if $l->{covers};
        push @args, '--path-mode', $l->{path_mode} if $l->{path_mode};
        push @args, '--duplicate-args', $l->{dup} if $l->{dup};

        my ($rc, $out, $err) = run_tool(@args);
        my $name = "cli #$i $c->{method} $c->{host} " . show($c->{target});

        if ($c->{status} == 401) {
            is $rc, 0, "$name: exit 0" or diag $err;
            is $out, "$c->{digest}\n", "$name: the digest nginx computed";
        } elsif ($c->{reason_got}) {
            is $rc, $EXIT{ $c->{reason_got} } // -1,
                "$name: exit status of $c->{reason_got}" or diag $err;
            is $out, '', "$name: nothing on stdout";
        } else {
            is $rc, 2, "$name: exit 2 where nginx answers $c->{status}";
            is $out, '', "$name: nothing on stdout";
        }
    }

    # --json, for a digest and for a refusal
    my ($c) = grep { ($_->{group} // '') eq 'example' } @cases;
    my ($rc, $out) = run_tool('--action', 'refund', '--method', 'POST',
        '--url', $c->{url}, '--body', $ex_body, '--extra', 'agent-7',
        '--bind-header', 'X-Agent-Id', '--header', 'X-Agent-Id: agent-7',
        '--json');
    my $j = eval { $json->decode($out) } // {};
    is $rc, 0, 'cli --json: exit 0';
    is $j->{digest}, $c->{digest}, 'cli --json: the digest nginx computed';
    is $j->{length}, 221, 'cli --json: the length of C';

    ($rc, $out) = run_tool('--action', 'refund', '--url',
        '/tools/refund?amount=30&amount=3000', '--json');
    $j = eval { $json->decode($out) } // {};
    is $rc, 4, 'cli --json: a refusal keeps its exit status';
    is $j->{reason}, 'duplicate_arg', 'cli --json: and says its reason';

    # a byte that is not UTF-8 cannot go through argv (node turns it into
    # U+FFFD): the command must refuse rather than print another digest
    ($rc, $out) = run_tool('--action', 'refund', '--method', 'GET',
        '--url', "/args?z=\xff", '--extra', 'agent-7', '--extra', 'second',
        '--bind-header', 'X-Agent-Id', '--bind-header', 'X-Tag:repeated');
    is $rc, 2, 'cli: a raw 0xff in the query is refused';
    is $out, '', 'cli: no digest printed for it';

    # an empty --extra is an extra value, as an absent header is for nginx
    ($c) = grep { $_->{target} eq '/ext' && !defined $_->{x1}
                  && !defined $_->{x2} } @cases;
    ($rc, $out) = run_tool('--action', 'refund', '--method', 'GET',
        '--url', '/ext', '--extra', '', '--extra=', '--bind-header',
        'X-Agent-Id', '--bind-header=X-Tag:repeated');
    is $rc, 0, 'cli: empty --extra values are taken';
    is $out, "$c->{digest}\n",
        'cli: two empty extras are the absent headers for nginx';
}

done_testing();
