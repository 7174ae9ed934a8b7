package MockAS;

# Starts and drives the scriptable mock authorization server
# (t/fixtures/mock-as/mock-as.mjs) for plain-Perl and Test::Nginx test files.
#
#   MockAS::start($port, stderr => $file, verbose => 1);  # dies on failure
#   my $answer = MockAS::call(POST => '/_admin/approve', { ... });
#   MockAS::setup(config => { ... }, script => { '/token' => [ ... ] });
#   my @reqs = MockAS::requests('/bc-authorize');   # what it received
#   my $n = MockAS::count('/token');
#   my $conf = MockAS::locations($port, 'proxy_read_timeout 5s;')
#              . MockAS::ciba_location('= /ciba/refund', $nginx_port);
#   MockAS::stop();                                       # also at END
#
# Data-driven files check what the mock received in a block's
# "--- as_check" section (Perl, in package main): the harness has no hook
# after a block's requests, so MockAS::as_check_block($block), called from
# the block preprocessor, runs the previous block's section (the mock has
# seen nothing since) and keeps this one's; MockAS::as_check_run() in a
# cleanup handler runs the last one.  The sections use $R (the mock's
# request log), $Name (the block's name), count_is(), as_req(), form_is()
# and headers_are(), which MockAS::as_check_import() puts into main.
#
# The mock's stdout pipe and pid live in package variables (file-scoped
# lexicals are freed before END blocks run), and only the process that
# started the mock stops it (a forked test child must not).

use strict;
use warnings;

use File::Basename qw(dirname);
use Cwd qw(abs_path);
use HTTP::Tiny;
use IO::Socket::INET ();
use JSON::PP ();

use CibaTest ();
use Spawn;

our ($Pid, $Out, $Port, $Owner);

# the client authentication nginx sends the mock (poll-client:poll-secret)
our $BASIC = 'Basic cG9sbC1jbGllbnQ6cG9sbC1zZWNyZXQ=';

my $Script = abs_path(dirname(__FILE__) . '/fixtures/mock-as/mock-as.mjs');
my $Json = JSON::PP->new->canonical;

# a port free on the loopback now, for a mock that must not clash with
# another test run on the same machine
sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "MockAS: no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub start {
    my ($port, %o) = @_;

    my ($pid, $fh, $line) = Spawn::start(
        [ 'node', $Script, '--port', $port,
          ($o{verbose} ? ('--verbose') : ()) ],
        stderr => $o{stderr}, wait => 10);

    if (!defined $line
        || $line !~ /^mock-as listening on 127\.0\.0\.1:(\d+)$/)
    {
        Spawn::finish($pid, $fh);
        die "the mock AS did not start on port $port\n";
    }

    # its stdout stays open: it may print more (no EPIPE then)
    ($Pid, $Out, $Port, $Owner) = ($pid, $fh, $1, $$);

    return $Port;
}

sub stop {
    # only the process that started it (not a forked test child)
    return unless $Pid && $$ == $Owner;

    Spawn::finish($Pid, $Out);
    undef $Pid;
}

# an admin (or AS) call with a JSON body; dies unless the mock says yes
sub call {
    my ($method, $path, $data) = @_;

    my $res = HTTP::Tiny->new(timeout => 10, keep_alive => 0)->request(
        $method, "http://127.0.0.1:$Port$path", {
            headers => { 'Content-Type' => 'application/json' },
            (defined $data ? (content => $Json->encode($data)) : ()),
        });

    die "mock AS: $method $path: $res->{status} $res->{content}\n"
        unless $res->{success};

    return JSON::PP::decode_json($res->{content});
}

# setup(config => {...}, script => { '/bc-authorize' => [ step, ... ] }):
# a fresh mock (requests, counts, auth requests and scripts forgotten), a
# 1 s interval and no slow_down unless said otherwise
sub setup {
    my (%o) = @_;

    call(POST => '/_admin/reset', {});
    call(POST => '/_admin/config', {
        interval => 1, slow_down => JSON::PP::false, %{ $o{config} || {} },
    });

    for my $ep (sort keys %{ $o{script} || {} }) {
        call(POST => '/_admin/script',
             { endpoint => $ep, responses => $o{script}{$ep} });
    }

    return 1;
}

# the requests the mock received on a path (since its last reset), in order
sub requests {
    my ($path) = @_;
    return @{ call(GET => "/_admin/requests?path=$path")->{requests} };
}

sub count { return scalar requests(@_) }

# locations($port, @directives): nginx's internal locations /_as/bc and
# /_as/token for a mock on that port (its /bc-authorize and /token, as
# poll-client), each with the directives given ("proxy_read_timeout 5s;")
sub locations {
    my ($port, @directives) = @_;

    return CibaTest::as_locations(port => $port, prefix => '/_as/',
                                  authorization => $BASIC,
                                  bc => 'bc-authorize', token => 'token',
                                  directives => \@directives);
}

# ciba_location($loc, $port, @directives): a CibaTest::location() that
# asks the human through the mock (the subrequests to the locations of
# locations()), the subject from X-User
sub ciba_location {
    my ($loc, $port, @directives) = @_;

    return CibaTest::location($loc, $port,
                              'ciba_backchannel_endpoint /_as/bc;',
                              'ciba_token_endpoint /_as/token;',
                              'ciba_login_hint $http_x_user;', @directives);
}

# ---- deferred checks of what the mock received ------------------------------

our ($R, $Name);
my $PendingCheck;

sub as_check_import {
    no strict 'refs';
    *{"main::$_"} = \&{"MockAS::$_"}
        for qw(count_is as_req form_is headers_are);
    *main::R = \$R;
    *main::Name = \$Name;
    return 1;
}

sub as_check_block {
    my ($block) = @_;

    as_check_run();

    $PendingCheck = { name => $block->name, code => $block->as_check }
        if defined $block->as_check;

    return $block;
}

sub as_check_run {
    my $p = $PendingCheck or return;
    undef $PendingCheck;

    # assigned, not local(): main's $R and $Name are aliases of these
    $Name = $p->{name};
    $R = eval { call(GET => '/_admin/requests') };
    if (!$R) {
        Test::More::fail("$Name - as_check: the mock AS answers: $@");
        return;
    }
    my $ok = eval "package main; $p->{code}; 1";
    Test::More::fail("$Name - as_check died: $@") unless $ok;
}

sub count_is {
    my (%want) = @_;
    for my $path (sort keys %want) {
        Test::More::is($R->{counts}{$path} // 0, $want{$path},
                       "$Name - the AS saw $want{$path} $path request(s)");
    }
}

# the $i-th request (from 0) the mock received on a path
sub as_req {
    my ($path, $i) = @_;
    my @r = grep { $_->{path} eq $path } @{ $R->{requests} };
    return $r[$i // 0] || {};
}

# the form fields of a request, exactly; authorization_details decoded
sub form_is {
    my ($req, $want, $what) = @_;
    my %got = %{ $req->{form} || {} };
    my %exp = %$want;
    my ($ad, $exp_ad) = (delete $got{authorization_details},
                         delete $exp{authorization_details});
    Test::More::is_deeply(\%got, \%exp, "$Name - $what: the form fields");
    if ($exp_ad) {
        Test::More::is_deeply(eval { JSON::PP::decode_json($ad // '') },
                              $exp_ad,
                              "$Name - $what: authorization_details");
    }
}

# the request headers the AS received, exactly
sub headers_are {
    my ($req, $want, $what) = @_;
    my %exp = (host => "127.0.0.1:$Port", connection => 'close',
               'content-type' => 'application/x-www-form-urlencoded',
               'content-length' => $req->{body_length} // -1, %$want);
    delete @exp{ grep { !defined $exp{$_} } keys %exp };
    Test::More::is_deeply($req->{headers}, \%exp,
                          "$Name - $what: the request headers");
}

END { local $?; stop() }

1;
