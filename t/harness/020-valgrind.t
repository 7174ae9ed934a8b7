# Self-test of the project's Test::Nginx replacement (t/lib) under
# TEST_NGINX_USE_VALGRIND=1: nginx runs in the foreground under valgrind, a
# clean run passes, and valgrind's findings fail the block.  Stock nginx in
# single-process mode leaks two blocks at exit (its workers too), which
# gives a real error record without suppressions and a clean run with them.
use strict;
use warnings;

use File::Spec ();
use File::Temp qw(tempdir);
use FindBin ();
use Test::More;

plan skip_all => 'valgrind is not installed'
    unless grep { -x "$_/valgrind" } split /:/, $ENV{PATH} // '';
my $binary = $ENV{TEST_NGINX_BINARY} || 'nginx';
plan skip_all => 'valgrind cannot run an AddressSanitizer build of nginx'
    if `'$binary' -V 2>&1` =~ /-fsanitize=address/;

my $lib = File::Spec->rel2abs("$FindBin::Bin/../lib");
my $servroot = File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT} || 't/servroot');

my $fixture = <<'_EOT_';
use Test::Nginx::Socket 'no_plan';
no_shuffle();
run_tests();
__DATA__

=== TEST 1: must_die is never run under valgrind
--- config
    harness_no_such_directive;
--- must_die
--- error_log
unknown directive

=== TEST 2: simple request
--- config
    location = /t { return 200 "t\n"; }
--- request
GET /t
--- response_body
t
--- no_error_log
[error]

=== TEST 3: several requests and the error log
--- config
--- request eval
["GET /", "GET /missing"]
--- error_code eval
[200, 404]
--- error_log
[debug]
_EOT_

my $suppressions = <<'_EOT_';
{
   stock-nginx-single-process-environment
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   fun:ngx_set_environment
   ...
}
{
   stock-nginx-single-process-cycle
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   ...
   fun:ngx_single_process_cycle
}
{
   stock-nginx-worker-process
   Memcheck:Leak
   match-leak-kinds: definite
   fun:malloc
   fun:ngx_alloc
   ...
   fun:ngx_spawn_process
}
_EOT_

# Runs the fixture with valgrind from its own directory (where
# ./valgrind.suppress is looked for); returns (exit status, output).
sub run_under_valgrind {
    my $suppress = shift;
    my $dir = tempdir(CLEANUP => 1);
    open my $out, '>', "$dir/vg.t" or die $!;
    print $out $fixture;
    close $out;
    if (defined $suppress) {
        open $out, '>', "$dir/valgrind.suppress" or die $!;
        print $out $suppress;
        close $out;
    }
    local $ENV{TEST_NGINX_USE_VALGRIND} = 1;
    my $pid = open my $in, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        chdir $dir or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec $^X, "-I$lib", 'vg.t' or die "exec: $!";
    }
    my $output = do { local $/; <$in> };
    close $in;
    return ($? >> 8, $output);
}

my ($rc, $out) = run_under_valgrind($suppressions);
is($rc, 0, 'a clean run under valgrind passes') or diag $out;
unlike($out, qr/^not ok/m, 'no failed checks');
like($out, qr/^ok \d+ - \S+ TEST 1: .* - die as expected/m, 'must_die still works');
like($out, qr/^ok \d+ - \S+ TEST 3: .* - status code ok/m, 'requests are answered');

open my $conf, '<', "$servroot/conf/nginx.conf" or die $!;
like(do { local $/; <$conf> }, qr/^daemon off;$/m, 'nginx ran in the foreground');
my @logs = glob "$servroot/logs/valgrind.*.log";
ok(@logs, 'valgrind wrote its log in logs/');

($rc, $out) = run_under_valgrind(undef);
my @failed = $out =~ /^not ok \d+ - (.*)$/mg;
is(scalar @failed, 2, 'without suppressions two blocks fail') or diag $out;
is($rc, scalar @failed, 'the exit status counts them');
like($_, qr/TEST [23]: .* - no valgrind errors$/, "valgrind failure: $_") for @failed;
like($out, qr/^# ==\d+== .*definitely lost/m, "valgrind's report is shown");

done_testing();
