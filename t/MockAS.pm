package MockAS;

# Starts and drives the scriptable mock authorization server
# (tools/mock-as/mock-as.mjs) for plain-Perl and Test::Nginx test files.
#
#   MockAS::start($port, stderr => $file, verbose => 1);  # dies on failure
#   my $answer = MockAS::call(POST => '/_admin/approve', { ... });
#   MockAS::stop();                                       # also at END
#
# The mock's stdout pipe and pid live in package variables: file-scoped
# lexicals are freed before END blocks run, and closing the pipe then
# would wait for the mock forever.

use strict;
use warnings;

use File::Basename qw(dirname);
use Cwd qw(abs_path);
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();

our ($Pid, $Out, $Port, $Owner);

my $Script = abs_path(dirname(__FILE__) . '/../tools/mock-as/mock-as.mjs');
my $Json = JSON::PP->new->canonical;

sub start {
    my ($port, %o) = @_;

    my $pid = open(my $fh, '-|') // die "fork: $!";

    if ($pid == 0) {
        if ($o{stderr}) {
            open STDERR, '>', $o{stderr} or POSIX::_exit(127);
        }

        exec 'node', $Script, '--port', $port,
             ($o{verbose} ? ('--verbose') : ())
            or POSIX::_exit(127);
    }

    my $line;

    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 10;
        $line = <$fh>;
        alarm 0;
    };

    if (!defined $line
        || $line !~ /^mock-as listening on 127\.0\.0\.1:(\d+)$/)
    {
        kill 'TERM', $pid;
        waitpid $pid, 0;
        die "the mock AS did not start on port $port\n";
    }

    ($Pid, $Out, $Port, $Owner) = ($pid, $fh, $1, $$);

    return $Port;
}

sub stop {
    # only the process that started it (not a forked test child)
    return unless $Pid && $$ == $Owner;

    kill 'TERM', $Pid;
    waitpid $Pid, 0;
    close $Out;
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

END { local $?; stop() }

1;
