package Test::Nginx::Util;

# The engine of the project's own, from-scratch replacement for OpenResty's
# Test::Nginx::Socket: configuration, server root, nginx process management,
# the HTTP client and every check.  Test::Nginx::Socket (next to this file)
# only glues it to Test::Base; its POD documents the supported subset and
# where this runner deliberately differs from the real one.
#
# Package variables keep the real harness's names ($ServRoot, $HtmlDir,
# $PidFile, $ServerPort, ...) so that `--- init` code and .t files that refer
# to $Test::Nginx::Util::Something work under both.

use strict;
use warnings;

use Exporter qw(import);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use HTTP::Response ();
use IO::Select ();
use IO::Socket::INET ();
use List::Util qw(shuffle);
use POSIX qw(WNOHANG);
use Scalar::Util qw(looks_like_number);
use Test::More ();
use Test::LongString ();
use Time::HiRes qw(sleep time);

our $VERSION = '0.01';

our @EXPORT = qw(
    run_tests repeat_each no_shuffle no_root_location no_long_string
    log_level add_block_preprocessor add_cleanup_handler master_on master_off
    master_process_enabled workers worker_connections server_port
    server_port_for_client server_root html_dir timeout env_to_nginx
    config_preamble bail_out is_str
    $ServerPort $ServerPortForClient $ServRoot $PidFile $ConfFile $ErrLogFile
    $NginxVersion $RepeatEach $NoLongString $ServerAddr $ServerName
);

# ---- settings (environment first, then the .t file's helper calls) --------

our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $ServerAddr           = '127.0.0.1';    # where the client connects
our $ServerName           = 'localhost';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || port_of($ServerPort);
our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoRootLocation       = 0;
our $NoLongString         = 0;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $UseValgrind          = $ENV{TEST_NGINX_USE_VALGRIND};
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES} || '';
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ConfigPreamble       = '';
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers);
our $NginxVersion;                          # e.g. 1.022001

our $ServRoot   = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

# ---- state ------------------------------------------------------------------

our $NginxPid;              # the nginx (master) process we started
our $NginxIsChild = 0;      # true when it runs in the foreground (valgrind)
our $ErrLogFilePos = 0;     # error.log offset already seen by the checks
my $OwnerPid = $$;          # forked helpers must not clean up on exit

sub port_of { my $p = shift; $p =~ s/^.*://; return $p }

# ---- helpers the .t files call ----------------------------------------------

sub repeat_each (@)        { $RepeatEach = shift if @_; $RepeatEach }
sub no_shuffle ()          { $NoShuffle = 1 }
sub no_root_location ()    { $NoRootLocation = 1 }
sub no_long_string ()      { $NoLongString = 1 }
sub log_level (@)          { $LogLevel = shift if @_; $LogLevel }
sub master_on ()           { $MasterProcessEnabled = 'on' }
sub master_off ()          { $MasterProcessEnabled = 'off' }
sub workers (@)            { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConnections = shift if @_; $WorkerConnections }
sub timeout (@)            { $Timeout = shift if @_; $Timeout }
sub server_root ()         { $ServRoot }
sub html_dir ()            { $HtmlDir }
sub env_to_nginx (@)       { push @EnvToNginx, @_ }
sub config_preamble ($)    { $ConfigPreamble = shift }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }

sub master_process_enabled (@) {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled;
}

sub server_port (@) {
    if (@_) {
        $ServerPort = shift;
        $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || port_of($ServerPort);
    }
    return $ServerPort;
}

sub server_port_for_client (@) {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc) if ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return Test::LongString::is_string($got, $expected, $desc);
}

# ---- the main loop ----------------------------------------------------------

# Sections of the real harness that this runner does not implement: a block
# using one is refused loudly instead of being half-tested.
my @Unsupported = qw(
    raw_request pipelined_requests raw_request_middle_delay request_eval
    response_body_eval response_body_filters raw_response_headers_like
    raw_response_headers_unlike access_log no_access_log grep_error_log
    grep_error_log_out shutdown_error_log no_shutdown_error_log tcp_listen
    tcp_reply tcp_query tcp_query_len tcp_reply_delay tcp_shutdown udp_listen
    udp_reply udp_query stap stap_out stap_out_like stap_out_unlike http2 http3
    curl curl_error curl_options ignore_response abort shutdown todo todo_nginx
    skip_eval skip_openssl skip_nginx2 skip_slave charset server_name
    error_log_file server_addr_for_client http09 reload_fails
);

sub run_tests () {
    $NginxVersion = nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort unless defined $ENV{TEST_NGINX_SERVER_PORT};
    for my $sig (qw(INT TERM HUP)) {
        next if ref $SIG{$sig};    # the .t file has its own handler
        $SIG{$sig} = sub { warn "caught SIG$sig: stopping nginx\n"; exit 1 };
    }

    stop_nginx('startup');    # a leftover from an interrupted earlier run
    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_block($block);
    }
    cleanup();
}

sub run_block {
    my $block = shift;
    my $name = $block->name;

    for my $s (@Unsupported) {
        bail_out("$name - --- $s is not supported by the project's "
                 . "Test::Nginx replacement (t/lib)") if exists $block->{$s};
    }

    local $LogLevel = $block->log_level || $LogLevel;
    my %rand_ports;
    my $config = expand_env(scalar $block->config, $name, \%rand_ports);
    bail_out("$name - No '--- config' section specified") unless defined $config;

    if (my ($n, $reason) = nginx_skip($block)) {
        run_init($block);
        for (1 .. $RepeatEach) { SKIP: { Test::More::skip("$name - $reason", $n) } }
        return;
    }

    return run_must_die($block, $config, \%rand_ports) if defined $block->must_die;

    my $foreground = $UseValgrind ? 1 : 0;
    setup_server_root($block, $config, \%rand_ports, $foreground);
    if (my $why = start_nginx($name, $foreground)) {
        Test::More::fail("$name - nginx failed to start: $why");
        Test::More::diag(startup_errors());
        stop_nginx($name);
        return;
    }

    run_init($block);
    $ErrLogFilePos = 0;
    for my $rep (0 .. $RepeatEach - 1) {
        write_user_files($block, \%rand_ports) if $rep > 0;
        run_requests($block, $rep);
    }

    stop_nginx($name);
    check_valgrind($name) if $foreground;
}

sub run_init {
    my $block = shift;
    my $code = $block->init;
    return unless $code;
    eval $code;     # in this package, like the real harness
    bail_out($block->name . " - init failed: $@") if $@;
}

# `--- must_die`: nginx has to fail to start (with the given exit code when
# the section holds a number); error_log / no_error_log then apply to the
# startup messages.  Never run under valgrind, always with daemon on.
sub run_must_die {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;
    my $must_die = $block->must_die;

    setup_server_root($block, $config, $rand_ports, 0);
    $ErrLogFilePos = 0;
    for my $rep (0 .. $RepeatEach - 1) {
        my $pid = spawn(nginx_command(0));
        waitpid $pid, 0;
        my $status = $?;
        if (looks_like_number($must_die)) {
            Test::More::is($must_die, $status >> 8, "$name - die with the expected exit code");
        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }
        check_error_log($block, $rep);
        if ($status == 0) {
            warn "WARNING: $name - nginx must die but it does not; killing it (req $rep)\n";
            wait_for_pid_file(5);
            stop_nginx($name);
        }
    }
}

# ---- server root and nginx.conf ---------------------------------------------

sub setup_server_root {
    my ($block, $config, $rand_ports, $foreground) = @_;
    remove_tree($ConfDir, $HtmlDir, $LogDir, glob("$ServRoot/*_temp"),
                glob("$ServRoot/*_cache"));
    make_path($ConfDir, $HtmlDir, $LogDir);
    write_file("$HtmlDir/index.html", '<html><head><title>It works!</title>'
               . '</head><body>It works!</body></html>');
    write_user_files($block, $rand_ports);
    write_config($block, $config, $rand_ports, $foreground);
}

sub write_file {
    my ($path, $data) = @_;
    open my $out, '>', $path or bail_out("Cannot open $path for writing: $!");
    binmode $out;
    print $out $data;
    close $out or bail_out("Cannot write $path: $!");
}

# `--- user_files`: ">>> name [touch -t date]" lines, each followed by the
# file's content; relative names are under html/.  May also be an array of
# [name, content, date] via eval.
sub write_user_files {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    }
    bail_out("$name - --- user_files must be a string or an ARRAY")
        unless ref $files eq 'ARRAY';

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        make_path($1) if $path =~ m{(.*)/} && !-d $1;
        write_file($path, expand_env($body // '', $name, $rand_ports));
        if ($date) {
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - touch -t $date $path failed");
        }
    }
}

sub write_config {
    my ($block, $config, $rand_ports, $foreground) = @_;
    my $name = $block->name;
    my %sect = map { ($_ => expand_env(scalar $block->$_, $name, $rand_ports) // '') }
               qw(main_config http_config post_main_config);
    my $daemon = $foreground ? 'off' : 'on';

    my $conf = join '', map { "load_module $_;\n" } split ' ', $LoadModules;
    $conf .= <<"_EOC_";
worker_processes  $Workers;
daemon $daemon;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
_EOC_
    $conf .= /\s/ ? "env '$_';\n" : "env $_;\n" for @EnvToNginx;

    # keep nginx away from its compiled-in temp directories
    my $temp_paths = '';
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        $temp_paths .= "    ${t}_temp_path $ServRoot/${t}_temp;\n"
            unless $sect{http_config} =~ /\b${t}_temp_path\b/;
    }

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    $conf .= <<"_EOC_";

$sect{main_config}

http {
    access_log $AccLogFile;

    default_type text/plain;
    keepalive_timeout  68;

$temp_paths
$sect{http_config}

    server {
        listen          $ServerPort;
        server_name     '$ServerName';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$sect{post_main_config}

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
_EOC_
    $conf .= "user root;\n" if $> == 0;
    write_file($ConfFile, $conf);
}

# $TEST_NGINX_* expansion; $TEST_NGINX_RAND_PORT_N picks a free port once
# per block.  An undefined variable is fatal, as in the real harness.
sub expand_env {
    my ($text, $name, $rand_ports) = @_;
    return $text unless defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $rand_ports->{$var} //= free_port($name, $rand_ports);
        } else {
            defined $ENV{$var} or bail_out("$name - No environment $var defined.\n");
            $ENV{$var};
        }
    }ge;
    return $text;
}

sub free_port {
    my ($name, $rand_ports) = @_;
    my %used = map { ($_ => 1) } port_of($ServerPort), values %$rand_ports;
    for (1 .. 1000) {
        my $port = 1985 + int rand 63550;
        next if $used{$port};
        my $sock = IO::Socket::INET->new(LocalAddr => $ServerAddr,
                                         LocalPort => $port, Proto => 'tcp')
            or next;
        close $sock;
        return $port;
    }
    bail_out("$name - Cannot find an available listening port number");
}

# ---- nginx processes --------------------------------------------------------

sub nginx_version {
    my $out = `'$NginxBinary' -V 2>&1`;
    bail_out("Failed to run \"$NginxBinary -V\": $out") if $? != 0;
    $out =~ m{nginx[^/]*/(\d+)\.(\d+)\.(\d+)}
        or bail_out("Failed to parse the output of \"nginx -V\": $out");
    return canon_version($1, $2, $3);
}

sub canon_version { sprintf '%d.%03d%03d', @_ }

# `--- skip_nginx: N: <op> x.y.z[: reason]` -> (N, reason) when skipping.
sub nginx_skip {
    my $block = shift;
    my $spec = $block->skip_nginx;
    return unless defined $spec;
    $spec =~ m{^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*?))?\s*$}
        or bail_out($block->name . " - Invalid --- skip_nginx spec: $spec");
    my ($n, $op, $reason) = ($1, $2, $6 || "nginx version $2 $3.$4.$5");
    my ($have, $want) = ($NginxVersion, canon_version($3, $4, $5));
    my %cmp = ('<' => $have < $want, '<=' => $have <= $want,
               '>' => $have > $want, '>=' => $have >= $want);
    return $cmp{$op} ? ($n, $reason) : ();
}

# The real harness runs valgrind with these options when
# TEST_NGINX_USE_VALGRIND is a number; any other value gives the options.
sub valgrind_prefix {
    my @cmd = ('valgrind', '-q', "--log-file=$LogDir/valgrind.%p.log");
    if ($UseValgrind =~ /^\d+$/) {
        push @cmd, qw(--tool=memcheck --leak-check=full --show-possibly-lost=no
                      --num-callers=100 --gen-suppressions=all);
        push @cmd, '--suppressions=./valgrind.suppress' if -f 'valgrind.suppress';
    } else {
        push @cmd, split ' ', $UseValgrind;
    }
    return @cmd;
}

sub nginx_command {
    my $foreground = shift;
    my @cmd = ($NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile);
    # -e sends startup messages to error.log even when the binary was built
    # with --error-log-path=stderr (Debian's), so must_die can check them
    push @cmd, '-e', $ErrLogFile if $NginxVersion >= 1.019005;
    unshift @cmd, valgrind_prefix() if $foreground;
    return @cmd;
}

sub spawn {
    my @cmd = @_;
    my $pid = fork;
    bail_out("fork() failed: $!") unless defined $pid;
    return $pid if $pid;
    setpgrp(0, 0);    # keep a terminal's Ctrl-C for the runner
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>>', "$LogDir/nginx.stderr";
    exec { $cmd[0] } @cmd;
    warn "cannot exec $cmd[0]: $!\n";
    POSIX::_exit(127);
}

# Starts nginx (daemon, or in the foreground under valgrind) and waits until
# it has written its pid file, i.e. its listening sockets are open.  Returns
# undef on success, otherwise why it failed.
sub start_nginx {
    my ($name, $foreground) = @_;
    my $deadline = time + ($foreground ? 60 : 10);
    while (1) {
        my $why;
        my $pid = spawn(nginx_command($foreground));
        if ($foreground) {
            ($NginxPid, $NginxIsChild) = ($pid, 1);
            while (time < $deadline) {
                return undef if pid_from_file();
                if (waitpid($pid, WNOHANG) == $pid) {
                    $why = 'exit status ' . ($? >> 8);
                    ($NginxPid, $NginxIsChild) = (undef, 0);
                    last;
                }
                sleep 0.05;
            }
            $why //= 'no pid file after 60 s';
        } else {
            waitpid $pid, 0;
            if ($? == 0) {
                return undef if wait_for_pid_file(5);
                return 'no pid file written';
            }
            $why = 'exit status ' . ($? >> 8);
        }
        # the previous nginx may still hold the port for a moment
        return $why unless startup_errors() =~ /Address already in use/
                           && time < $deadline;
        sleep 0.2;
    }
}

sub wait_for_pid_file {
    my $deadline = time + shift;
    until (defined($NginxPid = pid_from_file())) {
        return undef if time > $deadline;
        sleep 0.01;
    }
    return $NginxPid;
}

sub pid_from_file {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in> // '';
    return $pid =~ /^(\d+)\s*$/ ? $1 : undef;
}

# what nginx said about failing to start: serious error.log lines, stderr
sub startup_errors {
    my $text = '';
    if (open my $in, '<', $ErrLogFile) {
        $text .= join '', grep { /\[(?:emerg|alert|crit)\]/ } <$in>;
    }
    if (open my $in, '<', "$LogDir/nginx.stderr") {
        $text .= join '', <$in>;
    }
    return $text;
}

# process state from /proc: (alive, parent pid); zombies count as dead
sub proc_stat {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return (0, undef);
    my $stat = <$in> // '';
    my ($state, $ppid) = $stat =~ /.*\)\s+(\S)\s+(\d+)/s or return (0, undef);
    return ($state !~ /^[ZX]$/ ? 1 : 0, $ppid);
}

sub alive {
    my $pid = shift;
    waitpid $pid, WNOHANG if $NginxIsChild;
    return (proc_stat($pid))[0];
}

sub children_of {
    my $ppid = shift;
    opendir my $dh, '/proc' or return ();
    return grep { /^\d+$/ && ((proc_stat($_))[1] // -1) == $ppid } readdir $dh;
}

# QUIT, wait up to the timeout (a minute under valgrind), then KILL the
# master and any worker it left behind.
sub stop_nginx {
    my $name = shift;
    my $pid = $NginxPid;
    if (!$pid) {        # not started by us: only a pid file of an nginx
        $pid = pid_from_file() or return;
        open my $in, '<', "/proc/$pid/cmdline" or return unlink $PidFile;
        return unlink $PidFile unless <$in> =~ /nginx/;
    }
    undef $NginxPid;

    if (alive($pid)) {
        my @workers = children_of($pid);
        kill 'QUIT', $pid;
        my $deadline = time + ($UseValgrind ? 60 : $Timeout);
        sleep 0.02 while alive($pid) && time < $deadline;
        my @left = grep { alive($_) } $pid, @workers;
        if (@left) {
            warn "$name - nginx did not exit after SIGQUIT; killing @left\n";
            kill 'KILL', @left;
            $deadline = time + 5;
            sleep 0.02 while (grep { alive($_) } @left) && time < $deadline;
        }
    }
    waitpid $pid, 0 if $NginxIsChild;
    $NginxIsChild = 0;
    unlink $PidFile;
}

my $CleanedUp;
sub cleanup {
    stop_nginx('cleanup');
    return if $CleanedUp++;
    for my $handler (@CleanupHandlers) {
        eval { $handler->() };
        warn "cleanup handler failed: $@" if $@;
    }
}

END {
    if ($$ == $OwnerPid) {
        local $?;
        cleanup();
    }
}

# Valgrind's log (one file per process, kept in logs/ until the next block)
# holds nothing with -q unless it found errors; warnings are not errors.
sub check_valgrind {
    my $name = shift;
    my $report = '';
    for my $file (sort glob "$LogDir/valgrind.*.log") {
        open my $in, '<', $file or next;
        my $text = do { local $/; <$in> } // '';
        $report .= "$file:\n$text" if $text =~ /^==\d+== (?!Warning:)\S/m;
    }
    return unless $report;
    Test::More::fail("$name - no valgrind errors");
    my @lines = split /^/, $report;
    splice @lines, 200, @lines, "...\n" if @lines > 200;
    Test::More::diag(join '', @lines);
}

# ---- requests ---------------------------------------------------------------

sub run_requests {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my @reqs = build_requests($block);
    my $need_array = @reqs > 1;
    my $timeout = parse_time(scalar $block->timeout) // $Timeout;

    for my $i (0 .. $#reqs) {
        my $raw = send_request($name, $reqs[$i], $timeout);
        my $head = $reqs[$i] =~ /^\s*HEAD\s+/;
        my ($res, $raw_headers) = parse_response($name, $raw, $head);
        check_error_code($block, $res, $i, $need_array);
        check_response_headers($block, $res, $raw_headers, $i, $need_array);
        check_response_body($block, $res, $i, $rep, $need_array);
        if ($i < $#reqs) {      # the real harness checks the log per request
            sleep $block->wait if $block->wait;
            check_error_log($block, $rep);
        }
    }
    sleep $block->wait if $block->wait;
    check_error_log($block, $rep);
}

sub parse_time {
    my $t = shift;
    return undef unless defined $t;
    return $1 / 1000 if $t =~ /^(.*[^_a-zA-Z])ms$/;
    $t =~ s/([^_a-zA-Z])s$/$1/;
    return $t;
}

sub build_requests {
    my $block = shift;
    my $name = $block->name;
    my $request = $block->request;
    bail_out("$name - no --- request section") unless defined $request;
    if (!ref $request) {
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;   # leading comments
    }
    my @list = ref $request eq 'ARRAY' ? @$request : ($request);
    bail_out("$name - --- request must be a string or an array of strings")
        if (ref $request && ref $request ne 'ARRAY') || grep { ref } @list;

    my $more = $block->more_headers // '';
    my @raw;
    for my $i (0 .. $#list) {
        my $hdr = ref $more eq 'ARRAY' ? $more->[$i] : $more;
        bail_out("$name - --- more_headers lacks data for request $i")
            unless defined $hdr;
        push @raw, build_request($name, $list[$i], $hdr);
    }
    return @raw;
}

# "METHOD [URI [HTTP/x]]\n[body]" -> raw HTTP request.  A non-empty body is
# trimmed and gets a Content-Length unless more_headers sets one (or asks
# for chunked encoding).
sub build_request {
    my ($name, $req, $more) = @_;
    my ($first, $body) = $req =~ /\A([^\n]*\n?)(.*)\z/s;
    $first =~ /^\s*(\S+) *(?:(\S+) *)?(?:(\S+) *)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    my ($method, $uri, $version) = ($1, $2 // '/', $3 // 'HTTP/1.1');

    my ($headers, $chunked) = ('', 0);
    for my $line (split /\n+/, $more) {
        next if $line =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $line, 2;
        $val //= '';
        $chunked = 1 if lc $key eq 'transfer-encoding' && $val eq 'chunked';
        $headers .= "$key: $val\r\n";
    }
    if (!$chunked && $body ne '' && $headers !~ /(?:^|\n)Content-Length:/) {
        $body =~ s/^\s+|\s+$//gs;
        $headers .= 'Content-Length: ' . length($body) . "\r\n";
    }
    $headers = "Connection: close\r\n$headers" if $headers !~ /(?:^|\n)Connection/mi;
    $headers = "Host: $ServerName\r\n$headers" if $headers !~ /(?:^|\n)Host:/mi;
    return "$method $uri $version\r\n$headers\r\n$body";
}

sub connect_nginx {
    my ($name, $timeout) = @_;
    my $deadline = time + ($UseValgrind ? 30 : 5);
    while (1) {
        my $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
            PeerPort => $ServerPortForClient, Proto => 'tcp',
            Timeout => $timeout);
        return $sock if $sock;
        if (time > $deadline) {
            Test::More::fail("$name - Can't connect to $ServerAddr:"
                             . "$ServerPortForClient: $! (aborted)\n");
            return undef;
        }
        sleep 0.1;
    }
}

# Sends one request and reads until the server closes the connection; the
# timeout applies to each wait for the socket, as in the real harness.
sub send_request {
    my ($name, $req, $timeout) = @_;
    my $sock = connect_nginx($name, $timeout) or return '';
    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my ($offset, $resp) = (0, '');

    while ($offset < length $req) {
        return timed_out($name, $sock, $resp) unless $sel->can_write($timeout);
        my $n = syswrite $sock, $req, length($req) - $offset, $offset;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            warn "WARNING: $name - write failed: $!\n";
            last;
        }
        $offset += $n;
    }
    while (1) {
        return timed_out($name, $sock, $resp) unless $sel->can_read($timeout);
        my $n = sysread $sock, my $buf, 16384;
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            warn "WARNING: $name - HTTP response read failure: $!\n";
            last;
        }
        last if $n == 0;
        $resp .= $buf;
    }
    close $sock;
    return $resp;
}

sub timed_out {
    my ($name, $sock, $resp) = @_;
    close $sock;
    Test::More::fail("ERROR: client socket timed out - $name\n");
    return $resp;
}

sub parse_response {
    my ($name, $raw, $head_req) = @_;
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        $res->code(undef);
        undef $code;
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');
    my $content = $res->content // '';
    if (defined $enc && $enc eq 'chunked') {
        my $body = dechunk($name, $content);
        return (undef, undef) unless defined $body;
        $res->content($body);
    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $content < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($content) . "\n" unless $head_req;
        } elsif (length $content > $len) {
            warn "WARNING: $name - unexpected extra bytes after the body\n";
            $res->content(substr $content, 0, $len);
        }
    }
    return ($res, $raw_headers);
}

sub dechunk {
    my ($name, $raw) = @_;
    my $body = '';
    while (1) {
        if ($raw =~ /\G0[ \t]*\r\n\r\n/gc) {
            warn "WARNING: $name - unexpected extra bytes after last chunk\n"
                if $raw =~ /\G.+/gcs;
            return $body;
        }
        if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
            my ($size, $pos) = (hex $1, pos $raw);
            if (length($raw) - $pos < $size) {
                Test::More::fail("$name - invalid chunked data received "
                                 . "(not enought octets for the data section)");
                return undef;
            }
            $body .= substr $raw, $pos, $size;
            pos($raw) = $pos + $size;
            next if $raw =~ /\G\r\n/gc;
            Test::More::fail("$name - invalid chunked data received (expected CRLF).");
            return undef;
        }
        Test::More::fail($raw =~ /\G(.+)/gcs
            ? "$name - invalid chunked body received: $1"
            : "$name - no last chunk found - $raw");
        return undef;
    }
}

# ---- checks -----------------------------------------------------------------

# With several requests in a block, every expectation must be an array.
sub indexed {
    my ($name, $value, $i, $need_array) = @_;
    return $value->[$i] if ref $value eq 'ARRAY';
    bail_out("$name - You asked for many requests, the expected results "
             . "should be arrays as well.") if $need_array;
    return $value;
}

sub check_error_code {
    my ($block, $res, $i, $need_array) = @_;
    my $name = $block->name;
    my $code = ($res && $res->code) || '';
    if (defined $block->error_code_like) {
        my $pat = indexed($name, $block->error_code_like, $i, $need_array);
        Test::More::like($code, qr/$pat/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($code, indexed($name, $block->error_code, $i, $need_array),
                       "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }
}

# "Key: value" -> [Key, value]; "!Key" or a bare "Key" -> [Key, undef]
# (absent).  A repeated key keeps its last value, like the real harness.
sub parse_header_spec {
    my $spec = shift;
    my (@order, %val);
    for my $line (split /\n/, $spec) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my ($key, $val) = $line =~ s/^!\s*// ? ($line) : split /\s*:\s*/, $line, 2;
        push @order, $key unless exists $val{$key};
        $val{$key} = $val;
    }
    return map { [$_, $val{$_}] } @order;
}

sub check_response_headers {
    my ($block, $res, $raw_headers, $i, $need_array) = @_;
    my $name = $block->name;
    $raw_headers //= '';
    if (defined $block->response_headers) {
        for (parse_header_spec(indexed($name, $block->response_headers, $i, $need_array))) {
            my ($key, $val) = @$_;
            if (!defined $val) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$key\E\s*:/ms,
                                   "$name - header $key not present in the raw headers");
                next;
            }
            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
            my $actual = ($res ? $res->header($key) : undef) // '';
            Test::More::is($actual, $val, "$name - header $key ok");
        }
    } elsif (defined $block->response_headers_like) {
        for (parse_header_spec(indexed($name, $block->response_headers_like, $i, $need_array))) {
            my ($key, $val) = @$_;
            my $actual = ($res ? $res->header($key) : undef) // '';
            $val //= '';
            Test::More::like($actual, qr/^$val$/, "$name - header $key like ok");
        }
    }
}

sub check_response_body {
    my ($block, $res, $i, $rep, $need_array) = @_;
    my $name = $block->name;
    my $content = $res ? $res->content : undef;

    if (defined $block->response_body) {
        my $expected = indexed($name, $block->response_body, $i, $need_array);
        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }
        my $desc = "$name - response_body - ";
        if (ref $expected) {
            Test::More::like($content, $expected, "${desc}like (repeated req $rep, req $i)");
        } else {
            $desc .= "response is expected (repeated req $rep, req $i)";
            $NoLongString ? Test::More::is($content, $expected, $desc)
                          : Test::LongString::is_string($content, $expected, $desc);
        }
    } elsif (defined $block->response_body_like || defined $block->response_body_unlike) {
        my $type = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = indexed($name, $block->${\"response_body_$type"}, $i, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = $content // '';
        $summary =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        my $desc = "$name - response_body_$type - response is expected ($summary)";
        $type eq 'like' ? Test::More::like($content, qr/$pat/s, $desc)
                        : Test::More::unlike($content, qr/$pat/s, $desc);
    }
}

# New error.log lines since the previous check of this block.
sub error_log_data {
    sleep $TestNginxSleep * 3;    # let nginx finish its log phase
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogFilePos, 0;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in;
    return \@lines;
}

sub log_patterns {
    my $pats = shift;
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats] if ref $pats;
    chomp $pats;
    return [split /\n+/, $pats];
}

sub log_match {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

sub fmt_str {
    my $s = shift;
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

sub check_error_log {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $lines = error_log_data();

    if (defined $block->error_log) {
        my $pats = log_patterns($block->error_log);
        for my $line (@$lines) {
            for my $pat (@$pats) {
                next unless defined $pat && log_match($line, $pat);
                Test::More::pass("$name - pattern \"$pat\" matches a line in error.log (req $rep)");
                undef $pat;
            }
        }
        for my $pat (grep { defined } @$pats) {
            Test::More::fail("$name - pattern \"$pat\" should match a line in error.log (req $rep)");
        }
    }

    if (defined $block->no_error_log) {
        my $pats = log_patterns($block->no_error_log);
        my %found;
        for my $line (@$lines) {
            for my $pat (grep { defined } @$pats) {
                next unless log_match($line, $pat);
                $found{$pat} = 1;
                Test::More::fail("$name - pattern \"" . fmt_str($pat) . "\" should not match "
                                 . "any line in error.log but matches line \""
                                 . fmt_str($line) . "\" (req $rep)");
            }
        }
        for my $pat (grep { defined && !$found{$_} } @$pats) {
            Test::More::pass("$name - pattern \"" . fmt_str($pat)
                             . "\" does not match a line in error.log (req $rep)");
        }
    }

    # like the real harness: loud about serious messages nobody asked about
    my $asked = join "\n", map { ref($_) eq 'ARRAY' ? @$_ : $_ }
                grep { defined } $block->error_log, $block->no_error_log;
    for my $line (@$lines) {
        if ($line =~ /\[(alert|crit|emerg)\]/ && index($asked, "[$1") < 0) {
            warn "WARNING: $name - " . fmt_str($line) . "\n";
        }
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            Test::More::fail("$name - $l\n");
        }
    }
}

1;
