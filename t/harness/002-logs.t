# Self-test of the project's Test::Nginx replacement (t/lib): error_log and
# no_error_log, log levels, wait and init.
use FindBin ();
use lib "$FindBin::Bin/../lib";    # always this runner, even if the real one is installed
use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: error_log with plain strings (default level: debug)
--- config
--- request
GET /marker-one-missing
--- error_code: 404
--- error_log
marker-one-missing" failed (2: No such file or directory)
[debug]



=== TEST 2: only this block's lines count
--- config
--- request
GET /
--- no_error_log
marker-one-missing
[error]



=== TEST 3: qr// and arrays through eval
--- config
--- request
GET /marker-two
--- error_code: 404
--- error_log eval
[qr/open\(\) ".*marker-two" failed/, "[error]"]
--- no_error_log eval
qr/marker-one/



=== TEST 4: --- log_level
--- config
--- log_level: warn
--- request
GET /warn-level-missing
--- error_code: 404
--- error_log
[error]
--- no_error_log
[debug]
[info]



=== TEST 5: several requests: the log is checked after each of them
--- config
--- request eval
["GET /first-missing", "GET /second-missing"]
--- error_code eval
[404, 404]
--- error_log eval
qr/\[error\].*-missing" failed/
--- no_error_log
[crit]



=== TEST 6: wait (checked by the next block's init)
--- config
    location = /t { return 200 "t\n"; }
--- init
$main::harness_t0 = Time::HiRes::time();
--- request
GET /t
--- wait: 0.5
--- response_body
t



=== TEST 7: init runs after nginx started, before the requests
--- config
--- init
Test::More::cmp_ok(Time::HiRes::time() - $main::harness_t0, '>=', 0.5,
                   'the previous block waited');
open my $out, '>', "$Test::Nginx::Util::HtmlDir/from-init.txt" or die $!;
print $out "written by init\n";
close $out;
--- request
GET /from-init.txt
--- response_body
written by init
