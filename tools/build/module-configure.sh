#!/usr/bin/env bash
# Configures nginx-dev's build tree (/usr/share/nginx/src, copied into
# DIR) for building ngx_http_ciba_module as a dynamic module that the
# stock Debian nginx can load: exactly Debian's NGX_CONF_FLAGS plus the
# --with-cc-opt/--with-ld-opt that "nginx -V" shows.
#
# usage: module-configure.sh DIR

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$1"
NGX_SRC="${NGX_SRC:-/usr/share/nginx/src}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"

if [ ! -f "$NGX_SRC/conf_flags" ] || [ ! -x "$NGX_SRC/configure" ]; then
    die "$NGX_SRC is missing: run \"make deps\" (package nginx-dev)"
fi

# NGX_CONF_FLAGS=( ... ): a bash array
# shellcheck disable=SC1091
. "$NGX_SRC/conf_flags"
[ "${#NGX_CONF_FLAGS[@]}" -gt 0 ] || die "no NGX_CONF_FLAGS in $NGX_SRC/conf_flags"

# the compiler and linker options the system nginx was built with
args=$("$NGINX_BIN" -V 2>&1 | sed -n 's/^configure arguments: //p')
cc_opt=$(printf '%s\n' "$args" | sed -n "s/.*--with-cc-opt='\([^']*\)'.*/\1/p")
ld_opt=$(printf '%s\n' "$args" | sed -n "s/.*--with-ld-opt='\([^']*\)'.*/\1/p")
if [ -z "$cc_opt" ]; then
    cc_opt='-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2'
fi
if [ -z "$ld_opt" ]; then
    ld_opt='-Wl,-z,relro -Wl,-z,now -fPIC'
fi
# nginx's auto/cc/gcc adds "-W -Wall -Wpointer-arith -Werror" itself;
# CIBA_CC_OPT adds more (e.g. make module CIBA_CC_OPT=-Wmissing-prototypes)
cc_opt="$cc_opt${CIBA_CC_OPT:+ $CIBA_CC_OPT}"

log "configuring nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///') for a dynamic module in ${DIR#"$ROOT"/}"
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
cp -a "$NGX_SRC" "$DIR"

cd "$DIR"
if ! ./configure "${NGX_CONF_FLAGS[@]}" \
        --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt" \
        --add-dynamic-module="$ROOT" > configure.log 2>&1
then
    tail -n 30 configure.log >&2
    rm -f objs/Makefile
    die "nginx configure failed (full log: ${DIR#"$ROOT"/}/configure.log)"
fi
grep -i 'libjwt\|jansson\|openssl libcrypto' configure.log >&2 || true
