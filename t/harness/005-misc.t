# Self-test of the project's Test::Nginx replacement (t/lib):
# no_root_location(), repeat_each(), --- SKIP and an explicit plan computed
# from blocks().
use FindBin ();
use lib "$FindBin::Bin/../lib";    # always this runner, even if the real one is installed
use Test::Nginx::Socket;

repeat_each(2);
no_root_location();

plan tests => repeat_each() * 2 * blocks();

run_tests();

__DATA__

=== TEST 1: without the root location the server's own root applies
--- config
    root /nonexistent-harness-root;
--- request
GET /index.html
--- error_code: 404
--- response_body_like: Not Found



=== TEST 2: a SKIP block is never run
--- SKIP
--- config
--- request
GET /
--- error_code: 599
--- response_body: nope



=== TEST 3: locations of its own still work
--- config
    location = /t { return 200 "t\n"; }
--- request
GET /t
--- response_body
t
