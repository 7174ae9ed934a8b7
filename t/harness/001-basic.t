# Self-test of the project's Test::Nginx replacement (t/lib): requests,
# status codes, bodies and headers, against the stock nginx.
use FindBin ();
use lib "$FindBin::Bin/../lib";    # always this runner, even if the real one is installed
use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HARNESS_VAR} = 'expanded';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: exact body and explicit status
--- config
    location = /hello { return 200 "hello\n"; }
--- request
GET /hello
--- error_code: 200
--- response_body
hello



=== TEST 2: response_body_like is a /s regex
--- config
    location = /multi { return 200 "first line\nsecond line\n"; }
--- request
GET /multi
--- response_body_like: ^first.*second line$



=== TEST 3: response_body_unlike
--- config
    location = /multi { return 200 "first line\nsecond line\n"; }
--- request
GET /multi
--- response_body_unlike: goodbye



=== TEST 4: error status with the stock error page
--- config
--- request
GET /does-not-exist
--- error_code: 404
--- response_body_like: 404 Not Found



=== TEST 5: error_code_like
--- config
    location = /teapot { return 418; }
--- request
GET /teapot
--- error_code_like: ^4\d\d$



=== TEST 6: response_headers: exact, !Key (absent), Key: (empty or absent)
--- config
    location = /h {
        add_header X-Foo "bar baz";
        return 200 "ok\n";
    }
--- request
GET /h
--- response_headers
X-Foo: bar baz
Content-Type: text/plain
Content-Length: 3
!X-Missing
X-Also-Missing:
--- response_body
ok



=== TEST 7: response_headers_like is anchored
--- config
    location = /h { return 200 "ok\n"; }
--- request
GET /h
--- response_headers_like
Server: nginx/\d+\.\d+\.\d+
Content-Type: text/pl.*
X-Missing:



=== TEST 8: more_headers
--- config
    location = /echo { return 200 "x-test=$http_x_test ua=$http_user_agent\n"; }
--- request
GET /echo
--- more_headers
X-Test: hello world
User-Agent: harness
--- response_body
x-test=hello world ua=harness



=== TEST 9: a request body is trimmed and gets a Content-Length
--- config
    location = /len { return 200 "len=$content_length method=$request_method\n"; }
--- request
POST /len
hello world
--- response_body
len=11 method=POST



=== TEST 10: HTTP/1.0 request line
--- config
    location = /proto { return 200 "$server_protocol $http_host $http_connection\n"; }
--- request
GET /proto HTTP/1.0
--- response_body
HTTP/1.0 localhost close



=== TEST 11: a chunked response (SSI) is de-chunked; user_files
--- config
    location /ssi/ {
        ssi on;
        ssi_types *;
    }
--- user_files
>>> ssi/page.txt
before <!--# echo var="uri" --> after
--- request
GET /ssi/page.txt
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
before /ssi/page.txt after



=== TEST 12: user_files in sub-directories, with $TEST_NGINX_* expansion
--- config
--- user_files
>>> dir/sub/file.txt
value=$TEST_NGINX_HARNESS_VAR
>>> other.txt
second file
--- request eval
["GET /dir/sub/file.txt", "GET /other.txt"]
--- response_body eval
["value=expanded\n", "second file\n"]



=== TEST 13: HEAD request
--- config
    location = /hello { return 200 "hello\n"; }
--- request
HEAD /hello
--- response_headers
Content-Length: 6
--- response_body eval
""



=== TEST 14: several requests in one block, expectations as arrays
--- config
    location = /a { return 200 "A\n"; }
    location = /b { add_header X-B yes; return 201 "B\n"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 201]
--- response_headers eval
["!X-B", "X-B: yes"]
--- response_body eval
["A\n", "B\n"]



=== TEST 15: more_headers as an array, one entry per request
--- config
    location = /echo { return 200 "x-test=$http_x_test\n"; }
--- request eval
["GET /echo", "GET /echo"]
--- more_headers eval
["X-Test: one", "X-Test: two"]
--- response_body eval
["x-test=one\n", "x-test=two\n"]



=== TEST 16: response_body eval qr// means "like"
--- config
    location = /hello { return 200 "hello\n"; }
--- request
GET /hello
--- response_body eval
qr/^hel+o$/m



=== TEST 17: timeout in ms
--- config
    location = /hello { return 200 "hello\n"; }
--- request
GET /hello
--- timeout: 1500ms
--- response_body
hello



=== TEST 18: timeout in s; comment lines before the request line
--- config
    location = /hello { return 200 "hello\n"; }
--- request
# a comment
GET /hello
--- timeout: 2s
--- response_body
hello



=== TEST 19: the root location serves the server root's index.html
--- config
--- request
GET /
--- response_body_like: It works!



=== TEST 20: $ServerPortForClient in response_body
--- config
    location = /port { return 200 "port=$server_port\n"; }
--- request
GET /port
--- response_body
port=$ServerPortForClient



=== TEST 21: request body given by eval, with an explicit Content-Length kept
--- config
    location = /len { return 200 "len=$content_length\n"; }
--- request eval
"POST /len\n  padded  "
--- more_headers
Content-Length: 10
--- response_body
len=10
