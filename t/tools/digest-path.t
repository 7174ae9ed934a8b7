#!/usr/bin/perl
#
# tools/ciba-digest (the action digest, version 2) against the real thing.
#
# 1. Path normalization (ciba_path normalize): starts the stock nginx
#    (/usr/sbin/nginx) under a temporary prefix, listening on a free port
#    of 127.0.0.1 only, with a location that answers "$uri"; sends many
#    tricky request targets over a raw socket and checks that
#    normalizePath() of the tool gives the same bytes as nginx's $uri, or
#    refuses where nginx answers 400.
# 2. The canonical encoding: hand-written C for a number of cases (the
#    raw canonical path, name-key order of the args, duplicate args kept,
#    bound headers, normalize mode), checked against canonical() of the
#    tool and against an independent SHA-256 / base64url computation with
#    Digest::SHA; and what canonical() refuses, with the reason.
# 3. The command line: digests, --canonical, --json, and the exit status
#    of each refusal (2, 3, 4, 5).
#
# Run from the repository root:  prove t/tools/digest-path.t

use strict;
use warnings;

use Test::More;
use Digest::SHA qw(sha256 sha256_hex sha256_base64);
use File::Temp qw(tempdir);
use FindBin;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my $NGINX = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
# a free port, so that runs side by side do not clash
my $PORT  = do {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "no free port: $!";
    my $p = $l->sockport;
    close $l;
    $p;
};
my $ROOT  = "$FindBin::Bin/../..";
my $TOOL  = "$ROOT/tools/ciba-digest";
my $LIB   = "$ROOT/tools/ciba-digest.mjs";

plan skip_all => "no $NGINX" unless -x $NGINX;
plan skip_all => 'no node' unless system('node -v >/dev/null 2>&1') == 0;
plan skip_all => "no $LIB" unless -f $LIB;

my $dir = tempdir('ciba-digest-XXXXXX', TMPDIR => 1, CLEANUP => 1);

###########################################################################
# helpers

sub b64url { my $s = sha256_base64($_[0]); $s =~ tr{+/}{-_}; $s }

sub ns { my $x = shift; length($x) . ':' . $x . ',' }

# a readable form of a byte string: whole, for comparisons, and cut
# short, for test names
sub esc {
    my $s = shift;
    $s =~ s/([^\x21-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

sub show {
    my $s = shift;
    $s = substr($s, 0, 60) . '...(' . length($s) . ' bytes)'
        if length($s) > 70;
    return esc($s);
}

sub slurp {
    my $f = shift;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    my $d = <$fh>;
    return $d;
}

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $d;
    close $fh or die "$f: $!";
}

# run node on a script with the library's file name as its argument,
# feeding it lines and returning its output lines
sub run_node {
    my ($script, @lines) = @_;
    spew("$dir/helper.mjs", $script);
    spew("$dir/helper.in", join('', map { "$_\n" } @lines));
    my $rc = system("node '$dir/helper.mjs' '$LIB' < '$dir/helper.in'"
                    . " > '$dir/helper.out' 2> '$dir/helper.err'");
    die "node helper failed ($rc): " . slurp("$dir/helper.err") if $rc;
    return split /\n/, slurp("$dir/helper.out");
}

# run the command line tool; returns (exit status, stdout, stderr)
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
        kill 'KILL', $nginx_pid if kill 0, $nginx_pid;
        waitpid $nginx_pid, 0;
    }
}

sub start_nginx {
    if (IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT")) {
        BAIL_OUT("something already listens on 127.0.0.1:$PORT");
    }

    mkdir "$dir/logs";
    spew("$dir/nginx.conf", <<"CONF");
daemon off;
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
    merge_slashes on;

    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;

        location / {
            return 200 "\$uri";
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

    for (1 .. 100) {
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

# send one request target, return (status, body)
sub ask_nginx {
    my $target = shift;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$PORT",
                                  Timeout => 5)
        or die "connect: $!";
    binmode $s;
    print $s "GET $target HTTP/1.0\r\n\r\n";

    my $resp = '';
    local $SIG{ALRM} = sub { die "nginx did not answer\n" };
    alarm 10;
    while (1) {
        my $n = sysread $s, my $buf, 65536;
        die "read: $!" unless defined $n;
        last if $n == 0;
        $resp .= $buf;
    }
    alarm 0;
    close $s;

    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.[01] (\d{3})};
    return ($status // 0, $body // '');
}

###########################################################################
# the request targets

my @targets = (
    # plain
    '/', '/a', '/a/', '/a/b', '/a/b/', '/index.html', '/a.b/c.d',

    # dot segments
    '/.', '/..', '/./', '/../', '/a/.', '/a/..', '/a/./', '/a/../',
    '/a/./b', '/a/../b', '/a/b/../c', '/a/b/../../c', '/a/b/../../../c',
    '/a/b/..', '/a/b/.', '/a/b/../..', '/a/b/../../..', '/./a', '/../a',
    '/a/.b', '/a/..b', '/a/b.', '/a/b..', '/a/...', '/a/.../b',
    '/a/..../b', '/a./b', '/a../b', '/.a/b', '/..a/../b', '/a/./../b',
    '/a/b/./../c/.', '/a/b/c/../../..', '/a/b/c/../../../..',
    '/./.', '/./..', '/a/./.', '/a/././..',

    # slashes
    '//', '///', '//a', '//a///b', '/a//b', '/a//', '/a///', '//..',
    '//a/..', '/a//..', '/a//../b', '/a/.//b', '/a/..//b', '//./a',
    '/a/b//../c', '/a/b/.//./c',

    # percent-encoded dots and slashes
    '/%2e', '/%2e%2e', '/%2e/', '/%2E%2E/', '/a/%2e', '/a/%2e%2e',
    '/a/%2E', '/a/.%2e', '/a/%2e.', '/a/%2e%2e/b', '/a/%2E%2E/b',
    '/a/.%2E/b', '/a/%2e%2e%2f', '/a/%2e%2e%2fb', '/a/b/%2e%2e%2f%2e%2e',
    '/a/b/%2e%2e%2f%2e%2e%2f%2e%2e',
    '/a%2Fb', '/a%2fb', '/a%2F%2Fb', '/a%2F..%2Fb', '/a%2F..', '/%2F',
    '/%2F%2F', '/%2Fa', '/a%2F%2E%2E%2Fb', '/a%2F%2E%2E', '/a%2F.%2Fb',
    '/a/%2F/b', '/%2F..', '/a%2F%2E',

    # decoded "%", "#", "?"
    '/%25', '/%2525', '/a%25b', '/.%25', '/%25/..', '/%23', '/a%23b',
    '/.%23', '/%3F', '/%3f', '/a%3Fb=c', '/.%3F', '/..%3F', '/%2e%3F',
    '/%3F/..', '/%2e%2e%3F', '/a/..%3f', '/a%3F?b', '/%25%32%46',
    '/%252e%252e',

    # bad escapes and NUL
    '/%00', '/a%00b', '/%0', '/%', '/a%', '/a%2', '/%zz', '/%g0',
    '/%0g', '/%%', '/%%41', '/a%?x', '/a%2?x', '/a/%2', '/%2%2e',

    # other escapes
    '/%41', '/%4a%4B', '/%4A%4b', '/%7e', '/%7E', '/%20', '/a%20b',
    '/%0a', '/%0d%0a', '/%09', '/%7f', '/%80', '/%ff', '/%FF', '/%c3%a9',
    '/%C3%A9', '/%2b', '/%2B', '/%3b', '/%26', '/%3D', '/%5c', '/%5C..%5C',
    '/a/%5c../b', '/%01', '/%1f', '/a%2e%2e', '/a/b%2e/c',

    # raw characters
    '/a+b', '/a;b', '/a;b/../c', '/..;/a', '/a/..;/b', '/a\\b',
    '/a\\..\\b', '/\\..', '/a/\\../b', '/a\\', '/~user', '/a:b', '/a@b',
    "/a!b\$&'()*,=", '/a[b]', '/a{b}|^`', '/a"b', '/a<b>', '/a b',
    "/a\tb", "/a\x01b", "/a\x7fb", "/\x{c3}\x{a9}", "/\xff", "/\x80\x81",
    "/a/\xc3\xa9/..", "/\xe6\x97\xa5\xe6\x9c\xac/x",

    # query strings and fragments
    '/a?b', '/a/../b?c', '/a?b/../c', '/a/.?x', '/a/..?x', '/?', '/a?',
    '/a??', '/a?%zz', '/a/./b?%zz', '/a%2e?x', '/a/%2e%2e?x', '/..?x',
    '/a?b#c', '/a#b', '/a/.#x', '/a/..#x', '/a%23#b', '/#', '/..#',
    '/a?x=1&y=%00', "/a?b\x01", '/a?b c', '/a?b=/../c', '//?x',

    # absolute form
    'http://localhost/a/../b', 'http://localhost', 'http://localhost?x',
    'http://localhost:8080//a/./b', 'http://localhost/..',
    'http://localhost/%2e%2e/x',

    # long ones
    '/' . ('a' x 5000),
    '/' . join('/', ('seg') x 1000),
    '/' . ('a/' x 2000) . ('../' x 1999),
    '/' . ('a/' x 2000) . ('../' x 2001),
    '/' . ('x/../' x 1000) . 'y',
    '/' . ('/' x 3000) . 'z',
    '/' . ('%41' x 2000),
    '/' . ('%2e%2e%2f' x 3),
    '/' . ('b/' x 500) . ('%2e%2e%2F' x 500) . 'c',
);

# fuzz, from a fixed seed, with a generator of its own (the same on every
# machine)
{
    my @pieces = ('/', '/', '/', '.', '.', '..', 'a', 'b', 'xyz', '%2e',
        '%2E', '%2f', '%2F', '%25', '%23', '%3f', '%3F', '%00', '%',
        '%z', '%4', '%41', '%c3%a9', "\xc3\xa9", "\xff", '+', ';', '&',
        '=', '~', '\\', '%5c', '%20', '%0a', '?', '#', '//', '/./',
        '/../', '%2e%2e', '%2f%2e%2e%2f');
    my $seed = 20240519;
    my $rand = sub {
        $seed = ($seed * 1103515245 + 12345) & 0x7fffffff;
        return $seed % $_[0];
    };
    for (1 .. 200) {
        my $t = '/';
        my $n = 1 + $rand->(14);
        $t .= $pieces[$rand->(scalar @pieces)] for 1 .. $n;
        push @targets, $t;
    }
}

###########################################################################
# 1. normalizePath() against nginx's $uri

start_nginx();

my @tool = run_node(<<'JS', map { unpack 'H*', $_ } @targets);
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const lib = await import(pathToFileURL(process.argv[2]).href);
const lines = readFileSync(0, 'latin1').split('\n').filter((l) => l !== '');
const out = [];
for (const hex of lines) {
    const t = Buffer.from(hex, 'hex');
    try {
        const { path } = lib.splitTarget(t);
        out.push('OK ' + lib.normalizePath(path).toString('hex'));
    } catch (e) {
        if (!(e instanceof lib.DigestError)) throw e;
        out.push('ERR ' + e.message);
    }
}
process.stdout.write(out.join('\n') + '\n');
JS

is scalar(@tool), scalar(@targets), 'one answer of the tool per target';

my ($agreed_ok, $agreed_refused) = (0, 0);

for my $i (0 .. $#targets) {
    my $t = $targets[$i];
    my ($status, $body) = ask_nginx($t);
    my $mine = $tool[$i] // 'ERR (none)';

    if ($status == 200) {
        my $got = $mine =~ /^OK (\S*)$/ ? pack('H*', $1) : "<$mine>";
        is esc($got), esc($body), 'path of ' . show($t) . ' is $uri';
        $agreed_ok++ if $got eq $body;

    } elsif ($status == 400) {
        like $mine, qr/^ERR /,
            'tool refuses ' . show($t) . ' as nginx does (400)';
        $agreed_refused++ if $mine =~ /^ERR /;

    } else {
        fail 'nginx answered ' . show($t) . " with $status";
    }
}

diag "nginx and the tool agree on $agreed_ok paths and refuse"
    . " $agreed_refused targets alike, out of " . scalar(@targets);

###########################################################################
# 2. the canonical encoding

my $EMPTY = sha256_hex('');
my $V2    = '17:ngx-ciba-digest/2,';
my $ALL   = "${V2}21:method,path,args,body,";

# each: [ name, options for canonical(), the C written out by hand ]
my $bin_body = "\x00\xff\x00abc\x80\r\n\x00";

my @cases = (
    [ 'GET, no body, default covers, no extras, no bound headers',
      { action => 'read', method => 'GET', url => '/a?b=1&a=2' },
      "${ALL}4:read,3:GET,2:/a,1:2,3:a=2,3:b=1,64:$EMPTY,1:0,1:0," ],

    [ 'args: sorted stably by name key, pieces kept as sent (keep)',
      { action => 'a', method => 'GET', url => '/x?b&a&&ab&A=1&a=&&',
        duplicateArgs => 'keep' },
      "${ALL}1:a,3:GET,2:/x,1:5,1:a,3:A=1,2:a=,2:ab,1:b,64:$EMPTY,1:0,1:0," ],

    [ 'args: "+" is a space, %XX decoded in either case, A-Z lowercased',
      { action => 'a', method => 'GET', duplicateArgs => 'keep',
        url => '/x?b%20c=1&zz=0&B+C=2&%62%2Bc=3&b%20C=4' },
      "${ALL}1:a,3:GET,2:/x,1:5,7:b%20c=1,5:B+C=2,7:b%20C=4,9:%62%2Bc=3,"
      . "4:zz=0,64:$EMPTY,1:0,1:0," ],

    [ 'args: the key ends at the first raw "=" (a%3D is "a=")',
      { action => 'a', method => 'GET', url => '/x?a%3D=2&a=1&a%3d',
        duplicateArgs => 'keep' },
      "${ALL}1:a,3:GET,2:/x,1:3,3:a=1,6:a%3D=2,4:a%3d,64:$EMPTY,1:0,1:0," ],

    [ 'args: not the bytewise order of the pieces (version 1)',
      { action => 'a', method => 'GET', url => '/x?b=1&B2=2&a=3&%5F=4' },
      "${ALL}1:a,3:GET,2:/x,1:4,5:%5F=4,3:a=3,3:b=1,4:B2=2,"
      . "64:$EMPTY,1:0,1:0," ],

    [ 'args: decoded high bytes compare as unsigned bytes',
      { action => 'a', method => 'GET',
        url => "/x?%C3%A9=1&\xc3\xa8=2&~=3&%FF=4&%e0=5" },
      "${ALL}1:a,3:GET,2:/x,1:5,3:~=3,4:\xc3\xa8=2,8:%C3%A9=1,5:%e0=5,"
      . "5:%FF=4,64:$EMPTY,1:0,1:0," ],

    [ 'args: a "%" without two hex digits stays; the empty name',
      { action => 'a', method => 'GET', url => '/x?%4=1&=e&%zz&%%41' },
      "${ALL}1:a,3:GET,2:/x,1:4,2:=e,4:%4=1,4:%%41,3:%zz,"
      . "64:$EMPTY,1:0,1:0," ],

    [ 'args: "%ZZ" and "%zz" have one key (keep: request order)',
      { action => 'a', method => 'GET', url => '/x?%ZZ=2&%zz=1',
        duplicateArgs => 'keep' },
      "${ALL}1:a,3:GET,2:/x,1:2,5:%ZZ=2,5:%zz=1,64:$EMPTY,1:0,1:0," ],

    [ 'args: keep, values of one name in request order',
      { action => 'a', method => 'GET', duplicateArgs => 'keep',
        url => '/x?amount=3000&AMOUNT=1&b&amount=30' },
      "${ALL}1:a,3:GET,2:/x,1:4,11:amount=3000,8:AMOUNT=1,9:amount=30,1:b,"
      . "64:$EMPTY,1:0,1:0," ],

    [ 'args: "&" only, and a "?" in the query',
      { action => 'a', method => 'GET', url => '/x?&&&' },
      "${ALL}1:a,3:GET,2:/x,1:0,64:$EMPTY,1:0,1:0," ],
    [ 'args: a second "?" belongs to the query',
      { action => 'a', method => 'GET', url => '/x?a=?&b=c?d' },
      "${ALL}1:a,3:GET,2:/x,1:2,3:a=?,5:b=c?d,64:$EMPTY,1:0,1:0," ],

    [ 'canonical path: digested as sent, escapes not decoded',
      { action => 'a', method => 'GET', url => "/caf%C3%A9/%FF/a+b;c=d" },
      "${ALL}1:a,3:GET,22:/caf%C3%A9/%FF/a+b;c=d,1:0,64:$EMPTY,1:0,1:0," ],
    [ 'canonical path: a trailing "/", and dots inside names',
      { action => 'a', method => 'GET', url => "/.a/b./.../" },
      "${ALL}1:a,3:GET,11:/.a/b./.../,1:0,64:$EMPTY,1:0,1:0," ],

    [ 'normalize: $uri, the part named "uri"',
      { action => 'a', method => 'DELETE', url => '/a/./b/../c%2Fd//e',
        pathMode => 'normalize' },
      "${V2}20:method,uri,args,body,1:a,6:DELETE,8:/a/c/d/e,1:0,"
      . "64:$EMPTY,1:0,1:0," ],
    [ 'normalize: decoded high bytes',
      { action => 'a', method => 'GET', url => '/caf%C3%A9/%ff',
        pathMode => 'normalize' },
      "${V2}20:method,uri,args,body,1:a,3:GET,8:/caf\xc3\xa9/\xff,1:0,"
      . "64:$EMPTY,1:0,1:0," ],
    [ 'normalize, covers path only',
      { action => 'a', method => 'GET', url => '/p//q', covers => 'path',
        pathMode => 'normalize' },
      "${V2}3:uri,1:a,4:/p/q,1:0,1:0," ],

    [ 'binary body with NUL and high bytes',
      { action => 'upload', method => 'PUT', url => '/f',
        body => $bin_body },
      "${ALL}6:upload,3:PUT,2:/f,1:0,64:" . sha256_hex($bin_body)
      . ',1:0,1:0,' ],

    [ 'absolute URL: authority and fragment left out',
      { action => 'a', method => 'GET',
        url => 'https://example.com:8443/p/q?x=1#frag&y=2' },
      "${ALL}1:a,3:GET,4:/p/q,1:1,3:x=1,64:$EMPTY,1:0,1:0," ],
    [ 'absolute URL with an empty path is "/"',
      { action => 'a', method => 'GET', url => 'http://h?x' },
      "${ALL}1:a,3:GET,1:/,1:1,1:x,64:$EMPTY,1:0,1:0," ],
    [ 'wire target: the query ends at "#"',
      { action => 'a', method => 'GET', target => '/p?b=1#c&a=2' },
      "${ALL}1:a,3:GET,2:/p,1:1,3:b=1,64:$EMPTY,1:0,1:0," ],

    [ 'covers: path only',
      { action => 'a', method => 'POST', url => '/p?x=1', body => 'zz',
        covers => 'path' },
      "${V2}4:path,1:a,2:/p,1:0,1:0," ],
    [ 'covers: given out of order, encoded in the fixed order',
      { action => 'a', method => 'POST', url => '/p?x=1', body => 'zz',
        covers => 'body,method' },
      "${V2}11:method,body,1:a,4:POST,64:" . sha256_hex('zz') . ',1:0,1:0,' ],
    [ 'covers: args only, no query',
      { action => 'a', method => 'GET', url => '/p', covers => 'args' },
      "${V2}4:args,1:a,1:0,1:0,1:0," ],
    [ 'covers: method,path,args (no body)',
      { action => 'a', method => 'GET', url => '/p?b&a',
        covers => 'method,path,args' },
      "${V2}16:method,path,args,1:a,3:GET,2:/p,1:2,1:a,1:b,1:0,1:0," ],
    [ 'normalize: the path is not checked for canonical form',
      { action => 'a', method => 'GET', url => '/a//b/%2F/%41',
        covers => 'method,args', pathMode => 'normalize' },
      "${V2}11:method,args,1:a,3:GET,1:0,1:0,1:0," ],
    [ 'keep: repeated names are not refused, even when not covered',
      { action => 'a', method => 'GET', url => '/p?a=1&a=2',
        covers => 'method,path', duplicateArgs => 'keep' },
      "${V2}11:method,path,1:a,3:GET,2:/p,1:0,1:0," ],

    [ 'extras: in order, bytes as given, empty ones kept',
      { action => 'a', method => 'GET', url => '/p',
        extras => [ 'agent-7', '', 'a,b:c', "\x00\xfe" ] },
      "${ALL}1:a,3:GET,2:/p,1:0,64:$EMPTY,1:4,7:agent-7,0:,5:a,b:c,"
      . "2:\x00\xfe,1:0," ],
    [ 'extras: ten of them (a two digit count)',
      { action => 'a', method => 'GET', url => '/p', covers => 'method',
        extras => [ map { "e$_" } 0 .. 9 ] },
      "${V2}6:method,1:a,3:GET,2:10," . join('', map { "2:e$_," } 0 .. 9)
      . '1:0,' ],
    [ 'action and extras: UTF-8 bytes',
      { action => "r\xc3\xa9", method => 'GET', url => '/p',
        covers => 'method', extras => [ "\xe2\x82\xac" ] },
      "${V2}6:method,3:r\xc3\xa9,3:GET,1:1,3:\xe2\x82\xac,1:0," ],

    [ 'headers: configured order, lowercase names, request order of values',
      { action => 'a', method => 'GET', url => '/p', covers => 'method',
        bindHeaders => [ 'X-Agent-Id', 'X-Tag:repeated' ],
        headers => [ 'x-tag: b', 'X-Agent-Id:  id  ', 'Other: z',
                     'X-TAG:a', [ 'X-Tag', '' ] ] },
      "${V2}6:method,1:a,3:GET,1:0,1:2,10:x-agent-id,1:1,2:id,5:x-tag,1:3,"
      . "1:b,1:a,0:," ],
    [ 'headers: absent is a count of 0, empty a count of 1',
      { action => 'a', method => 'GET', url => '/p', covers => 'method',
        bindHeaders => [ 'x-absent', { name => 'X-Empty' } ],
        headers => [ 'X-Empty:' ] },
      "${V2}6:method,1:a,3:GET,1:0,1:2,8:x-absent,1:0,7:x-empty,1:1,0:," ],
    [ 'headers: spaces around a value go, a tab and inner spaces stay',
      { action => 'a', method => 'GET', url => '/p', covers => 'method',
        bindHeaders => [ 'X-A:repeated' ],
        headers => [ "X-A:  a  b  ", "X-A: \tc\t " ] },
      "${V2}6:method,1:a,3:GET,1:0,1:1,3:x-a,1:2,4:a  b,3:\tc\t," ],
    [ 'headers: a value with high bytes and netstring characters',
      { action => 'a', method => 'GET', url => '/p', covers => 'method',
        bindHeaders => [ 'X-A' ],
        headers => [ [ 'X-A', "1:\xc3\xa9,\xff" ] ] },
      "${V2}6:method,1:a,3:GET,1:0,1:1,3:x-a,1:1,6:1:\xc3\xa9,\xff," ],
);

# the worked example of the README and tools/DIGEST-EXAMPLE.md
my $ex_body = '{"order":"A17","amount":30,"currency":"EUR"}';
my $ex_c = "${ALL}6:refund,4:POST,13:/tools/refund,1:2,9:amount=30,"
    . '9:order=A17,64:' . sha256_hex($ex_body)
    . ',1:1,7:agent-7,1:1,10:x-agent-id,1:1,7:agent-7,';
push @cases, [ 'the README example',
    { action => 'refund', method => 'POST',
      url => '/tools/refund?order=A17&amount=30', body => $ex_body,
      extras => [ 'agent-7' ], bindHeaders => [ 'X-Agent-Id' ],
      headers => [ 'X-Agent-Id: agent-7' ] },
    $ex_c ];

# things canonical() must refuse, with the reason it gives
my @bad = (
    [ 'usage', 'unknown covered part', { action => 'a', method => 'GET',
      url => '/', covers => 'method,query' } ],
    [ 'usage', 'part covered twice', { action => 'a', method => 'GET',
      url => '/', covers => 'path,path' } ],
    [ 'usage', 'no action', { method => 'GET', url => '/' } ],
    [ 'usage', 'empty action', { action => '', method => 'GET',
      url => '/' } ],
    [ 'usage', 'method missing but covered', { action => 'a', url => '/' } ],
    [ 'usage', 'relative path', { action => 'a', method => 'GET',
      url => 'a/b' } ],
    [ 'usage', 'bad pathMode', { action => 'a', method => 'GET', url => '/',
      pathMode => 'raw' } ],
    [ 'usage', 'bad duplicateArgs', { action => 'a', method => 'GET',
      url => '/', duplicateArgs => 'first' } ],
    [ 'usage', 'bound header name with a space', { action => 'a',
      method => 'GET', url => '/', bindHeaders => [ 'X A' ] } ],
    [ 'usage', 'bound header with a word other than repeated', {
      action => 'a', method => 'GET', url => '/',
      bindHeaders => [ 'X-A:repeat' ] } ],
    [ 'usage', 'header bound twice', { action => 'a', method => 'GET',
      url => '/', bindHeaders => [ 'X-A', 'x-a:repeated' ] } ],
    [ 'usage', 'header field without ":"', { action => 'a',
      method => 'GET', url => '/', headers => [ 'X-A agent' ] } ],
    [ 'usage', 'header value with a line feed', { action => 'a',
      method => 'GET', url => '/', headers => [ "X-A: a\nb" ] } ],

    [ 'invalid_request', 'lower-case method', { action => 'a',
      method => 'post', url => '/' } ],
    [ 'invalid_request', 'path above the root', { action => 'a',
      method => 'GET', url => '/a/../..' } ],
    [ 'invalid_request', 'path above the root, even when not covered', {
      action => 'a', method => 'GET', url => '/..', covers => 'method' } ],
    [ 'invalid_request', '%00 in the path, canonical mode', { action => 'a',
      method => 'GET', url => '/a%00' } ],
    [ 'invalid_request', 'bad escape in the path', { action => 'a',
      method => 'GET', url => '/a%zz' } ],
    [ 'invalid_request', 'space in the query', { action => 'a',
      method => 'GET', url => '/a?b c' } ],
    [ 'invalid_request', 'control byte in the query', { action => 'a',
      method => 'GET', url => "/a?b\x0a" } ],

    (map { [ 'noncanonical_path', "path $_", { action => 'a',
             method => 'GET', url => $_ } ] }
        '/a//b', '//', '/a//', '/a/./b', '/a/.', '/.', '/a/../b', '/a/..',
        '/a%2Fb', '/a%2fb', '/%41', '/%7E', '/%2E', '/%5F', '/%30',
        '/%c3%A9', '/%C3%a9', "/caf\xc3\xa9", "/\xff", '/a\\b', '/a"b',
        '/a[b]', '/a|b'),
    [ 'noncanonical_path', 'wire target with a raw "#"', { action => 'a',
      method => 'GET', target => '/a#b' } ],
    [ 'noncanonical_path', 'wire target in absolute form without a path', {
      action => 'a', method => 'GET', target => 'http://h?x=1' } ],
    [ 'noncanonical_path', 'even when the path is not covered', {
      action => 'a', method => 'GET', url => '/a//b', covers => 'args' } ],
    [ 'noncanonical_path', 'before the args are looked at', { action => 'a',
      method => 'GET', url => '/a//b?a=1&a=2' } ],

    (map { [ 'duplicate_arg', "query $_", { action => 'a', method => 'GET',
             url => "/p?$_" } ] }
        'a=1&a=2', 'a=1&a=1', 'amount=30&amount=3000', 'AMOUNT=1&amount=5000',
        'amount=1&%61mount=2', 'a=1&%41=2', 'a+b&a%20b', 'a%2b&a%2B=1',
        '=1&=2', 'x&x', 'x&x=', '%zz&%ZZ', '%C3%A9=1&%c3%a9'),
    [ 'duplicate_arg', 'even when the args are not covered', {
      action => 'a', method => 'GET', url => '/p?a&A',
      covers => 'method,path,body' } ],
    [ 'duplicate_arg', 'before the headers are looked at', { action => 'a',
      method => 'GET', url => '/p?a&a', bindHeaders => [ 'X-A' ],
      headers => [ 'X-A: 1', 'X-A: 2' ] } ],

    [ 'duplicate_header', 'two fields of a bound header', { action => 'a',
      method => 'GET', url => '/', bindHeaders => [ 'X-Agent-Id' ],
      headers => [ 'X-Agent-Id: a', 'x-agent-id: a' ] } ],
    [ 'duplicate_header', 'two empty fields', { action => 'a',
      method => 'GET', url => '/', bindHeaders => [ 'X-Tag:repeated',
      'X-A' ], headers => [ 'X-A:', 'X-A:' ] } ],
    [ 'duplicate_header', 'before the action is looked at', {
      action => "\xff", method => 'GET', url => '/',
      bindHeaders => [ 'X-A' ], headers => [ 'X-A:', 'X-A:' ] } ],

    (map { [ 'not_utf8', 'action ' . esc($_), { action => $_,
             method => 'GET', url => '/' } ] }
        "\xff", "r\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"),
);

sub to_json_case {
    my $o = shift;
    my %j;
    for my $k (qw(action method url target body covers pathMode
                  duplicateArgs))
    {
        $j{"${k}Hex"} = unpack 'H*', $o->{$k} if defined $o->{$k};
    }
    $j{extrasHex} = [ map { unpack 'H*', $_ } @{ $o->{extras} } ]
        if $o->{extras};
    $j{bindHeaders} = $o->{bindHeaders} if $o->{bindHeaders};
    $j{headersHex} = [ map { ref $_ ? [ map { unpack 'H*', $_ } @$_ ]
                                    : unpack 'H*', $_ } @{ $o->{headers} } ]
        if $o->{headers};
    return JSON::PP->new->canonical->encode(\%j);
}

my @json_cases = ((map { to_json_case($_->[1]) } @cases),
                  (map { to_json_case($_->[2]) } @bad));
my @canon = run_node(<<'JS', @json_cases);
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const lib = await import(pathToFileURL(process.argv[2]).href);
const lines = readFileSync(0, 'latin1').split('\n').filter((l) => l !== '');
const hx = (h) => Buffer.from(h, 'hex');
const out = [];
for (const line of lines) {
    const j = JSON.parse(line);
    const o = {};
    for (const k of ['action', 'method', 'url', 'target', 'body']) {
        if (j[k + 'Hex'] !== undefined) o[k] = hx(j[k + 'Hex']);
    }
    if (o.method) o.method = o.method.toString('latin1');
    for (const k of ['covers', 'pathMode', 'duplicateArgs']) {
        if (j[k + 'Hex'] !== undefined) o[k] = hx(j[k + 'Hex']).toString();
    }
    if (j.extrasHex) o.extras = j.extrasHex.map(hx);
    if (j.bindHeaders) o.bindHeaders = j.bindHeaders;
    if (j.headersHex) {
        o.headers = j.headersHex.map((h) => (Array.isArray(h)
            ? [hx(h[0]).toString('latin1'), hx(h[1])] : hx(h)));
    }
    try {
        const c = lib.canonical(o);
        out.push('OK ' + c.toString('hex') + ' ' + lib.digest(o));
    } catch (e) {
        if (!(e instanceof lib.DigestError)) throw e;
        out.push('ERR ' + (e.reason ?? 'usage') + ' ' + e.message);
    }
}
process.stdout.write(out.join('\n') + '\n');
JS

for my $case (@cases) {
    my ($name, undef, $c) = @$case;
    my $r = shift @canon // 'ERR (none)';
    my ($hex, $dg) = $r =~ /^OK (\S+) (\S+)$/;

    is esc(defined $hex ? pack('H*', $hex) : "<$r>"), esc($c),
        "C: $name";
    is $dg, b64url($c), "digest: $name";
    like $dg // '', qr/^[A-Za-z0-9_-]{43}$/, "digest is 43 base64url: $name";
}

for my $case (@bad) {
    my ($reason, $name) = @$case;
    my $r = shift @canon // '(none)';
    like $r, qr/^ERR \Q$reason\E \S/,
        'canonical() refuses (' . show($reason) . '): ' . show($name);
}

# digest() of known vectors: SHA-256 of "abc" and of ""
{
    my @r = run_node(<<'JS', 'abc', '');
import { pathToFileURL } from 'node:url';
const lib = await import(pathToFileURL(process.argv[2]).href);
process.stdout.write(lib.digest(Buffer.from('abc')) + '\n'
    + lib.digest(Buffer.alloc(0)) + '\n');
JS
    is $r[0], 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0',
        'digest(C) of "abc" is the SHA-256 test vector, base64url';
    is $r[1], '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU',
        'digest(C) of "" is SHA-256 of nothing, base64url';
    is $r[0], b64url('abc'), 'and Digest::SHA agrees';
}

# the README's worked example, independently of the tool
is length($ex_c), 221, 'the README example: C is 221 bytes';
is b64url($ex_c), 'jf_GfV_YmfCjjbjwrPySqKZ_ID4za3ntE-TCYUA_rjM',
    'the README example: its digest';

###########################################################################
# 3. the command line

{
    my @ex = ('--action', 'refund', '--method', 'POST', '--url',
        '/tools/refund?order=A17&amount=30', '--body', $ex_body, '--extra',
        'agent-7', '--bind-header', 'X-Agent-Id', '--header',
        'X-Agent-Id: agent-7');
    my ($rc, $out, $err) = run_tool(@ex, '--canonical');
    is $rc, 0, 'cli: README example exits 0';
    is $out, b64url($ex_c) . "\n", 'cli: README example digest';
    is $err, "$ex_c\n", 'cli: --canonical prints C on stderr';
    diag 'README example: ' . b64url($ex_c);

    ($rc, $out) = run_tool('--action', 'refund', '--url',
        'https://api.example.com/tools/refund?order=A17&amount=30#x',
        '--body', $ex_body, '--extra', 'agent-7', '--header',
        'x-agent-id:agent-7', '--bind-header', 'x-AGENT-id');
    is $out, b64url($ex_c) . "\n",
        'cli: absolute URL, method defaults to POST with a body, '
        . 'header names in any case';

    ($rc, $out) = run_tool('--action=refund', '--method=POST',
        '--url=/tools/refund?amount=30&order=A17', "--body=$ex_body",
        '--extra=agent-7', '--bind-header=X-Agent-Id',
        '--header=X-Agent-Id:   agent-7  ');
    is $out, b64url($ex_c) . "\n",
        'cli: --opt=value form, args order and spaces around the value do '
        . 'not matter';

    ($rc, $out, $err) = run_tool(@ex, '--json');
    my $j = eval { JSON::PP->new->decode($out) } // {};
    is $rc, 0, 'cli: --json exits 0';
    is $j->{digest}, b64url($ex_c), 'cli: --json digest';
    is $j->{canonical}, $ex_c, 'cli: --json canonical';
    is $j->{length}, 221, 'cli: --json length';
    is $j->{covers}, 'method,path,args,body', 'cli: --json covers';
    is $j->{version}, 'ngx-ciba-digest/2', 'cli: --json version';

    ($rc, $out, $err) = run_tool(@ex, '--header', 'X-Other: 1');
    is $out, b64url($ex_c) . "\n", 'cli: a header not bound does not count';
    like $err, qr/note: header "x-other" is not bound/,
        'cli: and a note says so';

    spew("$dir/body.bin", $bin_body);
    my $c = "${ALL}6:upload,3:PUT,2:/f,1:0,64:" . sha256_hex($bin_body)
        . ',1:2,2:x1,2:x2,1:0,';
    ($rc, $out, $err) = run_tool('--action', 'upload', '--method', 'PUT',
        '--url', '/f', '--body-file', "$dir/body.bin", '--extra', 'x1',
        '--extra', 'x2', '--canonical');
    is $out, b64url($c) . "\n", 'cli: binary --body-file, two extras';
    (my $esc = $c) =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    is $err, "$esc\n", 'cli: --canonical escapes non-printable bytes';

    $c = "${ALL}4:list,3:GET,2:/l,1:1,5:p=%2F,64:$EMPTY,1:0,1:0,";
    ($rc, $out) = run_tool('--action', 'list', '--url', '/l?p=%2F');
    is $out, b64url($c) . "\n", 'cli: method defaults to GET, no body';

    $c = "${V2}9:path,args,4:list,2:/l,1:0,1:0,1:0,";
    ($rc, $out) = run_tool('--action', 'list', '--url', '/l',
        '--covers', 'args,path');
    is $out, b64url($c) . "\n", 'cli: --covers';

    $c = "${V2}8:uri,args,4:list,4:/a/b,1:0,1:0,1:0,";
    ($rc, $out) = run_tool('--action', 'list', '--url', '/a//x/../b',
        '--covers', 'args,path', '--path-mode', 'normalize');
    is $out, b64url($c) . "\n", 'cli: --path-mode normalize';

    $c = "${V2}4:args,4:list,1:3,11:amount=3000,9:amount=30,1:b,1:0,1:0,";
    ($rc, $out) = run_tool('--action', 'list', '--url',
        '/l?b&amount=3000&amount=30', '--covers', 'args',
        '--duplicate-args', 'keep');
    is $out, b64url($c) . "\n", 'cli: --duplicate-args keep';

    $c = "${V2}6:method,4:list,3:GET,1:0,1:2,3:x-b,1:2,1:2,1:3,3:x-a,1:0,";
    ($rc, $out) = run_tool('--action', 'list', '--url', '/l', '--covers',
        'method', '--bind-header', 'X-B:repeated', '--bind-header', 'X-A',
        '--header', 'X-B: 2', '--header', 'x-b: 3');
    is $out, b64url($c) . "\n", 'cli: --bind-header :repeated, absent header';

    ($rc, $out) = run_tool('--help');
    is $rc, 0, 'cli: --help exits 0';
    like $out, qr/^Usage: ciba-digest/, 'cli: --help prints usage';
    like $out, qr/--bind-header/, 'cli: --help tells of --bind-header';

    my @errors = (
        [ 2, 'no arguments' ],
        [ 2, 'no --url', '--action', 'a' ],
        [ 2, 'no --action', '--url', '/' ],
        [ 2, 'unknown option', '--action', 'a', '--url', '/', '--frob' ],
        [ 2, 'option without value', '--action', 'a', '--url' ],
        [ 2, '".." above the root', '--action', 'a', '--url', '/a/../..' ],
        [ 2, '"%00"', '--action', 'a', '--url', '/a%00b' ],
        [ 2, 'bad escape', '--action', 'a', '--url', '/a%zz' ],
        [ 2, 'unreadable body file', '--action', 'a', '--url', '/',
          '--body-file', "$dir/no-such-file" ],
        [ 2, 'body file is a directory', '--action', 'a', '--url', '/',
          '--body-file', $dir ],
        [ 2, '--body and --body-file', '--action', 'a', '--url', '/',
          '--body', 'x', '--body-file', "$dir/body.bin" ],
        [ 2, 'unknown covered part', '--action', 'a', '--url', '/',
          '--covers', 'method,host' ],
        [ 2, 'lower-case method', '--action', 'a', '--url', '/',
          '--method', 'get' ],
        [ 2, 'relative URL', '--action', 'a', '--url', 'tools/x' ],
        [ 2, 'space in URL', '--action', 'a', '--url', '/a b' ],
        [ 2, '--url twice', '--action', 'a', '--url', '/', '--url', '/b' ],
        [ 2, 'bad --path-mode', '--action', 'a', '--url', '/',
          '--path-mode', 'raw' ],
        [ 2, 'bad --duplicate-args', '--action', 'a', '--url', '/',
          '--duplicate-args', 'last' ],
        [ 2, 'bad --bind-header', '--action', 'a', '--url', '/',
          '--bind-header', 'X-A:twice' ],
        [ 2, '--header without ":"', '--action', 'a', '--url', '/',
          '--header', 'X-A' ],
        [ 3, '"//" in the path', '--action', 'a', '--url', '/a//b' ],
        [ 3, '"%2F" in the path', '--action', 'a', '--url',
          '/d/files/a%2Fb' ],
        [ 3, '"%41" in the path', '--action', 'a', '--url', '/%41' ],
        [ 3, 'lower-case hex in the path', '--action', 'a', '--url',
          '/c/%ff%fe' ],
        [ 3, 'a dot segment', '--action', 'a', '--url', '/a/./b' ],
        [ 3, 'a raw "\xc3\xa9" in the path', '--action', 'a', '--url',
          "/caf\xc3\xa9" ],
        [ 4, 'amount twice', '--action', 'a', '--url',
          '/t?amount=30&amount=3000' ],
        [ 4, 'AMOUNT and amount', '--action', 'a', '--url',
          '/t?AMOUNT=1&amount=5000' ],
        [ 5, 'a bound header twice', '--action', 'a', '--url', '/t',
          '--bind-header', 'X-A', '--header', 'X-A: 1', '--header',
          'x-a: 1' ],
        [ 3, '"//" in the path, the path not covered', '--action', 'a',
          '--url', '/a//b', '--covers', 'body' ],
        [ 4, 'amount twice, the args not covered', '--action', 'a',
          '--url', '/t?amount=1&amount=2', '--covers', 'path' ],
    );
    for my $e (@errors) {
        my ($want, $name, @args) = @$e;
        ($rc, $out, $err) = run_tool(@args);
        is $rc, $want, "cli: exit $want on $name";
        is $out, '', "cli: nothing on stdout on $name";
        like $err, qr/^ciba-digest: \S/, "cli: a message on stderr on $name";
    }

    ($rc, $out) = run_tool('--action', 'a', '--url', '/a//b', '--json');
    $j = eval { JSON::PP->new->decode($out) } // {};
    is $rc, 3, 'cli: --json on a refusal, the exit status stays';
    is $j->{reason}, 'noncanonical_path', 'cli: --json gives the reason';
    like $j->{error} // '', qr/not canonical/, 'cli: --json gives the message';
}

done_testing();
