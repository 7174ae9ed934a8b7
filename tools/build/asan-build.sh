#!/usr/bin/env bash
# Builds build/asan/nginx: a debug nginx with AddressSanitizer and
# ngx_http_ciba_module linked in statically, from Debian's nginx SOURCE
# package (bookworm, fetched through a private apt configuration; only
# the upstream tarball is used, Debian's patches do not matter here).
# Downloads, unpacks and configures only when needed.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ASAN="$BUILD/asan"
SRC="$ASAN/src"
DL="$BUILD/src/nginx"
NGX_SRC="${NGX_SRC:-/usr/share/nginx/src}"

# the upstream version of the system's nginx, e.g. 1.22.1
sysver=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null) \
    || die "nginx is not installed: run \"make deps\""
upstream=${sysver#*:}
upstream=${upstream%%-*}
orig="$DL/nginx_$upstream.orig.tar.gz"

# 1. the source
if [ ! -f "$orig" ]; then
    apt_private_init nginx-bookworm \
        'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main' \
        'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main' \
        'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main'
    apt_private_have_lists || apt_private_update

    # The newest version listed is not always downloadable (its .dsc can
    # be missing from the mirror); every version shares the orig tarball,
    # so try the system's version, then the others, newest first.
    try_download() {
        local v
        for v in "$sysver" $(apt_private_source_versions nginx); do
            case "$v" in "$upstream"-*|*:"$upstream"-*) ;; *) continue ;; esac
            log "apt-get source --download-only nginx=$v"
            if apt_private_source "$DL" "nginx=$v" || [ -f "$orig" ]; then
                return 0
            fi
            log "nginx=$v could not be downloaded, trying another version"
        done
        return 1
    }
    # with stale lists, every download can fail: update and try again
    try_download || { apt_private_update && try_download; } || true
    [ -f "$orig" ] || die "could not download nginx_$upstream.orig.tar.gz"
fi

if [ ! -x "$SRC/configure" ]; then
    log "unpacking ${orig##*/}"
    rm -rf "$SRC"
    mkdir -p "$SRC"
    tar -xzf "$orig" -C "$SRC" --strip-components=1
fi

# 2. configure (again only when the options or ../../config changed)
# shellcheck disable=SC1091
. "$NGX_SRC/conf_flags"
conf=(
    "${NGX_CONF_FLAGS[@]}"
    --with-debug
    --add-module="$ROOT"
    --with-cc-opt="-O1 -g -fno-omit-frame-pointer -fsanitize=address -DNGX_DEBUG_PALLOC=1${CIBA_CC_OPT:+ $CIBA_CC_OPT}"
    --with-ld-opt="-fsanitize=address"
)
printf '%s\n' "${conf[@]}" > "$ASAN/configure.args.new"

if [ ! -f "$SRC/objs/Makefile" ] \
   || ! cmp -s "$ASAN/configure.args.new" "$ASAN/configure.args" \
   || [ "$ROOT/config" -nt "$SRC/objs/Makefile" ]
then
    log "configuring the ASan nginx"
    rm -f "$ASAN/configure.args"
    if ! (cd "$SRC" && ./configure "${conf[@]}") > "$ASAN/configure.log" 2>&1; then
        tail -n 30 "$ASAN/configure.log" >&2
        rm -f "$SRC/objs/Makefile"
        die "configure failed (full log: build/asan/configure.log)"
    fi
fi
mv -f "$ASAN/configure.args.new" "$ASAN/configure.args"

# 3. build; always recompile the module (nginx's makefile only knows the
# headers config lists)
rm -f "$SRC"/objs/addon/ngx_http_ciba_module/*.o
log "building the ASan nginx"
make -C "$SRC" -j"$(jobs)" > "$ASAN/make.log" 2>&1 \
    || { grep -E -B2 -A10 'error|Error' "$ASAN/make.log" | tail -n 60 >&2;
         die "building the ASan nginx failed (full log: build/asan/make.log)"; }

cp "$SRC/objs/nginx" "$ASAN/nginx.tmp"
mv -f "$ASAN/nginx.tmp" "$ASAN/nginx"
log "built build/asan/nginx"
