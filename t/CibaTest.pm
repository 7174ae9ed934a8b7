package CibaTest;

# Shared helpers for the ngx_http_ciba_module test suite.
#
# - keys():    generates, once per run, the test keys (PEM and JWKS) under
#              $ENV{TEST_NGINX_CIBA_KEYS} (default t/servroot-keys), and
#              exports that directory so config sections can name
#              $TEST_NGINX_CIBA_KEYS/ec256.pub and so on;
# - digest():  an independent Perl implementation of the action digest
#              (README.md, "The action digest");
# - mint():    approval tokens minted with Crypt::JWT (not with the
#              module's own code), bound to a request by default;
# - b64u(), raw_jwt(): hand-built tokens for malformed-input tests;
# - preprocessor(): an add_block_preprocessor hook that turns a
#              "--- mint" section (a Perl hash expression) into an
#              Approval-Token header minted right before the block runs,
#              so its iat is not older than the nginx that checks it;
#              it also exports $TEST_NGINX_CIBA_STATE, a fresh "warm" state
#              file (see warm_state()) for "ciba_zone ... state=".
# - http_config(), merge_config(): the http{} part the data-driven files
#              share (zone with a warm state file, issuer, audience, keys,
#              an access log into error.log) and the merge of it, a
#              default server config and the "upstream" location into a
#              block (see their comments);
# - as_locations(): nginx's internal locations that proxy the module's
#              backchannel and token subrequests to an AS (t/MockAS.pm and
#              t/DevAS.pm give them for their servers);
# - location(), token_location(): a protected location for plain-Perl
#              files, one that takes approval tokens as mint() makes them;
# - node_ok(): whether node >= 20 runs (the mock AS, the development AS
#              and the tools need it);
# - warm_state(): writes a state file whose zone started an hour ago and
#              holds no records, as a clean shutdown of a long-running
#              nginx leaves it: a block then starts like a server that has
#              run for a while, not like a fresh start (after which tokens
#              issued before the start plus the leeway are refused).
#
# Keys generated: ec256 (P-256, kid ec1), ec384 (ec2), ec521 (ec3),
# rsa (2048, kid rsa1), ed (Ed25519, kid ed1), and "other" keys of each
# type that no configuration trusts: ec256-other, rsa-other, ed-other.
# jwks.json holds ec1, rsa1 and ed1 as a JWK set.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256 sha256_hex);
use File::Path qw(make_path);
use MIME::Base64 qw(encode_base64url);
use JSON::PP ();
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use Crypt::PK::Ed25519;

use Exporter 'import';
our @EXPORT_OK = qw(keys_dir digest mint b64u raw_jwt preprocessor
                    key_pem jti warm_state http_config merge_config
                    as_locations location token_location node_ok);

my $Seq = 0;
my %Keys;

sub keys_dir {
    my $dir = $ENV{TEST_NGINX_CIBA_KEYS} || 't/servroot-keys';
    make_path($dir) unless -d $dir;
    $dir = abs_path($dir);
    $ENV{TEST_NGINX_CIBA_KEYS} = $dir;

    my %spec = (
        'ec256'       => [ 'EC', 'P-256', 'ec1' ],
        'ec384'       => [ 'EC', 'P-384', 'ec2' ],
        'ec521'       => [ 'EC', 'P-521', 'ec3' ],
        'rsa'         => [ 'RSA', 2048, 'rsa1' ],
        'ed'          => [ 'Ed25519', undef, 'ed1' ],
        'ec256-other' => [ 'EC', 'P-256', 'ec1' ],
        'rsa-other'   => [ 'RSA', 2048, 'rsa1' ],
        'ed-other'    => [ 'Ed25519', undef, 'ed1' ],
    );

    for my $name (sort keys %spec) {
        my ($type, $param, $kid) = @{ $spec{$name} };
        my $priv = "$dir/$name.key";
        my $pub  = "$dir/$name.pub";

        if (!-s $priv || !-s $pub) {
            my $pk;
            if ($type eq 'EC') {
                $pk = Crypt::PK::ECC->new;
                $pk->generate_key($param);
            } elsif ($type eq 'RSA') {
                $pk = Crypt::PK::RSA->new;
                $pk->generate_key($param / 8, 65537);
            } else {
                $pk = Crypt::PK::Ed25519->new;
                $pk->generate_key;
            }
            write_file("$priv.tmp", $pk->export_key_pem('private'));
            write_file("$pub.tmp", $pk->export_key_pem('public'));
            rename "$priv.tmp", $priv or die "rename $priv: $!";
            rename "$pub.tmp", $pub or die "rename $pub: $!";
        }

        $Keys{$name} = { type => $type, kid => $kid, priv => $priv,
                         pub => $pub };
    }

    my $jwks = "$dir/jwks.json";
    if (!-s $jwks) {
        my @keys;
        for my $name (qw(ec256 rsa ed)) {
            my $pk = load_key($name, 'pub');
            my $jwk = $pk->export_key_jwk('public', 1);
            $jwk->{kid} = $Keys{$name}{kid};
            $jwk->{use} = 'sig';
            push @keys, $jwk;
        }
        write_file("$jwks.tmp", JSON::PP->new->canonical->encode(
                                    { keys => \@keys }));
        rename "$jwks.tmp", $jwks or die "rename $jwks: $!";
    }

    return $dir;
}

sub write_file {
    my ($name, $data) = @_;
    open my $fh, '>', $name or die "open $name: $!";
    binmode $fh;
    print $fh $data;
    close $fh or die "close $name: $!";
}

sub load_key {
    my ($name, $which) = @_;
    keys_dir() unless %Keys;
    my $k = $Keys{$name} or die "no test key '$name'";
    my $file = $which eq 'pub' ? $k->{pub} : $k->{priv};
    return $k->{type} eq 'EC'  ? Crypt::PK::ECC->new($file)
         : $k->{type} eq 'RSA' ? Crypt::PK::RSA->new($file)
         :                       Crypt::PK::Ed25519->new($file);
}

# the PEM text of a public key, e.g. for the HS256 key-confusion attack
sub key_pem {
    my ($name) = @_;
    keys_dir() unless %Keys;
    open my $fh, '<', $Keys{$name}{pub} or die $!;
    local $/;
    return <$fh>;
}

sub b64u { return encode_base64url($_[0]) }

# a token from raw header and payload JSON texts and a raw signature
sub raw_jwt {
    my ($header, $payload, $sig) = @_;
    return b64u($header) . '.' . b64u($payload) . '.'
           . b64u(defined $sig ? $sig : 'not-a-signature');
}

sub jti { return sprintf "jti-%d-%d-%d", $$, time, ++$Seq }

# The action digest, version 1 (see README.md).  $path must already be
# normalized as nginx's $uri; $args is the raw query string.
# digest(action => 'refund', method => 'POST', path => '/p', args => 'a=1',
#        body => '...', extras => [...], headers => [[name, values...], ...],
#        covers => [...], uri => 1): the action digest, version 2 (README
#        "The action digest"); path is the raw path as sent, or nginx's $uri
#        with uri => 1 (ciba_path normalize)
sub digest {
    my (%a) = @_;
    my @covers = $a{covers} ? @{ $a{covers} } : qw(method path args body);
    my %c = map { $_ => 1 } @covers;
    my $ns = sub { my $x = shift; length($x) . ':' . $x . ',' };

    my $c = $ns->('ngx-ciba-digest/2')
          . $ns->(join ',', map { $_ eq 'path' && $a{uri} ? 'uri' : $_ }
                            grep { $c{$_} } qw(method path args body))
          . $ns->($a{action});

    $c .= $ns->($a{method}) if $c{method};
    $c .= $ns->($a{path})   if $c{path};

    if ($c{args}) {
        my @args = grep { length } split /&/, (defined $a{args}
                                                ? $a{args} : ''), -1;
        my $i = 0;
        my @keyed = map { [ arg_key($_), $i++, $_ ] } @args;
        @args = map { $_->[2] }
                sort { $a->[0] cmp $b->[0] || $a->[1] <=> $b->[1] } @keyed;
        $c .= $ns->(scalar @args);
        $c .= $ns->($_) for @args;
    }

    $c .= $ns->(sha256_hex(defined $a{body} ? $a{body} : '')) if $c{body};

    my @extras = $a{extras} ? @{ $a{extras} } : ();
    $c .= $ns->(scalar @extras);
    $c .= $ns->($_) for @extras;

    my @headers = $a{headers} ? @{ $a{headers} } : ();
    $c .= $ns->(scalar @headers);

    for my $h (@headers) {
        my ($name, @values) = @$h;
        $c .= $ns->(lc $name) . $ns->(scalar @values);
        $c .= $ns->($_) for @values;
    }

    return b64u(sha256($c));
}

# the sort key of a query piece: its name, "+" a space, %XX decoded, A-Z
# lowercased (bytes)
sub arg_key {
    my ($piece) = @_;
    my ($name) = split /=/, $piece, 2;
    $name =~ tr/+/ /;
    $name =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    $name =~ tr/A-Z/a-z/;
    return $name;
}

# mint(key => 'ec256', alg => 'ES256', claims => {...}, header => {...},
#      action => 'refund', method => 'POST', path => '/x', args => 'a=1',
#      body => '...', extras => [...], drop => ['aud', ...])
sub mint {
    my (%o) = @_;
    my $key = $o{key} || 'ec256';
    keys_dir() unless %Keys;
    my $alg = $o{alg} || (defined $o{secret} ? 'HS256'
                        : $Keys{$key}{type} eq 'EC' ? 'ES256'
                        : $Keys{$key}{type} eq 'RSA' ? 'RS256' : 'EdDSA');
    my $now = time;

    my $digest = exists $o{digest} ? $o{digest} : digest(
        action => $o{action} // 'refund',
        method => $o{method} // 'POST',
        path   => $o{path} // '/tools/refund',
        args   => $o{args} // '',
        body   => $o{body} // '',
        extras => $o{extras},
        headers => $o{headers},
        covers => $o{covers},
        uri    => $o{uri},
    );

    my %claims = (
        iss => 'https://as.example',
        aud => 'https://tools.example',
        sub => 'alice',
        jti => jti(),
        iat => $now,
        exp => $now + 120,
        authorization_details => [ {
            type       => 'nginx_ciba_action',
            actions    => [ $o{action} // 'refund' ],
            identifier => $digest,
        } ],
    );

    %claims = (%claims, %{ $o{claims} }) if $o{claims};
    delete @claims{ @{ $o{drop} } } if $o{drop};

    # secret => BYTES: an HMAC token (HS256 unless alg says), kid => ID
    my %hdr = (kid => defined $o{secret} ? $o{kid} : $Keys{$key}{kid});
    delete $hdr{kid} unless defined $hdr{kid};
    %hdr = (%hdr, %{ $o{header} }) if $o{header};
    delete $hdr{kid} if $o{no_kid};

    return encode_jwt(payload => \%claims, alg => $alg,
                      key => defined $o{secret} ? $o{secret}
                                                : load_key($key, 'priv'),
                      extra_headers => \%hdr);
}

# The state file of ngx_http_ciba_state.c: magic, epoch, count, records
# (expire, SHA-256(iss NUL jti)), then a SHA-256 of all that precedes.
# Each call writes a new file (an nginx that exits writes its own state to
# the file it loaded from, which must not leak into the next block), next
# to the servroot (the real Test::Nginx refuses a servroot with extra
# files in it).
my @Warm;

sub warm_state {
    my (%o) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT} || 't/servroot';
    my $dir = "$root-state";
    make_path($dir) unless -d $dir;
    $dir = abs_path($dir);

    unlink shift @Warm while @Warm > 4;

    my $name = sprintf "%s/warm-%d-%d.state", $dir, $$, ++$Seq;
    my $epoch = $o{epoch} // time - 3600;
    my $records = $o{records} || [];
    my $data = pack('a16 q< Q<', 'ngx-ciba-state/1', $epoch,
                    scalar @$records);
    $data .= pack('q< a32', $_->[0], $_->[1]) for @$records;
    $data .= sha256($data);
    write_file($name, $data);
    push @Warm, $name;

    return $name;
}

# add_block_preprocessor(\&CibaTest::preprocessor): a "--- mint" section
# holds a Perl expression giving mint() options; method, path, args and
# body default to the block's request.
sub preprocessor {
    my ($block) = @_;

    $ENV{TEST_NGINX_CIBA_STATE} = warm_state();

    my $spec = $block->mint;
    return $block unless defined $spec;

    my $opts = eval $spec;
    die "bad --- mint section in ", $block->name, ": $@" if $@;
    $opts = {} unless ref $opts eq 'HASH';

    my $req = $block->request;
    $req = $req->[0] if ref $req eq 'ARRAY';
    if (defined $req && $req =~ m{^(\S+)\s+(\S+)(?:\s+HTTP/\S+)?\s*\n?(.*)\z}s)
    {
        my ($method, $uri, $body) = ($1, $2, $3);
        $body =~ s/^\s+|\s+\z//g;
        my ($path, $args) = split /\?/, $uri, 2;
        $opts->{method} //= $method;
        $opts->{path}   //= $path;
        $opts->{args}   //= $args // '';
        $opts->{body}   //= $body;
    }

    my $token = mint(%$opts);
    my $header = $opts->{token_header} // 'Approval-Token';
    my $more = $block->more_headers // '';
    $more .= "\n" if length $more && $more !~ /\n\z/;
    $block->set_value('more_headers', "$more$header: $token\n");

    return $block;
}

# http_config(keys => [ 'ec256.pub kid=ec1', ... ], log => 'short'|'full'):
# the http{} configuration shared by the data-driven files: the zone (with
# the warm state file of preprocessor()), issuer https://as.example,
# audience https://tools.example, the key files named (under
# $TEST_NGINX_CIBA_KEYS; default: ec256 as ec1; keys => 'all': the trusted
# key of each type, @AllKeys), and an access log written
# into error.log so that "--- error_log" sees the variables too:
#   short: access: POST /tools/refund status=200 decision=... reason=...
#          action=... jti=... digest=...
#   full:  CIBA-ACCESS "POST /tools/refund HTTP/1.1" 200 decision=...
#          reason=... action=... subject=... approver=... jti=... digest=...
my %LogFormats = (
    short => q{'access: $request_method $uri status=$status '
                         'decision=$ciba_decision reason=$ciba_reason '
                         'action=$ciba_action jti=$ciba_jti '
                         'digest=$ciba_digest'},
    full  => q{'CIBA-ACCESS "$request" $status '
                         'decision=$ciba_decision reason=$ciba_reason '
                         'action=$ciba_action subject=$ciba_subject '
                         'approver=$ciba_approver jti=$ciba_jti '
                         'digest=$ciba_digest'},
);

our @AllKeys = ('ec256.pub kid=ec1', 'ec384.pub kid=ec2', 'ec521.pub kid=ec3',
                'rsa.pub kid=rsa1', 'ed.pub kid=ed1');

sub http_config {
    my (%o) = @_;
    my $keys = $o{keys} // [ 'ec256.pub kid=ec1' ];
    $keys = \@AllKeys if $keys eq 'all';
    my $log = $LogFormats{ $o{log} // 'short' }
        or die "http_config: unknown log format $o{log}\n";

    return join '',
        "    ciba_zone ciba_test:1m state=\$TEST_NGINX_CIBA_STATE;\n",
        "    ciba_issuer https://as.example;\n",
        "    ciba_audience https://tools.example;\n",
        (map { "    ciba_key_file \$TEST_NGINX_CIBA_KEYS/$_;\n" } @$keys),
        "\n    log_format ciba_test $log;\n",
        "    access_log logs/error.log ciba_test;\n";
}

# The "upstream" of the protected locations: the check (precontent phase)
# runs before a real content handler; its access line ("... /backend ...")
# shows whether it ran.
our $Backend = <<'_EOC_';

    location /backend {
        return 200 "upstream ran $request_method\n";
    }
_EOC_

# merge_config($block, http => TEXT, default => TEXT, backend => 1): puts
# the shared http{} configuration before the block's own "--- http_config";
# a block without "--- config" gets the default one; with backend, a block
# that sends a request gets the /backend location added to its config.
sub merge_config {
    my ($block, %o) = @_;

    $block->set_value(http_config => ($o{http} // '')
                                     . ($block->http_config // ''));
    $block->set_value(config => $o{default})
        if defined $o{default} && !defined $block->config;
    $block->set_value(config => ($block->config // '') . $Backend)
        if $o{backend} && defined $block->request;

    return $block;
}

# as_locations(port => $port, prefix => '/_as/', authorization => 'Basic
#              ...', bc => 'bc-authorize', token => 'token',
#              directives => [...]):
# nginx's internal locations ${prefix}bc and ${prefix}token for the
# module's backchannel and token subrequests, proxied to the AS's
# endpoints of those names on 127.0.0.1:$port with that Authorization
# header (the client's), each with the directives given
# ("proxy_read_timeout 5s;")
sub as_locations {
    my (%o) = @_;
    my $more = join '', map { "            $_\n" } @{ $o{directives} || [] };
    my @out;

    for my $name ('bc', 'token') {
        push @out, <<"_EOC_";
        location = $o{prefix}$name {
            internal;
            proxy_pass http://127.0.0.1:$o{port}/$o{$name};
            proxy_set_header Authorization "$o{authorization}";
$more        }
_EOC_
    }

    return join "\n", @out;
}

# true when node >= 20 runs
sub node_ok {
    my $v = `node --version 2>/dev/null` // '';
    return $? == 0 && $v =~ /^v(\d+)\./ && $1 >= 20;
}

# location($loc, $port, @directives): nginx's "location $loc" ("=
# /tools/refund", "/tools/refund") with the module on and the directives
# given, passing to http://127.0.0.1:$port/backend
sub location {
    my ($loc, $port, @directives) = @_;

    return join '', "        location $loc {\n",
                    "            ciba on;\n",
                    map({ "            $_\n" } @directives),
                    "            proxy_pass http://127.0.0.1:$port/backend;\n",
                    "        }\n\n";
}

# token_location($loc, $port, @directives): a location() where approval
# tokens as mint() makes them pass: issuer https://as.example, audience
# https://tools.example, the test key ec256 as kid ec1
sub token_location {
    my ($loc, $port, @directives) = @_;

    return location($loc, $port, 'ciba_issuer https://as.example;',
                    'ciba_audience https://tools.example;',
                    'ciba_key_file ' . keys_dir() . '/ec256.pub kid=ec1;',
                    @directives);
}

1;
