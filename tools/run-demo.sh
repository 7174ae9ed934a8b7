#!/usr/bin/env bash
# The embedded default: nginx (stock Debian binary) with the module in front
# of a sample tool API, a local development signing key standing in for the
# authorization server, and an example flow.  Keeps running until Ctrl-C
# unless CIBA_RUN_ONCE=1.
#
# Environment: CIBA_RUN_PORT (8080; the tool API listens on PORT+1),
# CIBA_RUN_DIR (build/run), CIBA_NGINX (/usr/sbin/nginx),
# CIBA_MODULE (build/ngx_http_ciba_module.so; empty for a static build).

set -euo pipefail

top="$(cd "$(dirname "$0")/.." && pwd)"

# shellcheck source=tools/demo-lib.sh
. "$top/tools/demo-lib.sh"

port="${CIBA_RUN_PORT:-8080}"
api_port="$((port + 1))"
dir="${CIBA_RUN_DIR:-$top/build/run}"
nginx="${CIBA_NGINX:-/usr/sbin/nginx}"
module="${CIBA_MODULE-$top/build/ngx_http_ciba_module.so}"
base="http://127.0.0.1:$port"

mkdir -p "$dir/conf" "$dir/logs" "$dir/tmp"

if [ ! -s "$dir/as.key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/as.key" 2>/dev/null
    openssl pkey -in "$dir/as.key" -pubout -out "$dir/as.pub"
fi


{
    demo_nginx_head "$dir" "$module" 'jti=$ciba_jti'
    cat <<CONF

    # records and the zone's start survive a clean restart in this file
    ciba_zone approvals:1m state=$dir/ciba.state;

    # the sample tool API
    server {
        listen 127.0.0.1:$api_port;
        access_log off;
        default_type application/json;
        location / {
            return 200 '{"tool":"refund","done":true,"args":"\$args"}\n';
        }
    }

    server {
        listen 127.0.0.1:$port;
        access_log $dir/logs/access.log ciba;

        location /tools/refund {
            ciba            on;
            ciba_action     refund;
            ciba_issuer     https://as.local.test;
            ciba_audience   https://tools.local.test;
            ciba_key_file   $dir/as.pub kid=dev1;
            ciba_subject    \$http_x_user;
            ciba_leeway     2s;
            proxy_pass      http://127.0.0.1:$api_port;
        }
    }
}
CONF
} > "$dir/conf/nginx.conf"

stop() {
    if [ -s "$dir/logs/nginx.pid" ]; then
        "$nginx" -p "$dir" -c conf/nginx.conf -s quit 2>/dev/null || true
        sleep 0.3
    fi
}

if [ -s "$dir/logs/nginx.pid" ] && kill -0 "$(cat "$dir/logs/nginx.pid")" 2>/dev/null; then
    stop
fi

warm=0
if [ -s "$dir/ciba.state" ]; then
    warm=1
fi

"$nginx" -p "$dir" -c conf/nginx.conf -t -q
"$nginx" -p "$dir" -c conf/nginx.conf
trap stop EXIT

if [ "$warm" = 0 ]; then
    # the restart rule: without saved state, a token issued before the
    # start plus the leeway may have been used before, so it is refused
    echo "nginx started without saved state: approvals issued in its first"
    echo "seconds (the leeway, 2s here) are refused; waiting 3s."
    sleep 3
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
call() {
    printf '$ curl %s\n' "$*" \
        | sed -e 's/\(Approval-Token: .\{16\}\)[^ ]*/\1.../'
    curl -sS -i "$@" | sed -e 's/^/  /'
    echo
}

body='{"order":"A17","amount":30}'
url="$base/tools/refund?order=A17&amount=30"

step "1. The agent calls a protected tool without an approval"
call -X POST "$url" -H 'X-User: alice' -H 'Content-Type: application/json' \
    --data-raw "$body"

step "2. The agent computes the action digest of the exact request"
if command -v node >/dev/null 2>&1; then
    digest="$("$top/tools/ciba-digest" --action refund --method POST \
        --url "$url" --body "$body")"
    echo "\$ tools/ciba-digest --action refund --method POST --url '$url' --body '$body'"
else
    digest="$(curl -sS -X POST "$url" -H 'X-User: alice' --data-raw "$body" \
        | sed -n 's/.*"action_digest":"\([^"]*\)".*/\1/p')"
    echo "(node is not installed: digest taken from the answer above)"
fi
echo "  $digest"

step "3. The human approves; the (development) authorization server signs"
token="$("$top/tools/dev-approve" --key "$dir/as.key" --kid dev1 \
    --digest "$digest" --action refund --sub alice)"
echo "  Approval-Token: ${token:0:24}...(${#token} bytes)"

step "4. The agent retries with the approval: admitted once"
call -X POST "$url" -H 'X-User: alice' -H "Approval-Token: $token" \
    -H 'Content-Type: application/json' --data-raw "$body"

step "5. The same approval again: refused as a replay"
call -X POST "$url" -H 'X-User: alice' -H "Approval-Token: $token" \
    --data-raw "$body"

step "6. The same approval for a bigger refund: refused as a mismatch"
call -X POST "$base/tools/refund?order=A17&amount=3000" -H 'X-User: alice' \
    -H "Approval-Token: $token" --data-raw '{"order":"A17","amount":3000}'

step "The decision log"
grep -h 'ciba: decision' "$dir/logs/error.log" | tail -n 4 \
    | sed -e 's/^.*ciba: /  ciba: /' -e 's/, client:.*$//'
sed -e 's/^/  /' "$dir/logs/access.log" | tail -n 4

if [ "${CIBA_RUN_ONCE:-0}" = 1 ]; then
    exit 0
fi

printf '\nnginx with the module runs on %s (tool API on 127.0.0.1:%s).\n' \
    "$base" "$api_port"
printf 'Try: tools/ciba-digest, tools/dev-approve --key %s --kid dev1 ...\n' \
    "$dir/as.key"
printf 'Logs: %s/logs.  Ctrl-C stops it.\n' "$dir"
while sleep 3600; do :; done
