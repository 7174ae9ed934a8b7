package Test::Nginx::FileGuard;

# Part of the project's own Test::Nginx replacement (t/lib): runs one test
# file and, once it has ended, checks that it left nothing behind.  It is
# prove's --exec for every file when tools/build/run-tests.sh uses this
# runner (tools/build/run-test-file.pl); the real Test::Nginx runs never go
# through it.
#
#   exit Test::Nginx::FileGuard::run('t/080-log.t');
#
# Checks, after the file's process has exited (END blocks and all):
#
# - no process it started is alive: the runner makes itself a child
#   subreaper (prctl PR_SET_CHILD_SUBREAPER), so every process the file
#   started, daemons (an nginx master) included, stays its descendant;
#   also any process with the server root in its command line, working
#   directory or open files;
# - nothing under the server root ($TEST_NGINX_SERVROOT, t/servroot) or
#   its siblings ($TEST_NGINX_SERVROOT-*, e.g. t/servroot-flow) changes
#   during a settle time after the end (TEST_NGINX_SETTLE, seconds,
#   default 0.3): no writer is left, e.g. an nginx master that saves its
#   state file at exit;
# - the file left nothing in the server root that the real Test::Nginx
#   cannot remove: it starts each file by removing conf/, html/, logs/,
#   cache/, *_temp/, *_cache/, then rmdir()s the server root, and bails
#   out ("Can't remove t/servroot (not empty?)") when anything else is
#   there.  Only entries the file made or changed count (new, made
#   again, or their ctime changed), not what an earlier run left.
#
# Any of these fails the file: the reasons go to stderr, the leftover
# processes are killed (TERM, then KILL) and reaped so that the next file
# starts clean, and the exit status is the file's own, at least 1.
#
# Environment: TEST_NGINX_SERVROOT, TEST_NGINX_SETTLE,
# TEST_NGINX_FILE_GUARD=0 (run the file without the checks).

use strict;
use warnings;

use Config ();
use Cwd ();
use File::Find ();
use File::Spec ();
use POSIX qw(WNOHANG EINTR);
use Time::HiRes qw(sleep time);

our $VERSION = '0.01';

our $ServRoot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');
our $Settle   = $ENV{TEST_NGINX_SETTLE} // 0.3;

# what the real harness's setup_server_root() removes before rmdir()
my @Removable = (qr/^(?:conf|html|logs|cache)$/, qr/_(?:temp|cache)$/);

my $PR_SET_CHILD_SUBREAPER = 36;

# prctl(PR_SET_CHILD_SUBREAPER, 1): true on success (Linux >= 3.4)
sub become_subreaper {
    my $nr = eval { require 'syscall.ph'; &SYS_prctl() }    ## no critic
          // { x86_64 => 157, aarch64 => 167, i386 => 172 }->{
                 (split /-/, $Config::Config{archname})[0] };
    return 0 unless defined $nr;
    return syscall($nr, $PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
}

# ---- processes ----------------------------------------------------------------

# pid => [state, ppid, pgid, sid] for every process in /proc
sub proc_table {
    my %t;
    opendir my $dh, '/proc' or return \%t;
    for my $pid (grep { /^\d+$/ } readdir $dh) {
        open my $in, '<', "/proc/$pid/stat" or next;
        my $stat = <$in> // next;
        my @f = $stat =~ /.*\)\s+(\S)\s+(\d+)\s+(\d+)\s+(\d+)/s or next;
        $t{$pid} = \@f;
    }
    return \%t;
}

sub cmdline {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/cmdline" or return '?';
    my $cmd = do { local $/; <$in> } // '';
    $cmd =~ s/\0+$//;
    $cmd =~ s/\0/ /g;
    return length $cmd ? $cmd : '?';
}

# true when a process refers to one of the directories: on its command
# line, as its working directory or in an open file
sub refers_to {
    my ($pid, $dirs) = @_;
    my @refs = (cmdline($pid), readlink("/proc/$pid/cwd") // '');
    push @refs, map { readlink($_) // '' } glob("/proc/$pid/fd/*");
    for my $dir (@$dirs) {
        return 1 if grep { $_ eq $dir || index($_, "$dir/") == 0
                           || index($_, " $dir/") >= 0 } @refs;
    }
    return 0;
}

# The live processes (zombies excluded) the file left: our descendants, and
# processes (not us, not our ancestors) that use a server root.
sub leftovers {
    my ($roots) = @_;
    my $t = proc_table();
    my %kids;
    push @{ $kids{ $_->[1] } }, $_ for map { [$_, $t->{$_}[1]] } keys %$t;

    my %found;
    my @todo = ($$);
    while (defined(my $p = shift @todo)) {
        for my $k (map { $_->[0] } @{ $kids{$p} || [] }) {
            next if $found{$k}++;
            push @todo, $k;
        }
    }

    my %ancestors;
    for (my $p = $$; $p && $t->{$p} && !$ancestors{$p}++; $p = $t->{$p}[1]) {}
    for my $pid (keys %$t) {
        next if $found{$pid} || $ancestors{$pid};
        $found{$pid} = 1 if refers_to($pid, $roots);
    }

    return sort { $a <=> $b }
           grep { $t->{$_} && $t->{$_}[0] !~ /^[ZXx]$/ } keys %found;
}

sub alive {
    my $pid = shift;
    open my $in, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$in> // return 0;
    return $stat !~ /\)\s+[ZXx]\s/;
}

sub reap { 1 while waitpid(-1, WNOHANG) > 0 }

# TERM, up to 2 s, then KILL; reaps what were our children
sub kill_all {
    my @pids = @_;
    return unless @pids;
    kill 'TERM', @pids;
    my $deadline = time + 2;
    while (grep { alive($_) } @pids) {
        reap();
        last if time > $deadline;
        sleep 0.02;
    }
    if (my @left = grep { alive($_) } @pids) {
        kill 'KILL', @left;
        $deadline = time + 2;
        while ((grep { alive($_) } @left) && time < $deadline) {
            reap();
            sleep 0.02;
        }
    }
    reap();
}

# ---- files --------------------------------------------------------------------

# the server root and its existing siblings (t/servroot-flow, ...)
sub roots {
    my @roots = ($ServRoot);
    my ($vol, $parent, $base) = File::Spec->splitpath($ServRoot);
    if (opendir my $dh, File::Spec->catpath($vol, $parent, '')) {
        push @roots, grep { -d $_ && !-l $_ }
                     map { File::Spec->catpath($vol, $parent, $_) }
                     sort grep { index($_, "$base-") == 0 } readdir $dh;
    }
    return \@roots;
}

# path => "dev:ino:size:mtime:mode" for everything under the directories
sub snapshot {
    my ($roots) = @_;
    my %snap;
    for my $root (grep { -d $_ } @$roots) {
        File::Find::find({ no_chdir => 1, wanted => sub {
            my @st = Time::HiRes::lstat($_) or return;
            $snap{$_} = join ':', @st[0, 1, 7, 9, 2];
        } }, $root);
    }
    return \%snap;
}

sub changes {
    my ($before, $after) = @_;
    my @out;
    for my $path (sort keys %{ { %$before, %$after } }) {
        my ($b, $a) = ($before->{$path}, $after->{$path});
        next if defined $b && defined $a && $b eq $a;
        push @out, "$path (" . (!defined $b ? 'created'
                                : !defined $a ? 'removed' : 'modified') . ')';
    }
    return @out;
}

# entries of the server root the real Test::Nginx would not remove:
# name => "dev:ino:ctime"
sub unremovable {
    opendir my $dh, $ServRoot or return {};
    my %out;
    for my $name (readdir $dh) {
        next if $name eq '.' || $name eq '..' || grep { $name =~ $_ } @Removable;
        my @st = Time::HiRes::lstat("$ServRoot/$name") or next;
        $out{$name} = "$st[0]:$st[1]:$st[10]";
    }
    return \%out;
}

# ---- the run ------------------------------------------------------------------

# "a, b, c", at most 20 items
sub list {
    my @items = @_;
    splice @items, 20, @items, '... (' . (@items - 20) . ' more)' if @items > 21;
    return join ', ', @items;
}

# Runs the file ($^X FILE ARGS...) with our stdin, stdout and stderr; returns
# the exit status for prove.
sub run {
    my ($file, @args) = @_;
    die "usage: $0 TEST_FILE [ARGS...]\n" unless defined $file;

    my @cmd = ($^X, $file, @args);
    if (defined $ENV{TEST_NGINX_FILE_GUARD} && !$ENV{TEST_NGINX_FILE_GUARD}) {
        exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!\n";
    }

    my $subreaper = become_subreaper();
    # what an earlier run left there is not this file's doing
    my $unremovable = unremovable();

    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        exec { $cmd[0] } @cmd;
        warn "cannot exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }

    # Ctrl-C reaches the file through the terminal's process group; TERM
    # and HUP are passed on.  The file is waited for in every case.
    local $SIG{INT} = sub { };
    local $SIG{TERM} = sub { kill 'TERM', $pid };
    local $SIG{HUP} = sub { kill 'HUP', $pid };

    # reap the file, and every orphan meanwhile (as init would)
    my $status;
    while (1) {
        my $r = waitpid -1, 0;
        if ($r == $pid) { $status = $?; last }
        next if $r > 0 || $! == EINTR;
        die "waitpid: $!\n";
    }
    my $ended = time;
    reap();

    my $roots = roots();
    my @procs = map { "$_ (" . cmdline($_) . ')' } my @pids = leftovers($roots);
    my $before = snapshot($roots);
    sleep $Settle;
    my @changed = changes($before, snapshot($roots));
    my $now = unremovable();
    my @extra = map { "$ServRoot/$_" } sort grep {
        ($unremovable->{$_} // '') ne $now->{$_} } keys %$now;

    my @why;
    push @why, 'it left processes running (killed now): ' . list(@procs)
        if @procs;
    push @why, 'files under the server root changed within '
               . "${Settle} s after it ended: " . list(@changed)
        if @changed;
    push @why, 'the server root holds what the real Test::Nginx cannot '
               . 'remove (it removes conf, html, logs, cache, *_temp and '
               . '*_cache, then rmdir()s the server root): '
               . join(', ', @extra)
        if @extra;
    push @why, 'the runner could not become a child subreaper: only '
               . 'processes that use the server root were looked for'
        if !$subreaper && @why;

    kill_all(@pids);

    my $rc = $status & 127 ? 128 + ($status & 127) : $status >> 8;
    return $rc unless @why;

    print STDERR map { "# $file: $_\n" } @why;
    printf STDERR "# %s: checked in %.2f s (TEST_NGINX_SETTLE=%s)\n",
        $file, time - $ended, $Settle;
    return $rc || 1;
}

1;
