package Test::Nginx::Socket;

# The project's own stand-in for OpenResty's Test::Nginx::Socket; see the
# POD below.  The work is done in Test::Nginx::Util.

use Test::Base -Base;
use Test::Nginx::Util qw(
    run_tests repeat_each no_shuffle no_root_location no_long_string
    log_level add_block_preprocessor add_cleanup_handler master_on master_off
    master_process_enabled workers worker_connections server_port
    server_port_for_client server_root html_dir timeout env_to_nginx
    config_preamble bail_out is_str
);

our $VERSION = '0.01';

# Test::Base's own exports (plan, is, ok, like, diag, blocks, ...) and its
# import ('no_plan', tests => N) come along through Spiffy's inheritance.
our @EXPORT = qw(
    plan run_tests repeat_each no_shuffle no_root_location no_long_string
    log_level add_block_preprocessor add_cleanup_handler master_on master_off
    master_process_enabled workers worker_connections server_port
    server_port_for_client server_root html_dir timeout env_to_nginx
    config_preamble bail_out is_str
);

__END__

=head1 NAME

Test::Nginx::Socket - minimal, from-scratch replacement for OpenResty's
Test::Nginx::Socket (project-local, used only when the real one is missing)

=head1 SYNOPSIS

    PERL5LIB=t/lib TEST_NGINX_BINARY=/usr/sbin/nginx prove -r t

    use Test::Nginx::Socket 'no_plan';   # or: plan tests => N;
    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hi\n"; }
    --- request
    GET /t
    --- response_body
    hi
    --- no_error_log
    [error]

=head1 DESCRIPTION

Runs the data-driven C<.t> files of the real harness for the subset the
suite uses (the project's TEST-NGINX.md is the contract); F<t/harness/>
holds its self-tests, including blocks that must fail.  It is built on
Test::Base, like the real one, so block parsing, the C<eval>/C<chomp>/C<chop>
filters, C<--- ONLY>, C<--- SKIP> and C<--- LAST> behave identically; TAP
output and check names follow the real harness, and the exit status is the
number of failed checks (Test::More).

=head2 Supported

Helpers: C<run_tests>, C<repeat_each>, C<no_shuffle>, C<no_root_location>,
C<no_long_string>, C<log_level>, C<add_block_preprocessor>,
C<add_cleanup_handler>, C<master_on>, C<master_off>,
C<master_process_enabled>, C<workers>, C<worker_connections>,
C<server_port>, C<server_port_for_client>, C<server_root>, C<html_dir>,
C<timeout>, C<env_to_nginx>, C<config_preamble>, C<bail_out>, C<is_str>,
plus Test::More's functions and C<blocks> via Test::Base.  Package variables
of Test::Nginx::Util keep the real names (C<$ServRoot>, C<$HtmlDir>,
C<$PidFile>, C<$ServerPort>, ...).

Sections: C<main_config>, C<http_config>, C<config> (required),
C<post_main_config> (all with C<$TEST_NGINX_*> expanded, an undefined one
is fatal; C<$TEST_NGINX_RAND_PORT_N> picks a free port), C<request> (string,
or an array of strings via C<eval>: several requests in one block, in which
case every expectation must be an array too), C<more_headers> (string or
array), C<error_code>, C<error_code_like>, C<response_body>,
C<response_body_like>, C<response_body_unlike>, C<response_headers>
(C<Key: value>, C<!Key> absent, C<Key:> empty or absent),
C<response_headers_like>, C<error_log>, C<no_error_log> (strings, C<qr//>
or arrays of both; as in the real harness they are checked after every
request of a block against the error.log lines written since the previous
check, so only this block's lines count), C<log_level>, C<timeout>
(C<s>/C<ms>), C<wait>, C<must_die> (optionally an exit code), C<user_files>,
C<init>, C<skip_nginx>.

Environment: C<TEST_NGINX_BINARY>, C<TEST_NGINX_LOAD_MODULES>,
C<TEST_NGINX_SERVROOT>, C<TEST_NGINX_SERVER_PORT> (C<127.0.0.1:PORT> binds
loopback only), C<TEST_NGINX_CLIENT_PORT>, C<TEST_NGINX_NO_SHUFFLE>,
C<TEST_NGINX_USE_VALGRIND>, C<TEST_NGINX_LOG_LEVEL>, C<TEST_NGINX_TIMEOUT>,
C<TEST_NGINX_MASTER_PROCESS>.

Sections of the real harness outside this subset (C<raw_request>,
C<pipelined_requests>, C<access_log>, C<grep_error_log>, C<tcp_listen>,
C<shutdown_error_log>, C<http2>, C<todo>, C<skip_eval>, ...) make the run
bail out instead of being silently ignored.

=head2 Deliberate differences from the real harness

=over

=item * nginx is started for every block and stopped (QUIT, then KILL of
the master and its workers after the timeout) at the end of each block, on
exit, on C<die>, and on SIGINT/SIGTERM/SIGHUP.  The real one leaves it
running until the next block starts.

=item * C<load_module> lines for C<TEST_NGINX_LOAD_MODULES> come first in
nginx.conf; C<*_temp_path> directives for client_body, proxy, fastcgi,
uwsgi and scgi point inside the server root (unless C<http_config> sets
them), so a distribution nginx needs no write access to its compiled-in
paths.  nginx gets C<-e logs/error.log> (1.19.5+), so startup errors land
in error.log even for a binary built with C<--error-log-path=stderr>;
its stderr goes to F<logs/nginx.stderr>.

=item * The client connects to 127.0.0.1 on C<TEST_NGINX_CLIENT_PORT>, or
on the port part of C<TEST_NGINX_SERVER_PORT> (C<server_port()> and
C<$TEST_NGINX_SERVER_PORT> keep the full value, e.g. C<127.0.0.1:1984>;
use C<server_port_for_client()> for a bare port).

=item * A block whose nginx does not start is one failed check (retried for
a while only if the port is busy), not a bail-out after 30 s.  A missing
C<--- config> bails out (the real harness would reuse the previous nginx).

=item * Under C<TEST_NGINX_USE_VALGRIND> nginx runs in the foreground
(C<daemon off>; C<master_process> as configured) under C<valgrind -q
--leak-check=full --gen-suppressions=all> (plus
C<--suppressions=./valgrind.suppress> when present), logging to
F<logs/valgrind.PID.log>; startup may take up to a minute.  After the block
nginx is stopped and any valgrind error record fails a check named "no
valgrind errors" (emitted only on failure so C<plan tests> counts stay
valid).  The real harness only prints valgrind's output.

=item * C<--- init> runs in package Test::Nginx::Util, as in the real one:
use fully qualified names (C<Test::More::is>, C<$Test::Nginx::Util::HtmlDir>).

=item * C<response_headers> are checked in the order written (the real one
walks a hash).  Cleanup handlers run once.

=item * F<tools/build/run-tests.sh> runs every file (data-driven or plain
Perl) under F<tools/build/run-test-file.pl> (L<Test::Nginx::FileGuard>),
which fails the file, once it has ended, when a process it started is
still alive, when anything under the server root (or its siblings
F<t/servroot-*>) changes within C<TEST_NGINX_SETTLE> seconds (0.3), or
when the file left an entry in the server root that the real harness
cannot remove (it would bail out at the next file); the reasons go to
stderr and the exit status is non-zero.  C<TEST_NGINX_FILE_GUARD=0> turns
this off.

=back

=cut
