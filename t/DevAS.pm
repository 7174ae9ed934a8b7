package DevAS;

# Starts and drives the development AS (tools/dev-as/dev-as.mjs,
# oidc-provider) for plain-Perl test files, on a free port (--port 0).
#
#   my @missing = DevAS::missing();     # what it needs and is not there
#   my $url = DevAS::start(log => $file, args => [ '--audience', $aud ],
#                          env => { NODE_EXTRA_CA_CERTS => $cert });
#                                       # dies on failure (with the log)
#   my ($status, $json) = DevAS::call(POST => '/admin/approve', { ... });
#   my $json = DevAS::call(GET => '/admin/pending');
#   my $res = DevAS::form('/backchannel', { ... }, Authorization => ...);
#   my $res = DevAS::raw(GET => '/approver');       # HTTP::Tiny's answer
#   my %sub = DevAS::subs();            # login_hint => sub of its users
#   my $conf = DevAS::http_config(state => $file, keys => $jwks_file,
#                                 audience => $aud);
#   my $conf = DevAS::locations('/_ciba/', $basic, 'log_subrequest on;');
#   my $conf = DevAS::refund_location('= /poll/refund', $nginx_port,
#                                     delivery => 'poll', prefix => '/_ciba/');
#   my $res = DevAS::save_jwks($file);  # its /jwks, written to $file
#   DevAS::stop();                      # also at END
#
# $DevAS::Url and $DevAS::Port say where it listens.  Its pid lives in a
# package variable (file-scoped lexicals are freed before END blocks
# run), and only the process that started it stops it: a forked test
# child that exits must not take the AS with it.

use strict;
use warnings;

use File::Basename qw(dirname);
use Cwd qw(abs_path);
use HTTP::Tiny;
use JSON::PP ();

use CibaTest ();
use Spawn;

our ($Pid, $Url, $Port, $Owner);

our $Dir = abs_path(dirname(__FILE__) . '/../tools/dev-as');

my $Json = JSON::PP->new->canonical;
my $Http = HTTP::Tiny->new(timeout => 15, keep_alive => 0);

# what the development AS needs that is not there (empty when it can run)
sub missing {
    my @missing;

    push @missing, 'node >= 20' unless CibaTest::node_ok();
    push @missing, 'tools/dev-as/node_modules/oidc-provider (npm ci in '
                   . 'tools/dev-as)'
        unless -d "$Dir/node_modules/oidc-provider";

    return @missing;
}

# start(log => $file, args => [ ... ], env => { ... }): its base URL
sub start {
    my (%o) = @_;
    my $log = $o{log} // '/dev/null';

    my ($pid, $fh, $line) = Spawn::start(
        [ 'node', "$Dir/dev-as.mjs", '--port', '0', @{ $o{args} || [] } ],
        stderr => $log, env => $o{env}, wait => 60);

    # it prints nothing more on stdout
    close $fh;

    if (!defined $line
        || $line !~ m{^dev-as listening on (http://127\.0\.0\.1:(\d+))$})
    {
        Spawn::finish($pid);

        my $err = '';
        if (open my $in, '<', $log) { local $/; $err = <$in> // '' }

        die 'dev-as did not start: ' . ($line // 'no output') . "\n$err";
    }

    ($Pid, $Url, $Port, $Owner) = ($pid, $1, $2, $$);

    return $Url;
}

sub stop {
    # only the process that started it (not a forked test child)
    return unless $Pid && $$ == $Owner;

    Spawn::finish($Pid);
    undef $Pid;
}

# call($method, $path, $in, %headers): a call with a JSON body ($in a
# reference to encode, or the bytes to send): the decoded JSON answer ({}
# when it is none), and in list context the status first
sub call {
    my ($method, $path, $in, %headers) = @_;

    my $res = $Http->request($method, "$Url$path", {
        headers => { 'Content-Type' => 'application/json', %headers },
        (defined $in ? (content => ref $in ? $Json->encode($in) : $in)
                     : ()) });

    my $out = eval { $Json->decode($res->{content}) } // {};

    return wantarray ? ($res->{status}, $out) : $out;
}

# raw($method, $path, \%options): HTTP::Tiny's answer as it is
sub raw {
    my ($method, $path, $opt) = @_;
    return $Http->request($method, "$Url$path", $opt || {});
}

# form($path, \%fields, %headers): a POSTed form (the AS's own
# endpoints: /backchannel, /token): HTTP::Tiny's answer
sub form {
    my ($path, $fields, %headers) = @_;
    return $Http->post_form("$Url$path", $fields, { headers => \%headers });
}

# its users: login_hint => sub
sub subs {
    return map { ($_->{login_hint} => $_->{sub}) }
           @{ call(GET => '/admin/users')->{users} // [] };
}

# its /jwks written to $file (for ciba_key_file): HTTP::Tiny's answer
sub save_jwks {
    my ($file) = @_;
    my $res = $Http->get("$Url/jwks");

    open my $out, '>', $file or die "$file: $!";
    print $out $res->{content};
    close $out or die "$file: $!";

    return $res;
}

# http_config(state => $file, keys => $jwks_file, audience => $aud): the
# http{} directives for the AS's tokens: the zone "ciba" (1m, that state
# file), the AS's keys (a save_jwks() file), the AS as the issuer, the
# audience
sub http_config {
    my (%o) = @_;

    return <<"_EOC_";
    ciba_zone ciba:1m state=$o{state};
    ciba_key_file $o{keys};
    ciba_issuer $Url;
    ciba_audience $o{audience};
_EOC_
}

# locations($prefix, $credentials, @directives): nginx's internal
# locations ${prefix}bc and ${prefix}token for the AS's /backchannel and
# /token, as the client whose credentials (base64 of client:secret) are
# given, with a 5 s read timeout, room for its answers, and the
# directives given
sub locations {
    my ($prefix, $basic, @directives) = @_;

    return CibaTest::as_locations(
        port => $Port, prefix => $prefix, authorization => "Basic $basic",
        bc => 'backchannel', token => 'token',
        directives => [ 'proxy_read_timeout 5s;',
                        'subrequest_output_buffer_size 16k;',
                        @directives ]);
}

# refund_location($loc, $port, delivery => 'poll', prefix => '/_ciba/',
#                 directives => [ ... ]): a CibaTest::location() ("=
# /poll/refund", "^~ /poll/x/") where the module asks the AS (that
# delivery mode, the subrequests to the locations ${prefix}bc and
# ${prefix}token) before the action "refund": the subject from X-User,
# the binding message "Refund <amount> EUR on order <order>" (the
# arguments decoded; letters, digits, the space and -._+/!?#,: as the
# development AS accepts them, other bytes "_"), $ciba_decision and
# $ciba_approver in X-Ciba-* headers
sub refund_location {
    my ($loc, $port, %o) = @_;

    return CibaTest::location(
        $loc, $port, 'ciba_action refund;', "ciba_delivery $o{delivery};",
        "ciba_backchannel_endpoint $o{prefix}bc;",
        "ciba_token_endpoint $o{prefix}token;",
        'ciba_login_hint $http_x_user;',
        'ciba_binding_message "Refund $ciba_arg_amount EUR on order '
            . '$ciba_arg_order";',
        'ciba_binding_message_chars "A-Za-z0-9 \-._+/!?#,:";',
        'ciba_binding_message_max 64;',
        'add_header X-Ciba-Decision $ciba_decision always;',
        'add_header X-Ciba-Approver $ciba_approver always;',
        @{ $o{directives} || [] });
}

END { local $?; stop() }

1;
