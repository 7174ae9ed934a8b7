#!/usr/bin/env bash
# "make bench": the benchmarks of ngx_http_ciba_module (tools/bench/README.md).
#
# Installs what only the benchmarks need, each step only when missing:
#   - Debian packages wrk and libnginx-mod-http-js (the njs peer), by apt;
#   - the Node packages of tools/bench (jose, for the external validator
#     peer), by "npm ci" from package-lock.json;
# then runs tools/bench/bench.mjs, which writes build/bench/results.md and
# build/bench/results.json and prints the markdown.
#
# Environment: BENCH_DURATION (seconds per run, default 10), BENCH_ROUNDS
# (default 3), BENCH_CONNECTIONS (16), BENCH_THREADS (1), BENCH_PORT_BASE
# (20400: ports +1..+54 on 127.0.0.1), BENCH_OUT (build/bench),
# CIBA_NGINX (/usr/sbin/nginx), CIBA_MODULE (build/ngx_http_ciba_module.so).

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../build/lib.sh"

dir="$ROOT/tools/bench"

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=()
for p in wrk libnginx-mod-http-js; do
    if ! installed "$p"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root"
    log "installing for the benchmarks: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q -o DPkg::Lock::Timeout=300 update
    apt-get -q -o DPkg::Lock::Timeout=300 install -y \
        --no-install-recommends "${missing[@]}" < /dev/null
fi

for c in node npm taskset openssl; do
    command -v "$c" > /dev/null 2>&1 || die "$c is missing (make deps)"
done

stamp="$dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
    log "installing the benchmarks' Node packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error < /dev/null)
fi

export CIBA_MODULE="${CIBA_MODULE:-$ROOT/build/ngx_http_ciba_module.so}"
[ -f "$CIBA_MODULE" ] || die "no module at $CIBA_MODULE (make module)"

cd "$ROOT"
exec node "$dir/bench.mjs"
