#!/usr/bin/env bash
# Checks that nginx loads a dynamic module: "nginx -t" on a minimal
# configuration with load_module, under a temporary prefix.
#
# usage: module-check.sh MODULE.so [NGINX_BIN]

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SO="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
NGINX_BIN="${2:-${NGINX_BIN:-/usr/sbin/nginx}}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/nginx.conf" <<CONF
load_module $SO;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {
}
http {
    access_log off;
    client_body_temp_path $tmp/client_body_temp;
    proxy_temp_path $tmp/proxy_temp;
    fastcgi_temp_path $tmp/fastcgi_temp;
    uwsgi_temp_path $tmp/uwsgi_temp;
    scgi_temp_path $tmp/scgi_temp;
    server {
        listen 127.0.0.1:19869;
    }
}
CONF

if out=$("$NGINX_BIN" -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/error.log" -t 2>&1) \
   && printf '%s\n' "$out" | grep -q 'syntax is ok'
then
    log "$NGINX_BIN loads ${SO#"$ROOT"/}: syntax is ok"
else
    printf '%s\n' "$out" >&2
    die "$NGINX_BIN does not load $SO"
fi
