#!/usr/bin/env bash
# Runs the Test::Nginx suite with prove.
#
# usage: run-tests.sh [TEST_FILE_OR_DIR...]    (default: t)
#
# Environment (the Makefile sets these):
#   TEST_NGINX_BINARY        nginx to test (default /usr/sbin/nginx)
#   TEST_NGINX_LOAD_MODULES  dynamic modules to load (may be empty)
#   TEST_NGINX_SERVER_PORT   listen address (default 127.0.0.1:1984)
#   TEST_NGINX_SERVROOT      server root (default t/servroot)
#   TEST_NGINX_USE_VALGRIND  set to 1 to run nginx under valgrind
#   PROVE_FLAGS              extra prove options (e.g. -v)
#   TEST_NGINX_SETTLE        with t/lib: how long (s, default 0.3) nothing in
#                            the server root may change after a file ended
#   TEST_NGINX_FILE_GUARD    with t/lib: 0 turns those end-of-file checks off

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cd "$ROOT"

# nginx takes $NGINX for sockets inherited on a binary upgrade
unset NGINX

export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
export TEST_NGINX_LOAD_MODULES="${TEST_NGINX_LOAD_MODULES-}"
export TEST_NGINX_SERVER_PORT="${TEST_NGINX_SERVER_PORT:-127.0.0.1:1984}"
export TEST_NGINX_SERVROOT="${TEST_NGINX_SERVROOT:-$ROOT/t/servroot}"

# the real Test::Nginx connects to TEST_NGINX_CLIENT_PORT (or to the whole
# TEST_NGINX_SERVER_PORT value, which is host:port here)
export TEST_NGINX_CLIENT_PORT="${TEST_NGINX_CLIENT_PORT:-${TEST_NGINX_SERVER_PORT##*:}}"

# Our own Test::Nginx::Socket (t/lib) unless one is installed.  With it,
# every file runs under tools/build/run-test-file.pl, which fails a file
# that leaves a process, a writer in the server root, or an entry there
# the real Test::Nginx cannot remove (t/lib/Test/Nginx/FileGuard.pm).
exec_flags=()
if ! perl -MTest::Nginx::Socket -e1 > /dev/null 2>&1; then
    export PERL5LIB="$ROOT/t/lib${PERL5LIB:+:$PERL5LIB}"
    exec_flags=(--exec "perl tools/build/run-test-file.pl")
fi

if [ "$#" -eq 0 ]; then
    set -- t
fi

# PROVE_FLAGS is split on purpose
# shellcheck disable=SC2086
exec prove -r "${exec_flags[@]}" ${PROVE_FLAGS-} "$@"
