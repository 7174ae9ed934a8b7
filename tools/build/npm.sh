#!/usr/bin/env bash
# "make deps", part 3: the Node packages of the tools and test fixtures
# that have any (tools/dev-as: the development authorization server;
# tools/bench; t/fixtures/browser: the approver page's browser test),
# exactly as pinned by each directory's package-lock.json.  For every
# tools/*/ and t/fixtures/*/package-lock.json, npm ci runs only when that
# directory's node_modules is missing or older than its lock file.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

shopt -s nullglob

for lock in "$ROOT"/tools/*/package-lock.json \
            "$ROOT"/t/fixtures/*/package-lock.json
do
    dir="$(dirname "$lock")"
    # written by npm ci last: newer than the lock file when up to date
    stamp="$dir/node_modules/.package-lock.json"

    if [ -f "$stamp" ] && [ "$stamp" -nt "$lock" ]; then
        continue
    fi

    command -v npm > /dev/null 2>&1 \
        || die "npm is missing (apt-get install npm)"

    log "installing the Node packages of ${dir#"$ROOT"/} (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error < /dev/null)
done
