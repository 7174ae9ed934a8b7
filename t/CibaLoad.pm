package CibaLoad;

# Helpers shared by the load and fault tests (t/110-t/113): the mock AS
# on the port after nginx's, driven as a process (killed, paused,
# restarted), answers classified and counted, decision lines counted.
#
#   my $mport = CibaLoad::mock_up($ng, users => [ ... ]);  # port + 1
#   my $mport = CibaLoad::mock_start($ng->port + 1, log => $file);
#   CibaLoad::mock_signal('STOP');  ...  CibaLoad::mock_signal('CONT');
#   CibaLoad::mock_kill();  CibaLoad::mock_start($mport);   # a restart
#   my $j = CibaLoad::as(POST => '/_admin/approve', { ... });
#   my $kind = CibaLoad::kind($res);   # "200" or "403 approval_replayed
#                                      #  jti_replayed" ...
#   my %n = CibaLoad::tally(@res);     # kind => count
#   my @r = CibaLoad::timed($ng, [ { uri => ..., at => 0.5 } ],
#                           actions => [ [ 1, sub { ... } ] ]);
#   CibaLoad::plan_skip('timing-based');  # under valgrind, without node
#   CibaLoad::health_ok($ng, @workers);    # the same workers, no crash ...
#   CibaLoad::stop_ok($ng, $state);
#   CibaLoad::write_soak_config($ng, $mport, state => $state, zone => '4m',
#                               as_timeout => '20s');
#
# The mock is started through t/MockAS.pm (one mock per test process);
# a paused mock is always continued before it is stopped (a stopped
# process keeps SIGTERM pending and would never exit).

use strict;
use warnings;

use Exporter 'import';
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use Test::More ();
use Time::HiRes qw(sleep time);

use Crypt::JWT qw(encode_jwt);
use Crypt::PK::ECC ();

use CibaNginx ();
use CibaTest ();
use MockAS;
use Spawn ();

our @EXPORT_OK = qw(kind tally summary json_of decision_lines mock_start
                    mock_up mock_kill mock_signal as as_reqs as_count
                    node_ok plan_skip wait_until timed build_request
                    fast_mint health_ok stop_ok write_soak_config);

my $Json = JSON::PP->new->canonical;
my $Stopped = 0;

# true when node >= 20 runs (the mock AS needs it)
sub node_ok { return CibaTest::node_ok() }

# plan_skip($why): skips the test file under valgrind (why it means
# nothing there: "timing-based", ...) and without node >= 20
sub plan_skip {
    my ($why) = @_;
    Test::More::plan(skip_all => "$why: not run under valgrind "
                                 . '(TEST_NGINX_USE_VALGRIND is set)')
        if $ENV{TEST_NGINX_USE_VALGRIND};
    Test::More::plan(skip_all => 'node >= 20 is needed for the mock AS')
        unless node_ok();
}

sub mock_start {
    my ($port, %o) = @_;
    $Stopped = 0;
    return MockAS::start($port, stderr => $o{log}, verbose => $o{verbose});
}

# mock_up($ng, log => $file, config...): the mock AS on nginx's port + 1
# (its stderr into logs/mock-as.log unless said otherwise), answering
# with a 1 s interval and no slow_down unless the config given (users =>
# [ ... ], ...) says otherwise: its port
sub mock_up {
    my ($ng, %o) = @_;
    my $log = delete $o{log} // $ng->servroot . '/logs/mock-as.log';
    my $port = mock_start($ng->port + 1, log => $log);
    MockAS::setup(config => \%o);
    return $port;
}

# SIGKILL: the mock dies at once, every connection to it is reset
sub mock_kill {
    return unless $MockAS::Pid;
    Spawn::finish($MockAS::Pid, $MockAS::Out, 'KILL');
    undef $MockAS::Pid;
    $Stopped = 0;
}

# STOP / CONT: a paused mock keeps its listening socket (the kernel still
# accepts connections) but answers nothing
sub mock_signal {
    my ($sig) = @_;
    die "no mock AS runs\n" unless $MockAS::Pid;
    kill $sig, $MockAS::Pid or die "kill $sig $MockAS::Pid: $!\n";
    $Stopped = $sig eq 'STOP' ? 1 : $sig eq 'CONT' ? 0 : $Stopped;
}

sub mock_pid { return $MockAS::Pid }

END {
    # before MockAS's own END (END blocks run last-defined first)
    kill 'CONT', $MockAS::Pid if $MockAS::Pid;
}

# an admin call: the decoded answer; dies unless the mock says yes
sub as { return MockAS::call(@_) }

# the requests the mock received on a path (since its last reset)
sub as_reqs { return MockAS::requests(@_) }

sub as_count { return MockAS::count(@_) }

sub json_of {
    my ($body) = @_;
    return eval { JSON::PP::decode_json($body // '') } || {};
}

# "200", or "STATUS error reason" for the module's answers, or "none"
# when there was no answer
sub kind {
    my ($res) = @_;
    my ($status, $h, $body) = @$res;
    return 'none' unless defined $status;
    return "$status" if $status =~ /^2/;
    my $j = json_of($body);
    return join ' ', $status, $j->{error} // '-', $j->{reason} // '-';
}

sub tally {
    my %n;
    $n{ kind($_) }++ for @_;
    return %n;
}

sub summary {
    my %n = tally(@_);
    return join ', ', map { "$_: $n{$_}" } sort keys %n;
}

# the decision lines of an error log text, optionally only those that
# match a pattern
sub decision_lines {
    my ($text, $re) = @_;
    return grep { /ciba: decision=/ && (!$re || /$re/) } split /^/, $text;
}

# A raw HTTP/1.1 request (Connection: close; Content-Length when there
# is a body)
sub build_request {
    my (%r) = @_;
    my @h = @{ $r{headers} || [] };
    my $req = ($r{method} // 'GET') . ' ' . ($r{uri} // '/')
              . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        $req .= "$k: $v\r\n";
    }
    $req .= 'Content-Length: ' . length($r{body}) . "\r\n"
        if defined $r{body};
    return $req . "\r\n" . ($r{body} // '');
}

# timed($ng, [ { method, uri, headers, body, at, raw, close_at }, ... ],
#       actions => [ [ $seconds, sub { ... } ], ... ], timeout => 30)
#
# Runs requests and actions on one clock: each request is sent "at"
# seconds after the start (default 0), its bytes "raw" as given or built
# from method, uri, headers and body; "close_at": the client closes the
# connection that many seconds after the start without waiting for the
# answer.  Each action runs once its time has come.  Returns, in the
# order of the requests, hashes { status, headers, body, json, kind,
# elapsed (from the request's sending to the end of its answer), closed
# (1 when the client closed it), error }.
sub timed {
    my ($ng, $reqs, %o) = @_;
    my $timeout = $o{timeout} // 30;
    my @acts = sort { $a->[0] <=> $b->[0] } @{ $o{actions} || [] };
    my @st = map { +{ r => $_, at => $_->{at} // 0, buf => '' } } @$reqs;
    my $sel = IO::Select->new;
    my %by_fd;
    my $t0 = time;

    while (1) {
        my $now = time - $t0;

        while (@acts && $acts[0][0] <= $now) {
            (shift @acts)->[1]->();
            $now = time - $t0;
        }

        for my $s (grep { !$_->{sent} && !$_->{done} && $_->{at} <= $now }
                   @st)
        {
            $s->{sent} = time;
            my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                             PeerPort => $ng->port,
                                             Proto => 'tcp', Timeout => 5);
            if (!$sock) {
                @$s{qw(done error)} = (1, "connect: $!");
                next;
            }
            my $data = defined $s->{r}{raw} ? $s->{r}{raw}
                                            : build_request(%{ $s->{r} });
            while (length $data) {
                my $n = syswrite $sock, $data;
                if (!defined $n) {
                    @$s{qw(done error)} = (1, "write: $!");
                    last;
                }
                substr $data, 0, $n, '';
            }
            next if $s->{done};
            $sock->blocking(0);
            $s->{sock} = $sock;
            $sel->add($sock);
            $by_fd{ fileno $sock } = $s;
        }

        for my $s (grep { $_->{sock} && defined $_->{r}{close_at}
                          && $_->{r}{close_at} <= $now } @st)
        {
            $sel->remove($s->{sock});
            close $s->{sock};
            delete $s->{sock};
            @$s{qw(done closed)} = (1, 1);
            $s->{elapsed} = time - $s->{sent};
        }

        last if !@acts && !grep { !$_->{done} } @st;

        if ($now > $timeout) {
            for my $s (grep { !$_->{done} } @st) {
                if ($s->{sock}) {
                    $sel->remove($s->{sock});
                    close $s->{sock};
                }
                @$s{qw(done error)} = (1, 'timed out');
            }
            last;
        }

        # sleep until the next thing to do, at most 20 ms
        my $wait = 0.02;
        for my $t ((map { $_->[0] } @acts),
                   (map { $_->{at} } grep { !$_->{sent} } @st),
                   (map { $_->{r}{close_at} // () }
                    grep { $_->{sock} } @st))
        {
            $wait = $t - $now if $t - $now < $wait;
        }
        $wait = 0 if $wait < 0;

        if (!$sel->count) {
            sleep $wait if $wait > 0;
            next;
        }

        for my $sock ($sel->can_read($wait)) {
            my $s = $by_fd{ fileno $sock };
            my $n = sysread $sock, my $buf, 65536;
            next if !defined $n && ($!{EAGAIN} || $!{EINTR});
            if ($n) {
                $s->{buf} .= $buf;
                next;
            }
            $s->{error} = "read: $!" unless defined $n;
            $sel->remove($sock);
            close $sock;
            delete $s->{sock};
            $s->{done} = 1;
            $s->{elapsed} = time - $s->{sent};
        }
    }

    return map {
        my ($status, $h, $body) = CibaNginx::_parse($_->{buf});
        my $res = { status => $status, headers => $h, body => $body,
                    json => json_of($body), elapsed => $_->{elapsed},
                    closed => $_->{closed}, error => $_->{error} };
        $res->{kind} = kind([ $status, $h, $body ]);
        $res;
    } @st;
}

# A token as CibaTest::mint makes it (the same claims, ES256 with the
# test key ec256, kid ec1), with the key loaded once: mint() loads it for
# every token, which is too slow for pools of thousands.  Options: path,
# args, body, claims (merged in).
my $Key;

sub fast_mint {
    my (%o) = @_;
    $Key //= Crypt::PK::ECC->new(CibaTest::keys_dir() . '/ec256.key');
    my $now = time;
    my %claims = (
        iss => 'https://as.example', aud => 'https://tools.example',
        sub => 'alice', jti => CibaTest::jti(), iat => int($now),
        exp => int($now) + 120,
        authorization_details => [ {
            type => 'nginx_ciba_action', actions => [ 'refund' ],
            identifier => CibaTest::digest(
                action => 'refund', method => 'POST',
                path => $o{path} // '/tools/refund', args => $o{args} // '',
                body => $o{body} // '') } ],
        %{ $o{claims} || {} },
    );
    return encode_jwt(payload => \%claims, alg => 'ES256', key => $Key,
                      extra_headers => { kid => 'ec1' });
}

# health_ok($ng, @workers): the workers are those given (none crashed and
# was replaced), no crash report, no [alert], [crit] or [emerg] (shown
# when there is one): three checks
sub health_ok {
    my ($ng, @workers) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $bad = qr/\[(?:alert|crit|emerg)\]/;

    Test::More::is_deeply([ sort { $a <=> $b } $ng->worker_pids ],
                          [ sort { $a <=> $b } @workers ],
                          'the same two workers throughout');
    Test::More::is($ng->crash_reports, '', 'no crashed worker');
    Test::More::unlike($ng->error_log, $bad, 'no [alert], [crit] or [emerg]')
        or Test::More::diag(join '', grep { /$bad/ } split /^/,
                                     $ng->error_log);
}

# stop_ok($ng, $state): nginx stops gracefully (a check); its state file
# goes
sub stop_ok {
    my ($ng, $state) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok($ng->stop, 'nginx stops gracefully');
    unlink $state;
}

# write_soak_config($ng, $mport, state => $file, zone => '4m',
#                   as_timeout => '20s'): the configuration of the soak
# tests (t/110, t/111): "reuseport" (each worker its own listen socket),
# the zone "soak" of that size with that state file; /tools/refund takes
# approval tokens (CibaTest::token_location()), /ciba/refund asks the mock
# AS on $mport (the subrequests with that read timeout); the upstream
# /backend answers "upstream ran <order>" and logs the order of each
# request it runs in logs/upstream.log
sub write_soak_config {
    my ($ng, $mport, %o) = @_;
    my $port = $ng->port;
    my $logs = $ng->servroot . '/logs';

    $ng->write_config(
        listen => 'reuseport',
        http   => <<"_EOC_",
    ciba_zone soak:$o{zone} state=$o{state};
    log_format upstream '\$arg_order';
_EOC_
        server => "        ciba_action refund;\n\n"
                  . CibaTest::token_location('= /tools/refund', $port)
                  . MockAS::ciba_location('= /ciba/refund', $port)
                  . MockAS::locations($mport,
                                      "proxy_read_timeout $o{as_timeout};")
                  . <<"_EOC_");
        location = /backend {
            access_log $logs/upstream.log upstream;
            return 200 "upstream ran \$arg_order\\n";
        }
_EOC_
}

# polls $cond every 50 ms until it is true or $timeout seconds passed
sub wait_until {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 10);
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->() ? 1 : 0;
}

1;
