package Spawn;

# Runs a helper process of a test (the mock AS, the development AS, a
# node tool) with its stdout on a pipe, and reads what it says there.
#
#   my ($pid, $fh, $line) = Spawn::start([ 'node', $script, @args ],
#                                        stderr => $file, wait => 10);
#   # $line: its first line on stdout, undef when it said nothing in time
#   my ($pid, $fh, $out) = Spawn::start([ ... ], stderr_append => $file,
#                                       all => 1, wait => 120);
#   # $out: all it printed until it closed stdout (undef on timeout)
#   Spawn::finish($pid, $fh, 'KILL');   # signal (TERM), wait, close
#
# A plain pipe, not a piped open: closing the handle never waits for the
# process, so a caller may close it at once (when the process prints
# nothing more) or keep it (when it does, and must not get EPIPE).

use strict;
use warnings;

use POSIX ();

# start(\@command, stderr => $file, stderr_append => $file,
#       env => { ... }, wait => $seconds, all => 1): (pid, pipe, output)
sub start {
    my ($cmd, %o) = @_;

    pipe(my $rd, my $wr) or die "pipe: $!";

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        close $rd;
        open STDOUT, '>&', $wr or POSIX::_exit(127);
        if (defined $o{stderr}) {
            open STDERR, '>', $o{stderr} or POSIX::_exit(127);
        } elsif (defined $o{stderr_append}) {
            open STDERR, '>>', $o{stderr_append} or POSIX::_exit(127);
        }
        $ENV{$_} = $o{env}{$_} for keys %{ $o{env} || {} };
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }

    close $wr;

    my $out;

    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm($o{wait} // 10);
        if ($o{all}) {
            local $/;
            $out = <$rd> // '';
        } else {
            $out = <$rd>;
        }
        alarm 0;
    };

    undef $out if $@;

    return ($pid, $rd, $out);
}

# finish($pid, $fh, $signal): signals it (TERM), waits for it, closes its
# pipe (when given)
sub finish {
    my ($pid, $fh, $sig) = @_;

    kill $sig // 'TERM', $pid;
    waitpid $pid, 0;
    close $fh if $fh;
}

1;
