#!/usr/bin/env bash
# Runs the test suite against build/asan/nginx and fails when
# AddressSanitizer reported anything, even when every test passed.
#
# usage: asan-test.sh [TEST_FILE_OR_DIR...]

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ASAN="$BUILD/asan"
REPORTS="$ASAN/reports"

[ -x "$ASAN/nginx" ] || die "no build/asan/nginx: run \"make asan\""

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
export TEST_NGINX_SERVROOT="${TEST_NGINX_SERVROOT:-$ROOT/t/servroot-asan}"

# Reports go to files of their own (asan.PID), as well: the servroot's
# logs are wiped between test blocks.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$REPORTS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export TEST_NGINX_BINARY="$ASAN/nginx"
export TEST_NGINX_LOAD_MODULES=

stamp="$ASAN/run-start"
touch "$stamp"

rc=0
"$(dirname "${BASH_SOURCE[0]}")/run-tests.sh" "$@" 2>&1 | tee "$ASAN/prove.log" || rc=$?

# the lines that start and end every report (not any mention of the name)
ASAN_PATTERN='(ERROR|SUMMARY): AddressSanitizer|AddressSanitizer:DEADLYSIGNAL'

found=0
for f in "$REPORTS"/asan.*; do
    [ -e "$f" ] || continue
    found=1
    printf '\n==== %s\n' "${f#"$ROOT"/}"
    cat "$f"
done
# the logs (error.log, nginx.stderr, ...) this run wrote in any server
# root, and prove's own output
while IFS= read -r -d '' f; do
    if grep -q -E "$ASAN_PATTERN" "$f"; then
        found=1
        printf '\n==== %s\n' "${f#"$ROOT"/}"
        grep -E -B2 -A30 "$ASAN_PATTERN" "$f"
    fi
done < <(
    for d in "$ROOT"/t/servroot* "$TEST_NGINX_SERVROOT"*; do
        [ -d "$d/logs" ] && find "$d/logs" -type f -newer "$stamp" -print0
    done
    printf '%s\0' "$ASAN/prove.log"
)

if [ "$found" -ne 0 ]; then
    die "AddressSanitizer reported errors (see above)"
fi
if [ "$rc" -ne 0 ]; then
    die "tests failed under the ASan nginx"
fi
log "no AddressSanitizer reports"
