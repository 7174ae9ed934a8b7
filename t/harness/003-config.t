# Self-test of the project's Test::Nginx replacement (t/lib): the config
# sections and $TEST_NGINX_* expansion, must_die, skip_nginx, user_files,
# add_block_preprocessor, log_level() and an explicit plan.
use FindBin ();
use lib "$FindBin::Bin/../lib";    # always this runner, even if the real one is installed
use Test::Nginx::Socket;

$ENV{TEST_NGINX_HARNESS_VAR} = 'xyz';

log_level('notice');
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(more_headers => 'X-Injected: by-preprocessor')
        unless defined $block->more_headers;
});

plan tests => 27;
run_tests();

__DATA__

=== TEST 1: main_config, http_config, config, post_main_config, expanded
--- main_config
    error_log logs/main-$TEST_NGINX_HARNESS_VAR.log notice;
--- http_config
    map $uri $harness_var { default "http-$TEST_NGINX_HARNESS_VAR"; }
--- config
    location = /t {
        add_header X-Server-Var "server-$TEST_NGINX_HARNESS_VAR";
        return 200 "$harness_var $http_x_injected\n";
    }
--- post_main_config
    error_log logs/post-$TEST_NGINX_HARNESS_VAR.log notice;
--- init
Test::More::ok(-e "$Test::Nginx::Util::ServRoot/logs/main-xyz.log", 'main_config used');
Test::More::ok(-e "$Test::Nginx::Util::ServRoot/logs/post-xyz.log", 'post_main_config used');
--- request
GET /t
--- response_headers
X-Server-Var: server-xyz
--- response_body
http-xyz by-preprocessor
--- error_log
[notice]
--- no_error_log
[debug]



=== TEST 2: must_die, with error_log
--- main_config
    harness_bogus_main_directive on;
--- config
--- must_die
--- error_log
[emerg]
unknown directive "harness_bogus_main_directive"



=== TEST 3: must_die with an exit code
--- config
--- post_main_config
    harness_bogus_post_directive;
--- must_die: 1
--- error_log eval
["[emerg]", qr/unknown directive "harness_bogus_post_directive" in \S+nginx\.conf:\d+/]



=== TEST 4: a block's own more_headers are left alone by the preprocessor
--- config
    location = /t { return 200 "$http_x_injected|$http_x_own\n"; }
--- more_headers
X-Own: mine
--- request
GET /t
--- response_body
|mine



=== TEST 5: skip_nginx skipping 3 checks
--- skip_nginx: 3: >= 1.0.0
--- config
    location = /t { return 500; }
--- request
GET /t
--- response_body
never checked



=== TEST 6: skip_nginx not skipping
--- skip_nginx: 2: < 1.0.0
--- config
    location = /t { return 200 "not skipped\n"; }
--- request
GET /t
--- response_body
not skipped



=== TEST 7: user_files as an array through eval
--- config
--- user_files eval
[["arr/one.txt", "one\n"]]
--- request
GET /arr/one.txt
--- response_body
one



=== TEST 8: worker_connections and the defaults in nginx.conf
--- config
--- init
open my $in, '<', $Test::Nginx::Util::ConfFile or die $!;
my $conf = do { local $/; <$in> };
Test::More::like($conf, qr/^master_process off;$/m, 'master_process off by default');
my $daemon = $ENV{TEST_NGINX_USE_VALGRIND} ? 'off' : 'on';
Test::More::like($conf, qr/^daemon $daemon;$/m, "daemon $daemon");
Test::More::like($conf, qr/^\s*client_body_temp_path \Q$Test::Nginx::Util::ServRoot\E/m,
                 'temp paths inside the server root');
--- request
GET /
--- response_body_like: It works
