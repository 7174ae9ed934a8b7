#!/usr/bin/perl
#
# tools/ciba-digest against the module itself.
#
# Starts nginx (/usr/sbin/nginx or $TEST_NGINX_BINARY, with the module
# loaded from $TEST_NGINX_LOAD_MODULES, none when that is empty) under a
# temporary prefix, with protected locations that take the action from a
# request header, so that one location covers many actions.  Then, for
# several hundred requests (hand-picked ones and ones generated from a
# fixed seed), sends the raw request without an approval token and checks
# that the "action_digest" of the 401 answer is the digest computed by
# tools/ciba-digest.mjs on the same inputs (through its exported
# functions, imported once), and, for a subset, by the tools/ciba-digest
# command itself.  Where nginx refuses the request (400), the tool must
# refuse it too.  Last, some invariants that hold whatever the tool says:
# reordering the args keeps the digest; changing one body byte, the
# method, one path byte, one arg, the action or an extra changes it.
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
        listen 127.0.0.1:$PORT;
        server_name localhost;

        # every path is protected
        location / {
            ciba_action \$http_x_action;
            ciba_digest_extra \$http_x_extra1;
            ciba_digest_extra \$http_x_extra2;
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

        # the worked example of tools/DIGEST-EXAMPLE.md
        location = /tools/refund {
            ciba_action refund;
            ciba_digest_extra \$http_x_agent;
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
        . "Host: tools.example\r\nConnection: close\r\n";
    $req .= "X-Action: $c->{action}\r\n" if defined $c->{action};
    $req .= "X-Extra1: $c->{x1}\r\n" if defined $c->{x1};
    $req .= "X-Extra2: $c->{x2}\r\n" if defined $c->{x2};
    $req .= "X-Agent: $c->{agent}\r\n" if defined $c->{agent};

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
# method, target (raw, as on the wire), body (undef: none, no
# Content-Length), chunked, action / x1 / x2 / agent (header values,
# undef: the header is not sent), url (what the tool gets, default the
# target; "abs" = https://tools.example + target), group / role for the
# invariants.

my @cases;

sub case {
    my %c = (method => 'GET', action => 'refund', x1 => 'agent-7', @_);
    $c{url} = 'https://tools.example' . $c{target}
        if ($c{url} // '') eq 'abs';
    $c{url} //= $c{target};
    push @cases, \%c;
}

my $bin = "\x00\xff\x00abc\x80\r\n\x00";

# -- paths
for my $t ('/', '/a', '/a/', '/a/b', '/a/b/', '/a/../b', '/a/./b',
    '/a/b/..', '/a/b/.', '/a/b/../..', '/a//b', '//', '///a//b//',
    '/a%2Fb', '/a%2fb/', '/a%2F..%2Fb', '/%2e%2e', '/%2e/a', '/a/%2e%2e/b',
    '/a/%2E%2e', '/a/.%2e/b', '/a/b/%2e%2e%2f%2e%2e', '/caf%C3%A9',
    '/caf%c3%a9/x', "/caf\xc3\xa9", "/\xe6\x97\xa5\xe6\x9c\xac/x", '/%ff',
    "/\xff\x80", '/a+b', '/a%2Bb', '/a;b', '/a;b/../c', '/..;/a', '/a%3Fb',
    '/a%25', '/a%23b', '/a%20b', '/~user', '/a\\b', '/a\\..\\b',
    '/a#b', '/a/..#x', '/a%23#b', '/a/b#/../..', '/a/.b/..c/...', '/a/b/c/../../d/./e//', '/' . ('s/' x 200) . 'end',
    '/' . ('x' x 3000))
{
    case(target => $t);
}

# -- the same paths in the covers-mp and covers-ba locations
for my $t ('/covers-mp/a', '/covers-mp/a/../b/', '/covers-mp//x//y',
    '/covers-mp/%2e%2e/covers-mp/z', '/x/../covers-mp/a%2Fb',
    '/covers-ba/a', '/covers-ba/./a/b/..', '/covers-ba/%41%42',
    '/x/y/../../covers-ba/q', '/covers-mpx', '/covers-ba.', '/Covers-mp/a')
{
    case(target => $t, method => 'POST', body => 'payload');
    case(target => "$t?b=2&a=1", method => 'PUT', body => '',
         x1 => undef);
}

# -- refused by nginx (400): the tool must refuse too
for my $t ('/..', '/a/../..', '/%2e%2e/', '/a/%2e%2e%2f%2e%2e', '/%00',
    '/a%00b', '/%', '/a%2', '/%zz', '/%g0', '/a%?x', '/a b', "/a\x01b",
    "/a\x7fb", "/a?b\x01c", '/a/b/../../../c', '/covers-mp/../../x',
    '/covers-ba/%2e%2e/%2e%2e/x')
{
    case(target => $t, expect => 400);
}
case(target => '/a', method => 'get', expect => 400);
case(target => '/covers-mp/a', method => 'post', body => 'x', expect => 400);

# -- args
for my $q ('a=1', 'a=1&a=1', 'a=1&a=2&a=1', 'a=1&&b=2&', '&&&', '&a',
    'a&', 'x', 'x&y&x', 'a=', '=a', '=', 'a==b', '%zz', 'a=%zz&b=%',
    'a=%20&b=+&c=%2B', 'q=a+b', 'k=%26&k=&', 'u=%C3%A9', "u=\xc3\xa9",
    "z=\xff", 'a=1;b=2', '?', 'a=?&b=c?d', 'p=/x/../y', 'p=%2F',
    'A=1&a=1&B&b', '', 'a=1#frag&b=2', 'x#', 'long=' . ('v' x 2000),
    join('&', map { "n$_=$_" } 1 .. 100), join('&', ('dup') x 50))
{
    case(target => "/args?$q", x2 => 'second');
}

# -- absolute URL for the tool, origin form on the wire, and absolute
#    form on the wire too
for my $t ('/a?b=1', '/a/../b?x&y', '/', '/?q', '/%2e/x?%zz',
    '/covers-mp/a?z', '/covers-ba/a?b&a')
{
    case(target => $t, url => 'abs', method => 'POST', body => 'b');
    case(target => "http://tools.example$t", method => 'POST',
         body => 'b');
    case(target => $t, url => "https://other.example:8443$t#frag",
         method => 'POST', body => 'b');
}
case(target => 'http://tools.example', url => 'https://tools.example');
case(target => 'http://tools.example?x=1', url => 'https://tools.example?x=1');
case(target => '/a?b=1', url => 'https://tools.example/a?b=1#x&y');

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

# -- the worked example
my $ex_body = '{"order":"A17","amount":30,"currency":"EUR"}';
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, action => 'ignored', agent => 'agent-7',
     url => 'https://api.example.com/tools/refund?order=A17&amount=30',
     group => 'example', role => 'base');
case(target => '/tools//./refund?amount=30&order=A17', method => 'POST',
     body => $ex_body, agent => 'agent-7', group => 'example',
     role => 'same');
case(target => '/tools/refund?order=A17&amount=31', method => 'POST',
     body => $ex_body, agent => 'agent-7', group => 'example',
     role => 'diff');
case(target => '/tools/refund?order=A17&amount=30', method => 'POST',
     body => $ex_body, agent => 'agent-8', group => 'example',
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
    case(target => '/perm?a=1&b=2&c=3&c=3', group => 'perm3',
         role => 'diff');

    $role = 'base';
    for my $p (['x=1', 'x=2', 'y'], ['x=2', 'x=1', 'y'], ['y', 'x=1', 'x=2'],
        ['x=1', 'y', 'x=2'], ['y', 'x=2', 'x=1'], ['x=2', 'y', 'x=1'])
    {
        case(target => '/covers-ba/perm?' . join('&', @$p), method => 'POST',
             body => 'B', group => 'perm-ba', role => $role);
        $role = 'same';
    }
    case(target => '/covers-ba/perm?x=1&x=2&y=', method => 'POST',
         body => 'B', group => 'perm-ba', role => 'diff');
}

# -- invariants: what changes the digest and what does not
{
    my %base = (target => '/inv/p?a=1&b=2', method => 'POST',
        body => 'hello world', action => 'inv', x1 => 'e1', x2 => 'e2',
        group => 'change');
    my $v = sub { case(%base, @_) };

    $v->(role => 'base');
    $v->(role => 'same', target => '/inv/./p?b=2&a=1');
    $v->(role => 'same', target => '/inv//p?a=1&&b=2');
    $v->(role => 'same', target => '/inv/x/../p?a=1&b=2');
    $v->(role => 'same', target => '/%69nv/%70?a=1&b=2');
    $v->(role => 'same', target => 'http://elsewhere/inv/p?a=1&b=2');
    $v->(role => 'same', chunked => 4);
    $v->(role => 'diff', body => 'hello worle');
    $v->(role => 'diff', body => "hello world\x00");
    $v->(role => 'diff', body => 'hello worl');
    $v->(role => 'diff', method => 'PUT');
    $v->(role => 'diff', target => '/inv/q?a=1&b=2');
    $v->(role => 'diff', target => '/inv/p/?a=1&b=2');
    $v->(role => 'diff', target => '/Inv/p?a=1&b=2');
    $v->(role => 'diff', target => '/inv/p?a=2&b=2');
    $v->(role => 'diff', target => '/inv/p?a=1&b=2&c');
    $v->(role => 'diff', target => '/inv/p?a=1&b=%32');
    $v->(role => 'diff', action => 'inv2');
    $v->(role => 'diff', action => 'Inv');
    $v->(role => 'diff', x1 => 'e2', x2 => 'e1');
    $v->(role => 'diff', x1 => 'e1', x2 => 'e3');
    $v->(role => 'diff', x1 => undef);

    # absent and empty extras are the same thing; where the bytes go is not
    my %b2 = (target => '/inv2', action => 'inv', group => 'extras');
    case(%b2, x1 => undef, x2 => 'a', role => 'base');
    case(%b2, x1 => '', x2 => 'a', role => 'same');
    case(%b2, x1 => 'a', x2 => '', role => 'diff');
    case(%b2, x1 => 'a', x2 => undef, role => 'diff');
    case(%b2, x1 => undef, x2 => undef, role => 'diff');

    # covers method,path: body and args do not count
    my %mp = (target => '/covers-mp/inv?a=1', method => 'POST',
        body => 'one', action => 'inv', x1 => 'e1', x2 => 'e2',
        group => 'mp');
    case(%mp, role => 'base');
    case(%mp, role => 'same', body => 'two');
    case(%mp, role => 'same', target => '/covers-mp/inv?a=2&z');
    case(%mp, role => 'same', target => '/covers-mp/inv');
    case(%mp, role => 'same', x2 => 'other');   # not configured there
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
    my @pp = ('/', '/', 'a', 'b', 'xyz', '.', '..', '%2e', '%2E%2e', '%2F',
        '%41', '%c3%a9', "\xc3\xa9", '+', ';', '~', '%25', '%20', '//',
        '/./', '/../', "\xff", '%3F', '-', '_', '%7e', '=', '&', ',');
    my @rare = ('%zz', '%00', '%', ' ', "\x01");
    my @ap = ('a=1', 'b=2', 'a=2', 'x', 'x=', '=y', '', '', '%zz',
        'q=%20', 'q=+', 'q=a+b', 'k=%26', "z=\xc3\xa9", 'u=%C3%A9',
        'a=1;b=2', '?', 'p=/x/../y', 'p=%2F', "h=\xff", 'n=%00', '%',
        'long=' . ('v' x 100), 'e=%', 'k');
    my @acts = ('refund', 'transfer funds', "r\xc3\xa9sum\xc3\xa9",
        'a' x 300, 'x', "\xe6\x94\xaf\xe6\x89\x95", 'a,b:c', '0');
    my @ext = (undef, undef, '', 'agent-7', "\xc3\xa9l\xc3\xa8ve",
        'a b,c:d', '12:x,');
    my @meth = qw(GET GET POST POST PUT DELETE PATCH);

    for my $i (1 .. 200) {
        my $r = rnd(100);
        my $t = $r < 70 ? '/' : $r < 85 ? '/covers-mp/' : '/covers-ba/';
        $t .= pick(@pp) for 1 .. rnd(8);
        $t .= pick(@rare) if rnd(40) == 0;
        if (rnd(10) < 7) {
            my @a = map { pick(@ap) } 1 .. rnd(7);
            $t .= '?' . join('&', @a);
            $t .= '&' if rnd(4) == 0;
        }

        my $m = pick(@meth);
        my $b = rnd(10);
        my $body = $b < 4 ? undef : $b < 5 ? '' : $b < 9
            ? rbytes(1 + rnd(4000)) : rbytes(10000 + rnd(60000));

        case(target => $t, method => $m, body => $body,
             chunked => (defined $body && length $body && rnd(10) == 0),
             action => pick(@acts) . ($i % 3 ? '' : "-$i"),
             x1 => pick(@ext), x2 => pick(@ext),
             url => (rnd(10) < 3 ? 'abs' : undef));
    }
}

###########################################################################
# the tool, through the library: one node process for all the cases

my %LOC = (
    main   => { extras => [qw(x1 x2)],  covers => undef },
    mp     => { extras => [qw(x1)],     covers => 'method,path' },
    ba     => { extras => [],           covers => 'body,args' },
    refund => { extras => [qw(agent)],  covers => undef,
                action => 'refund' },
);
my @LOCS = sort keys %LOC;

sub tool_action {
    my ($c, $loc) = @_;
    return $LOC{$loc}{action} // $c->{tool_action} // $c->{action} // '';
}

sub tool_extras {
    my ($c, $loc) = @_;
    return [ map { $c->{$_} // '' } @{ $LOC{$loc}{extras} } ];
}

sub location_of {
    my $path = shift;
    return 'refund' if $path eq '/tools/refund';
    return 'mp' if index($path, '/covers-mp/') == 0;
    return 'ba' if index($path, '/covers-ba/') == 0;
    return 'main';
}

my @lines;
for my $c (@cases) {
    push @lines, $json->encode({ op => 'norm', url => unpack('H*', $c->{url}) });
    for my $loc (@LOCS) {
        push @lines, $json->encode({
            op      => 'digest',
            action  => unpack('H*', tool_action($c, $loc)),
            method  => unpack('H*', $c->{method}),
            url     => unpack('H*', $c->{url}),
            body    => defined $c->{body} ? unpack('H*', $c->{body}) : undef,
            extras  => [ map { unpack 'H*', $_ } @{ tool_extras($c, $loc) } ],
            covers  => $LOC{$loc}{covers},
        });
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
            const { path } = lib.splitTarget(hx(j.url));
            out.push('OK ' + lib.normalizePath(path).toString('hex'));
        } else {
            const o = { action: hx(j.action),
                        method: hx(j.method).toString('latin1'),
                        url: hx(j.url), extras: j.extras.map(hx) };
            if (j.body !== null) {
                o.body = hx(j.body);
            }
            if (j.covers !== null) {
                o.covers = j.covers;
            }
            out.push('OK ' + lib.digest(o));
        }
    } catch (e) {
        if (!(e instanceof lib.DigestError)) {
            throw e;
        }
        out.push('ERR ' + e.message.replace(/\s+/g, ' '));
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
    $c->{tool}{$_} = shift(@answers) // 'ERR (none)' for @LOCS;
    $c->{loc} = $c->{tool_norm} =~ /^OK (\S*)$/
        ? location_of(pack 'H*', $1) : 'main';
}

###########################################################################
# nginx, case by case

start_nginx();

my %n = (agree => 0, refused => 0, other => 0);

for my $i (0 .. $#cases) {
    my $c = $cases[$i];
    my ($status, $h, $body) = ask_nginx(wire($c));
    my $name = "#$i $c->{method} " . show($c->{target})
        . ($c->{loc} ne 'main' ? " [$c->{loc}]" : '');
    my $tool = $c->{tool}{ $c->{loc} };
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
        is $tool, 'OK ' . ($digest // '(none)'), "$name: the tool agrees"
            and $n{agree}++;

    } elsif ($status == 400) {
        like $tool, qr/^ERR /, "$name: nginx says 400, the tool refuses"
            and $n{refused}++;

    } elsif ($status == 503 && $body =~ /"empty_action"/) {
        like $tool, qr/^ERR /, "$name: empty action, the tool refuses"
            and $n{refused}++;

    } else {
        fail "$name: nginx answers $status";
        diag $body;
        $n{other}++;
    }
}

diag "cases: " . scalar(@cases) . " ($hand hand-picked); nginx and the"
    . " tool agree on $n{agree} digests and refuse $n{refused} requests"
    . " alike; $n{other} other answers";

cmp_ok $n{agree}, '>=', 250, 'most cases got a digest';

###########################################################################
# the worked example, known from tools/DIGEST-EXAMPLE.md

{
    my ($ex) = grep { ($_->{group} // '') eq 'example' } @cases;
    my $c = join '', map { ns($_) } 'ngx-ciba-digest/1',
        'method,path,args,body', 'refund', 'POST', '/tools/refund', '2',
        'amount=30', 'order=A17', sha256_hex($ex_body), '1', 'agent-7';
    is b64url($c), 'Dx-ECfVvYpGoYMIM1sJePh24VBCEAeOWj499Epx_Xqc',
        'the worked example, computed here';
    is $ex->{digest}, 'Dx-ECfVvYpGoYMIM1sJePh24VBCEAeOWj499Epx_Xqc',
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
            . ' extras ' . show($c->{x1}) . '/' . show($c->{x2});
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

{
    # the command line takes its arguments as UTF-8 text (node decodes
    # argv), so only cases whose action, extras and URL are UTF-8, and
    # never a NUL byte, can be given to it
    my $ok = sub {
        my $c = shift;
        for my $v (tool_action($c, $c->{loc}), $c->{url},
                   @{ tool_extras($c, $c->{loc}) })
        {
            return 0 if $v =~ /\x00/ || !is_utf8_bytes($v);
        }
        return 1;
    };

    my @pick;
    my ($good, $bad) = (0, 0);
    for my $i (0 .. $#cases) {
        my $c = $cases[$i];
        next unless $ok->($c);
        if ($c->{status} == 401 && $i % 9 == 0 && $good < 60)
        {
            push @pick, $i;
            $good++;
        } elsif ($c->{status} != 401 && $bad < 15) {
            push @pick, $i;
            $bad++;
        }
    }

    cmp_ok scalar(@pick), '>=', 30, 'the command runs for 30 cases or more';

    for my $i (@pick) {
        my $c = $cases[$i];
        my $loc = $c->{loc};
        my @args = ('--action', tool_action($c, $loc),
                    '--method', $c->{method}, '--url', $c->{url});
        if (defined $c->{body}) {
            spew("$dir/body-$i", $c->{body});
            push @args, '--body-file', "$dir/body-$i";
        }
        push @args, map { ('--extra', $_) } @{ tool_extras($c, $loc) };
        push @args, '--covers', $LOC{$loc}{covers} if $LOC{$loc}{covers};

        my ($rc, $out, $err) = run_tool(@args);
        my $name = "cli #$i $c->{method} " . show($c->{target});

        if ($c->{status} == 401) {
            is $rc, 0, "$name: exit 0" or diag $err;
            is $out, "$c->{digest}\n", "$name: the digest nginx computed";
        } else {
            is $rc, 2, "$name: exit 2 where nginx answers $c->{status}";
            is $out, '', "$name: nothing on stdout";
        }
    }

    # a byte that is not UTF-8 cannot go through argv (node turns it into
    # U+FFFD): the command must refuse rather than print another digest
    {
        my ($c) = grep { $_->{target} eq "/args?z=\xff" } @cases;
        my ($rc, $out) = run_tool('--action', 'refund', '--method', 'GET',
            '--url', $c->{url}, '--extra', 'agent-7', '--extra', 'second');
        is $rc, 2, 'cli: a raw 0xff in the query is refused';
        is $out, '', 'cli: no digest printed for it';
    }

    # an empty --extra is an extra value, as an absent header is for nginx
    my ($c) = grep { $_->{target} eq '/ext' && !defined $_->{x1}
                     && !defined $_->{x2} } @cases;
    my ($rc, $out) = run_tool('--action', 'refund', '--method', 'GET',
        '--url', '/ext', '--extra', '', '--extra=');
    is $rc, 0, 'cli: empty --extra values are taken';
    is $out, "$c->{digest}\n",
        'cli: two empty extras are the absent headers for nginx';
}

done_testing();
