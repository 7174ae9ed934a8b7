package CibaNginx;

# A small nginx runner for the plain Perl tests (t/060-zone.t,
# t/070-concurrency.t, t/075-reload-restart.t): tests that need what a
# data-driven Test::Nginx block cannot give, i.e. several nginx
# generations (reload, restart, crash) within one test and hundreds of
# requests in parallel.
#
#   my $ng = CibaNginx->new(workers => 2);
#   $ng->write_config(http => '...', server => '...');
#   $ng->start or die $ng->error;
#   my ($status, $headers, $body) = $ng->request('POST', '/x?a=1',
#       headers => [ 'Approval-Token' => $t ], body => '{}');
#   my @res = $ng->parallel([ { method => 'POST', ... }, ... ]);
#   $ng->reload;  $ng->stop;  $ng->start;  $ng->kill9;
#   $ng->upgrade;  $ng->upgrade(keep_old => 1); ...; $ng->finish_upgrade;
#   my $off = $ng->log_offset;  ...;  my $text = $ng->log_since($off);
#
# Environment (as for Test::Nginx):
#   TEST_NGINX_BINARY        nginx (default "nginx" in PATH)
#   TEST_NGINX_LOAD_MODULES  dynamic modules to load; empty: none (an
#                            nginx with the module linked in, e.g. ASan)
#   TEST_NGINX_SERVER_PORT   "127.0.0.1:PORT" or "PORT" (default 1984);
#                            nginx always listens on 127.0.0.1
#   TEST_NGINX_SERVROOT      server root (default t/servroot)
#
# nginx always runs as a daemon with a master process.  Whatever
# happens, every nginx started here is stopped when the test exits
# (END block, SIGINT, SIGTERM): QUIT, then KILL after a timeout; only
# the processes it started (the master from its pid file and that
# master's workers) are ever signalled.  Then the server root's state/
# (where a master saves its state file when it stops) is removed: the
# real Test::Nginx could not start the next file with it there.

use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use File::Spec ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $OwnerPid = $$;      # forked children must not clean up on exit
my %Running;            # master pid => instance, for the cleanup
my %Roots;              # server roots with a state/ of ours, for the cleanup

sub new {
    my ($class, %o) = @_;

    my $port = $o{port} // $ENV{TEST_NGINX_SERVER_PORT} // '';
    $port = 1984 unless length $port;
    $port =~ s/^.*://;
    die "CibaNginx: bad port \"$port\"\n" unless $port =~ /^\d+$/;

    my $root = File::Spec->rel2abs($o{servroot}
                                   || $ENV{TEST_NGINX_SERVROOT}
                                   || 't/servroot');

    my $self = bless {
        binary   => _which($o{binary} || $ENV{TEST_NGINX_BINARY} || 'nginx'),
        modules  => [ grep { length } split ' ',
                      $ENV{TEST_NGINX_LOAD_MODULES} // '' ],
        port     => $port,
        root     => $root,
        workers  => $o{workers} // 2,
        conns    => $o{worker_connections} // 1024,
        level    => $o{log_level} // 'info',
        timeout  => $o{timeout} // 10,
        master   => undef,
        error    => '',
    }, $class;

    $self->{conf}    = "$root/conf/nginx.conf";
    $self->{logs}    = "$root/logs";
    $self->{errlog}  = "$root/logs/error.log";
    $self->{acclog}  = "$root/logs/access.log";
    $self->{pidfile} = "$root/logs/nginx.pid";
    $self->{stderr}  = "$root/logs/nginx.stderr";

    $self->{version} = $self->_version;

    $self->clean unless $o{keep};

    return $self;
}

# an absolute path: a binary upgrade (USR2) execs the master's argv[0]
sub _which {
    my $bin = shift;
    return File::Spec->rel2abs($bin) if $bin =~ m{/};
    for my $dir (split /:/, $ENV{PATH} // '') {
        return "$dir/$bin" if length $dir && -x "$dir/$bin";
    }
    return $bin;
}

sub port     { $_[0]{port} }
sub servroot { $_[0]{root} }
sub conf     { $_[0]{conf} }
sub errlog   { $_[0]{errlog} }
sub error    { $_[0]{error} }
sub master   { $_[0]{master} }
sub workers  { $_[0]{workers} }

# removes what an earlier run left in the server root: only the
# directories this runner makes, never the root itself
sub clean {
    my $self = shift;
    die "CibaNginx: clean() while nginx runs\n" if $self->{master};

    for my $d (qw(conf logs html client_body_temp proxy_temp fastcgi_temp
                  uwsgi_temp scgi_temp state))
    {
        remove_tree("$self->{root}/$d") if -e "$self->{root}/$d";
    }

    make_path(map { "$self->{root}/$_" } qw(conf logs html state));
    $Roots{ $self->{root} } = 1 if $$ == $OwnerPid;
}

# nginx -V: the version as 1.022001 (nginx >= 1.19.5 takes -e)
sub _version {
    my $self = shift;
    my $out = `'$self->{binary}' -V 2>&1`;
    die "CibaNginx: cannot run \"$self->{binary} -V\": $out\n" if $? != 0;
    $out =~ m{nginx[^/]*/(\d+)\.(\d+)\.(\d+)}
        or die "CibaNginx: cannot parse \"nginx -V\": $out\n";
    return sprintf '%d.%03d%03d', $1, $2, $3;
}

# write_config(http => '...', server => '...', main => '...',
#              listen => 'reuseport', workers => N)
sub write_config {
    my ($self, %o) = @_;

    $self->{workers} = $o{workers} if defined $o{workers};

    my $r = $self->{root};
    my $conf = join '', map { "load_module $_;\n" } @{ $self->{modules} };

    $conf .= "user root;\n" if $> == 0;
    $conf .= "daemon on;\n"
           . "master_process on;\n"
           . "worker_processes $self->{workers};\n"
           . "error_log $self->{errlog} $self->{level};\n"
           . "pid $self->{pidfile};\n";

    # sanitizer settings must reach a binary upgrade's new master too
    $conf .= join '', map { "env $_;\n" }
                      grep { defined $ENV{$_} }
                      qw(ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS);

    $conf .= ($o{main} // '') . "\n"
           . "events {\n"
           . "    worker_connections $self->{conns};\n"
           . "    accept_mutex off;\n"
           . "}\n"
           . "http {\n"
           . "    access_log $self->{acclog};\n"
           . "    default_type text/plain;\n";

    $conf .= "    ${_}_temp_path $r/${_}_temp;\n"
        for qw(client_body proxy fastcgi uwsgi scgi);

    my $listen = "127.0.0.1:$self->{port}";
    $listen .= " $o{listen}" if $o{listen};

    $conf .= ($o{http} // '') . "\n"
           . "    server {\n"
           . "        listen $listen;\n"
           . "        server_name localhost;\n"
           . ($o{server} // '') . "\n"
           . "    }\n"
           . "}\n";

    open my $fh, '>', $self->{conf} or die "CibaNginx: $self->{conf}: $!\n";
    print $fh $conf;
    close $fh or die "CibaNginx: $self->{conf}: $!\n";

    return $conf;
}

# ---- processes ---------------------------------------------------------------

# (alive, parent pid) from /proc; a zombie counts as dead
sub _stat {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return (0, undef);
    my $stat = <$in> // '';
    my ($state, $ppid) = $stat =~ /.*\)\s+(\S)\s+(\d+)/s or return (0, undef);
    return ($state !~ /^[ZXx]$/ ? 1 : 0, $ppid);
}

sub alive { return (_stat($_[1] // $_[0]))[0] }

sub _children {
    my $ppid = shift;
    opendir my $dh, '/proc' or return ();
    my @pids = sort { $a <=> $b }
               grep { /^\d+$/ && ((_stat($_))[1] // -1) == $ppid
                      && (_stat($_))[0] } readdir $dh;
    return @pids;
}

# the pids of the current master's live workers
sub worker_pids {
    my $self = shift;
    return () unless $self->{master};
    my @pids = _children($self->{master});
    return @pids;
}

sub _pid_from_file {
    my $self = shift;
    open my $in, '<', $self->{pidfile} or return undef;
    my $pid = <$in> // '';
    return $pid =~ /^(\d+)\s*$/ ? $1 : undef;
}

sub _log_size { return -s $_[0]{errlog} // 0 }

sub _spawn {
    my ($self, @cmd) = @_;
    my $pid = fork;
    die "CibaNginx: fork: $!\n" unless defined $pid;
    return $pid if $pid;
    # the child: exec nginx (never return into the test)
    setpgrp(0, 0);
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>>', $self->{stderr};
    exec { $cmd[0] } @cmd;
    warn "cannot exec $cmd[0]: $!\n";
    POSIX::_exit(127);
}

# Starts nginx and waits until the master has written its pid file, all
# its workers run and the port accepts connections.  True on success;
# otherwise false, with the reason in error().
sub start {
    my $self = shift;

    $self->{error} = '';
    die "CibaNginx: already running (master $self->{master})\n"
        if $self->{master} && alive($self->{master});

    # a stale pid file (after kill -9) must not be taken for the new one
    unlink $self->{pidfile};

    my @cmd = ($self->{binary}, '-p', "$self->{root}/", '-c', $self->{conf});
    push @cmd, '-e', $self->{errlog} if $self->{version} >= 1.019005;

    my $deadline = time + $self->{timeout};

    while (1) {
        my $off = $self->_log_size;
        my $pid = $self->_spawn(@cmd);
        waitpid $pid, 0;
        my $rc = $?;

        if ($rc == 0) {
            last;
        }

        my $why = $self->log_since($off);
        $why = join '', grep { /\[(?:emerg|alert|crit)\]/ } split /^/, $why;
        if (open my $in, '<', $self->{stderr}) {
            $why .= join '', <$in>;
        }

        # the previous nginx may hold the port for a moment
        if ($why =~ /Address already in use/ && time < $deadline) {
            sleep 0.2;
            next;
        }

        $self->{error} = "nginx exited with status " . ($rc >> 8)
                         . ($why ne '' ? ":\n$why" : '');
        return 0;
    }

    my $master;
    until (defined($master = $self->_pid_from_file)) {
        if (time > $deadline) {
            $self->{error} = 'no pid file written';
            return 0;
        }
        sleep 0.02;
    }

    $self->{master} = $master;
    $Running{$master} = $self;

    until (@{[ $self->worker_pids ]} >= $self->{workers}
           && $self->_port_open)
    {
        if (time > $deadline || !alive($master)) {
            $self->{error} = 'nginx did not come up: master '
                             . (alive($master) ? 'alive' : 'gone')
                             . ', workers ' . join(' ', $self->worker_pids);
            return 0;
        }
        sleep 0.02;
    }

    return 1;
}

sub _port_open {
    my $self = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 1);
    return 0 unless $s;
    close $s;
    return 1;
}

# Reload (HUP): waits until every old worker is gone and the new
# generation of workers runs.  True on success; otherwise error() says why
# (for example an [emerg] in the new configuration).
sub reload {
    my $self = shift;

    $self->{error} = '';
    my $master = $self->{master} or die "CibaNginx: not running\n";
    my @old = $self->worker_pids;
    my %old = map { ($_ => 1) } @old;
    my $off = $self->_log_size;

    kill 'HUP', $master or die "CibaNginx: kill HUP $master: $!\n";

    my $deadline = time + $self->{timeout};

    while (1) {
        my @now = $self->worker_pids;
        my @new = grep { !$old{$_} } @now;

        last if !grep({ alive($_) } @old) && @new >= $self->{workers};

        my $log = $self->log_since($off);
        if ($log =~ /\[emerg\].*/) {
            $self->{error} = "reload failed: $&";
            return 0;
        }

        if (time > $deadline || !alive($master)) {
            $self->{error} = 'no new generation of workers: old '
                             . join(' ', grep { alive($_) } @old)
                             . ', now ' . join(' ', @now);
            return 0;
        }

        sleep 0.02;
    }

    return $self->_port_open ? 1 : 0;
}

# A binary upgrade, done in full: USR2 (the master execs the binary
# again; the new master inherits the listening sockets), then QUIT to the
# old master once the new one runs.  Waits until the old master and its
# workers are gone.  True on success; otherwise error() says why.
#
# With keep_old => 1 it returns once the new master and its workers run,
# the old master and its workers still running (and serving: both
# generations accept on the same sockets); finish_upgrade() then sends
# QUIT to the old master and waits as above.
sub upgrade {
    my ($self, %o) = @_;

    $self->{error} = '';
    die "CibaNginx: an upgrade is not finished\n" if $self->{old_master};
    my $old = $self->{master} or die "CibaNginx: not running\n";
    my $deadline = time + $self->{timeout};

    kill 'USR2', $old or die "CibaNginx: kill USR2 $old: $!\n";

    my $new;
    while (1) {
        $new = $self->_pid_from_file;
        last if defined $new && $new != $old
                && @{[ grep { $_ != $old } _children($new) ]}
                   >= $self->{workers};
        if (time > $deadline) {
            $self->{error} = 'no new master after USR2';
            return 0;
        }
        sleep 0.02;
    }

    $self->{master} = $new;
    $Running{$new} = $self;
    $self->{old_master} = $old;

    return 1 if $o{keep_old};

    return $self->finish_upgrade;
}

# QUIT to the old master of an upgrade(keep_old => 1); waits until it and
# its workers are gone
sub finish_upgrade {
    my $self = shift;

    $self->{error} = '';
    my $old = delete $self->{old_master}
        or die "CibaNginx: no upgrade to finish\n";
    # the old master's children: its workers and the new master
    my @old = ($old, grep { $_ != ($self->{master} // 0) } _children($old));
    my $deadline = time + $self->{timeout};

    kill 'QUIT', $old;
    sleep 0.02 while grep({ alive($_) } @old) && time < $deadline;

    delete $Running{$old};

    if (my @left = grep { alive($_) } @old) {
        kill 'KILL', @left;
        $self->{error} = "the old master did not exit: killed @left";
        return 0;
    }

    return 1;
}

# Graceful stop (QUIT); KILL after the timeout.  True when nginx exited by
# itself.
sub stop {
    my ($self, %o) = @_;

    my $master = $self->{master} or return 1;
    my $clean = _stop_pid($master, $o{timeout} // $self->{timeout});

    delete $Running{$master};
    $self->{master} = undef;

    return $clean;
}

sub _stop_pid {
    my ($master, $timeout) = @_;

    return 1 unless alive($master);

    # the workers (an old master's children include the new master)
    my @workers = grep { !$Running{$_} } _children($master);

    kill 'QUIT', $master;

    my $deadline = time + $timeout;
    sleep 0.02 while grep({ alive($_) } $master, @workers)
                     && time < $deadline;

    my @left = grep { alive($_) } $master, @workers;

    if (@left) {
        warn "CibaNginx: nginx did not exit after SIGQUIT; killing @left\n";
        kill 'KILL', @left;
        $deadline = time + 5;
        sleep 0.02 while grep({ alive($_) } @left) && time < $deadline;
    }

    return !@left;
}

# A crash: SIGKILL to the master and its workers at once (nothing is saved,
# the pid file stays).
sub kill9 {
    my $self = shift;

    my $master = $self->{master} or return;
    my @all = ($master, _children($master));

    kill 'KILL', @all;

    my $deadline = time + 5;
    sleep 0.02 while grep({ alive($_) } @all) && time < $deadline;

    delete $Running{$master};
    $self->{master} = undef;

    return !grep { alive($_) } @all;
}

# Stops every nginx still running, then removes the state directories:
# the real Test::Nginx starts the next file by removing only conf, html,
# logs, *_temp (and caches) from the server root, then rmdir()s it, and
# bails out on anything else left there.
sub _cleanup {
    for my $pid (keys %Running) {
        eval { _stop_pid($pid, 5) };
        delete $Running{$pid};
    }
    for my $root (sort keys %Roots) {
        remove_tree("$root/state") if -e "$root/state";
        delete $Roots{$root};
    }
}

END {
    if ($$ == $OwnerPid) {
        local $?;
        _cleanup();
    }
}

for my $sig (qw(INT TERM)) {
    $SIG{$sig} = sub {
        if ($$ == $OwnerPid) {
            _cleanup();
        }
        $SIG{$sig} = 'DEFAULT';
        kill $sig, $$;
        POSIX::_exit(128 + ($sig eq 'INT' ? 2 : 15));
    };
}

# ---- logs --------------------------------------------------------------------

sub log_offset { return $_[0]->_log_size }

sub log_since {
    my ($self, $off) = @_;
    open my $in, '<', $self->{errlog} or return '';
    seek $in, $off // 0, 0;
    local $/;
    return <$in> // '';
}

sub error_log { return $_[0]->log_since(0) }

# what must never appear: crashed workers, sanitizer reports
sub crash_reports {
    my $self = shift;
    my $text = $self->error_log;
    if (open my $in, '<', $self->{stderr}) {
        local $/;
        $text .= <$in> // '';
    }
    return join '', grep {
        /exited on signal|AddressSanitizer|LeakSanitizer|runtime error:/
    } split /^/, $text;
}

# ---- HTTP --------------------------------------------------------------------

sub _build {
    my ($self, $method, $uri, %o) = @_;
    my @h = ref $o{headers} eq 'HASH' ? %{ $o{headers} } : @{ $o{headers} || [] };
    my $body = $o{body};

    my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n";
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        $req .= "$k: $v\r\n";
    }
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    return $req . "\r\n" . ($body // '');
}

sub _parse {
    my $raw = shift;
    return (undef, {}, '') unless defined $raw && length $raw;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    $body //= '';
    my ($line, @lines) = split /\r\n/, $head;
    my ($status) = ($line // '') =~ m{^HTTP/\d\.\d\s+(\d{3})};

    my %h;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $k = lc $k;
        $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
    }

    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr $body, 0, $n, '';
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }

    return ($status, \%h, $body);
}

sub _connect {
    my $self = shift;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $self->{port},
                                 Proto => 'tcp', Timeout => 5);
}

# request($method, $uri, headers => [k => v, ...], body => $body,
#         timeout => 10): ($status, \%headers (lower-case names), $body);
# $status is undef when there was no answer (the reason is in error())
sub request {
    my ($self, $method, $uri, %o) = @_;
    my @res = $self->parallel([ { %o, method => $method, uri => $uri } ],
                              timeout => $o{timeout});
    return @{ $res[0] };
}

# Sends the requests at once: connects all, writes every request but its
# last byte, then the last bytes in a tight loop, so that they are all in
# flight together; then reads every answer.  Returns a list of
# [ $status, \%headers, $body ] in the order of the requests.
sub parallel {
    my ($self, $reqs, %o) = @_;
    my $timeout = $o{timeout} // 30;

    my (@socks, @raw, @out);
    $self->{error} = '';

    for my $i (0 .. $#$reqs) {
        my $r = $reqs->[$i];
        $raw[$i] = $self->_build($r->{method} // 'GET', $r->{uri} // '/',
                                 %$r);
        $socks[$i] = $self->_connect;
        $self->{error} .= "request $i: connect: $!\n" unless $socks[$i];
        $out[$i] = '';
    }

    for my $i (0 .. $#$reqs) {
        my $s = $socks[$i] or next;
        _write_all($s, substr($raw[$i], 0, -1)) or undef $socks[$i];
    }

    for my $i (0 .. $#$reqs) {
        my $s = $socks[$i] or next;
        _write_all($s, substr($raw[$i], -1)) or undef $socks[$i];
    }

    my $sel = IO::Select->new;
    my %idx;
    for my $i (0 .. $#socks) {
        next unless $socks[$i];
        $socks[$i]->blocking(0);
        $sel->add($socks[$i]);
        $idx{ fileno $socks[$i] } = $i;
    }

    my $deadline = time + $timeout;

    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read($deadline - time)) {
            my $i = $idx{ fileno $s };
            my $n = sysread $s, my $buf, 65536;
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EINTR};
            }
            if (!$n) {
                $sel->remove($s);
                close $s;
                next;
            }
            $out[$i] .= $buf;
        }
    }

    if ($sel->count) {
        $self->{error} .= $sel->count . " answers timed out\n";
        close $_ for $sel->handles;
    }

    return map { [ _parse($_) ] } @out;
}

sub _write_all {
    my ($s, $data) = @_;
    while (length $data) {
        my $n = syswrite $s, $data;
        return 0 unless defined $n;
        substr $data, 0, $n, '';
    }
    return 1;
}

1;
