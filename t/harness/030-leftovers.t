# Self-test of the project's Test::Nginx replacement (t/lib): the checks
# tools/build/run-test-file.pl (Test::Nginx::FileGuard) makes after each
# file.  A file that leaves a process (a helper, a daemon, an nginx
# master), a writer in the server root, or an entry the real Test::Nginx
# cannot remove, fails with a message naming it; the process is killed;
# a clean file passes, and its exit status comes through.
use strict;
use warnings;

use File::Path qw(make_path);
use File::Spec ();
use File::Temp qw(tempdir);
use FindBin ();
use IO::Socket::INET ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

my $guard = File::Spec->rel2abs("$FindBin::Bin/../../tools/build/run-test-file.pl");
my $lib = File::Spec->rel2abs("$FindBin::Bin/../lib");
my $dir = tempdir(CLEANUP => 1);
my $root = "$dir/servroot";    # the fixtures' server root, not the suite's
(my $port = $ENV{TEST_NGINX_SERVER_PORT} || 1984) =~ s/^.*://;
my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';

sub slurp {
    open my $in, '<', shift or return undef;
    local $/;
    return <$in>;
}

sub alive {
    my $pid = shift;
    my $stat = slurp("/proc/$pid/stat") // return 0;
    return $stat !~ /\)\s+[ZXx]\s/;
}

# Writes a .t file and runs it under the guard; returns (exit status,
# stdout, stderr, seconds).
sub guarded {
    my ($name, $text, %env) = @_;
    my $file = "$dir/$name.t";
    open my $out, '>', $file or die $!;
    print $out $text;
    close $out;
    local $ENV{TEST_NGINX_SERVROOT} = $root;
    local $ENV{PERL5LIB} = $lib . (defined $ENV{PERL5LIB} ? ":$ENV{PERL5LIB}" : '');
    local $ENV{HARNESS_DIR} = $dir;
    local @ENV{keys %env} = values %env;
    my $t0 = time;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$dir/$name.out" or POSIX::_exit(127);
        open STDERR, '>', "$dir/$name.err" or POSIX::_exit(127);
        exec $^X, $guard, $file or POSIX::_exit(127);
    }
    waitpid $pid, 0;
    return ($? >> 8, slurp("$dir/$name.out") // '', slurp("$dir/$name.err") // '',
            time - $t0);
}

sub reset_root {
    system('rm', '-rf', $root) == 0 or die "rm -rf $root";
    make_path("$root/logs", "$root/conf", "$root/html");
}

# ---- a clean file passes, cheaply; its status comes through --------------------

reset_root();
my ($rc, $out, $err, $secs) = guarded('clean', <<'_EOT_');
use Test::More tests => 1;
mkdir "$ENV{TEST_NGINX_SERVROOT}/proxy_temp";
my $pid = fork // die;
if (!$pid) { exec 'true' or POSIX::_exit(1) }
waitpid $pid, 0;
ok 1, 'fine';
_EOT_
is($rc, 0, 'a clean file passes');
like($out, qr/^ok 1 - fine$/m, 'its TAP comes through on stdout');
is($err, '', 'and nothing is said');
cmp_ok($secs, '<', 1.5, "the checks are cheap ($secs s in all)");

($rc, $out, $err) = guarded('failing', <<'_EOT_');
use Test::More tests => 2;
ok 0, 'one';
ok 0, 'two';
_EOT_
is($rc, 2, "a file's own exit status comes through");
unlike($err, qr/left processes|changed within|cannot remove/, 'with no leftover reported');

# ---- a helper left running, writing into the server root ------------------------

reset_root();
($rc, $out, $err) = guarded('writer', <<'_EOT_');
use Test::More tests => 1;
use POSIX ();
use Time::HiRes ();
# a daemon (double fork, own session), as a helper or an nginx master is
my $pid = fork // die;
if (!$pid) {
    POSIX::setsid();
    fork and POSIX::_exit(0);
    open my $p, '>', "$ENV{HARNESS_DIR}/writer.pid" or die;
    print $p $$;
    close $p;
    $0 = 'harness-writer';
    for (1 .. 200) {
        open my $f, '>>', "$ENV{TEST_NGINX_SERVROOT}/logs/writer.log" or die;
        print $f "line $_\n";
        close $f;
        Time::HiRes::sleep(0.02);
    }
    POSIX::_exit(0);
}
waitpid $pid, 0;
Time::HiRes::sleep(0.1) until -s "$ENV{HARNESS_DIR}/writer.pid";
ok 1, 'all checks pass';
_EOT_
my $writer = slurp("$dir/writer.pid");
isnt($rc, 0, 'a file that leaves a writer behind fails');
like($out, qr/^ok 1 - all checks pass$/m, 'though all its checks passed');
like($err, qr/writer\.t: it left processes running \(killed now\): \Q$writer\E \(harness-writer\)/,
     'the process left behind is named') or diag $err;
like($err, qr{writer\.t: files under the server root changed within 0\.3 s after it ended: \Q$root\E/logs/writer\.log \(modified\)},
     'and the file it writes') or diag $err;
ok($writer && !alive($writer), 'the writer is gone afterwards');

# ---- a writer that is no process of the file: the files' check alone -------------

reset_root();
my $outside = fork // die "fork: $!";
if (!$outside) {
    # not the file's descendant; its own command line names no server root
    chdir '/';
    for (1 .. 300) {
        if (open my $f, '>>', "$root/logs/outside.log") {
            print $f "x\n";
            close $f;
        }
        sleep 0.01;
    }
    POSIX::_exit(0);
}
($rc, $out, $err) = guarded('outside', <<'_EOT_');
use Test::More tests => 1;
ok 1;
_EOT_
kill 'KILL', $outside;
waitpid $outside, 0;
isnt($rc, 0, 'a server root that changes after the file ended fails it');
like($err, qr{files under the server root changed within .*\Q$root\E/logs/outside\.log},
     'naming the file') or diag $err;

# ---- what the real Test::Nginx cannot remove --------------------------------------

reset_root();
($rc, $out, $err) = guarded('extra', <<'_EOT_');
use Test::More tests => 1;
my $r = $ENV{TEST_NGINX_SERVROOT};
mkdir "$r/state";
open my $f, '>', "$r/state/ciba.state" or die;
mkdir "$r/client_body_temp";
mkdir "$r/cache";
ok 1;
_EOT_
isnt($rc, 0, 'an entry the real Test::Nginx would not remove fails the file');
like($err, qr{extra\.t: the server root holds what the real Test::Nginx cannot remove .*: \Q$root\E/state$}m,
     'naming only that entry') or diag $err;

($rc, $out, $err) = guarded('extra-before', <<'_EOT_');
use Test::More tests => 1;
ok 1;
_EOT_
is("$rc $err", '0 ', 'what an earlier file left there does not fail the next one');

($rc, $out, $err) = guarded('extra-again', <<'_EOT_');
use Test::More tests => 1;
my $r = $ENV{TEST_NGINX_SERVROOT};
system('rm', '-rf', "$r/state") == 0 or die;
mkdir "$r/state" or die;
ok 1;
_EOT_
like($err, qr{extra-again\.t: the server root holds .*: \Q$root\E/state$}m,
     'but one that makes it again does') or diag $err;

# ---- an nginx master left running -------------------------------------------------

SKIP: {
    my $v = `'$nginx' -v 2>&1`;
    skip "no nginx to run ($nginx)", 5 if $? != 0;

    reset_root();
    open my $conf, '>', "$root/conf/nginx.conf" or die $!;
    print $conf <<"_EOC_";
daemon on;
master_process on;
worker_processes 1;
error_log $root/logs/error.log;
pid $root/logs/nginx.pid;
events { worker_connections 16; }
http {
    access_log off;
    client_body_temp_path $root/client_body_temp;
    proxy_temp_path $root/proxy_temp;
    fastcgi_temp_path $root/fastcgi_temp;
    uwsgi_temp_path $root/uwsgi_temp;
    scgi_temp_path $root/scgi_temp;
    server { listen 127.0.0.1:$port; return 204; }
}
_EOC_
    close $conf;

    ($rc, $out, $err) = guarded('nginx', <<'_EOT_', HARNESS_NGINX => $nginx);
use Test::More tests => 1;
use Time::HiRes ();
my $r = $ENV{TEST_NGINX_SERVROOT};
# a test that forgets to stop the nginx it started
is(system($ENV{HARNESS_NGINX}, '-p', "$r/", '-c', "$r/conf/nginx.conf",
          '-e', "$r/logs/error.log"), 0, 'nginx started');
Time::HiRes::sleep(0.05) until -s "$r/logs/nginx.pid";
system('cp', "$r/logs/nginx.pid", "$ENV{HARNESS_DIR}/nginx.pid");
_EOT_
    # nginx removed its pid file when the guard stopped it
    my ($master) = (slurp("$dir/nginx.pid") // '') =~ /(\d+)/;
    ok($master, 'the fixture started nginx') or diag $out, $err;
    isnt($rc, 0, 'a file that leaves nginx running fails');
    like($err, qr/nginx\.t: it left processes running \(killed now\): .*\b\Q$master\E \(nginx: master process/,
         'the master is named') or diag $err;
    like($err, qr/\(nginx: worker process\)/, 'and its worker') or diag $err;
    ok($master && !alive($master), 'the master is gone afterwards');
}

# ---- TEST_NGINX_FILE_GUARD=0 ---------------------------------------------------------

reset_root();
mkdir "$root/state";
($rc, $out, $err) = guarded('off', <<'_EOT_', TEST_NGINX_FILE_GUARD => 0);
use Test::More tests => 1;
ok 1;
_EOT_
is("$rc $err", '0 ', 'TEST_NGINX_FILE_GUARD=0 turns the checks off');

done_testing();
