#!/usr/bin/env bash
# "make deps", part 3: the Node packages of the development authorization
# server (tools/dev-as), exactly as pinned by its package-lock.json.  Runs
# npm only when node_modules is missing or older than the lock file.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir="$ROOT/tools/dev-as"

if [ ! -f "$dir/package-lock.json" ]; then
    exit 0
fi

stamp="$dir/node_modules/.package-lock.json"

if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
    exit 0
fi

command -v npm > /dev/null 2>&1 || die "npm is missing (apt-get install npm)"

log "installing the development AS's Node packages (npm ci)"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error < /dev/null)
