#!/usr/bin/env bash
# Builds the libFuzzer targets of tools/fuzz into build/fuzz/bin.
#
#   1. clang 14 and its libFuzzer runtime (Debian packages; apt only when
#      one is missing);
#   2. nginx's own objects, from the same Debian source tarball that
#      "make asan" uses (build/src/nginx), unpacked into build/fuzz/nginx
#      and configured with clang, AddressSanitizer, UndefinedBehavior-
#      Sanitizer and libFuzzer's coverage instrumentation; configured and
#      compiled again only when needed;
#   3. the module's sources and the harness (fuzz_common.c) with the same
#      flags, into build/fuzz/obj;
#   4. one binary per tools/fuzz/fuzz_*.c, linked with -fsanitize=fuzzer
#      against nginx's objects (nginx's main() renamed away), the module's
#      objects (but those a target #includes), libjwt (build/libjwt),
#      jansson and OpenSSL.
#
# usage: build.sh [TARGET...]      (default: every tools/fuzz/fuzz_*.c)

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../build/lib.sh"

FUZZ_SRC="$ROOT/tools/fuzz"
MODULE_SRC="$ROOT/ngx_http_ciba_module"
OUT="$BUILD/fuzz"
NGX="$OUT/nginx"
OBJ="$OUT/obj"
BIN="$OUT/bin"

CC="${FUZZ_CC:-clang-14}"
SAN_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
# NGX_DEBUG_PALLOC: every pool allocation is its own malloc(), so that
# AddressSanitizer sees overflows within a pool
CC_OPT="-g -O1 -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1 $SAN_FLAGS"
CC_OPT="$CC_OPT -fsanitize=fuzzer-no-link"

# nginx itself passes NULL with a length of 0 to memcpy() (e.g. logging
# an empty $args): not checked in nginx's objects, only in the module's
NGX_CC_OPT="$CC_OPT -fno-sanitize=nonnull-attribute"

# 1. the toolchain

PACKAGES=(clang-14 libclang-rt-14-dev llvm-14)

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -ne 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -q update
    apt-get -q install -y --no-install-recommends "${missing[@]}" < /dev/null
fi

[ -f "$BUILD/libjwt/lib/libjwt.a" ] \
    || die "no build/libjwt/lib/libjwt.a: run \"make deps\""

# 2. nginx

sysver=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null) \
    || die "nginx is not installed: run \"make deps\""
upstream=${sysver#*:}
upstream=${upstream%%-*}
orig="$BUILD/src/nginx/nginx_$upstream.orig.tar.gz"

if [ ! -f "$orig" ]; then
    # asan-build.sh knows how to fetch Debian's source package
    log "no ${orig#"$ROOT"/}: fetching it with tools/build/asan-build.sh"
    "$ROOT/tools/build/asan-build.sh"
    [ -f "$orig" ] || die "asan-build.sh did not leave ${orig#"$ROOT"/}"
fi

mkdir -p "$OUT" "$OBJ" "$BIN"

if [ ! -x "$NGX/configure" ] || [ "$orig" -nt "$NGX/configure" ]; then
    log "unpacking ${orig##*/} into ${NGX#"$ROOT"/}"
    rm -rf "$NGX"
    mkdir -p "$NGX"
    tar -xzf "$orig" -C "$NGX" --strip-components=1
    touch "$NGX/configure"
fi

# a small nginx: what the module needs (http, ssl for its structures)
conf=(
    --with-cc="$CC"
    --with-cc-opt="$NGX_CC_OPT"
    --with-ld-opt="$SAN_FLAGS"
    --with-debug
    --with-threads
    --with-http_ssl_module
    --without-http_rewrite_module
    --without-http_gzip_module
)
printf '%s\n' "${conf[@]}" > "$OUT/configure.args.new"

if [ ! -f "$NGX/objs/Makefile" ] \
   || ! cmp -s "$OUT/configure.args.new" "$OUT/configure.args"
then
    log "configuring nginx for the fuzz targets"
    rm -f "$OUT/configure.args"
    if ! (cd "$NGX" && ./configure "${conf[@]}") > "$OUT/configure.log" 2>&1
    then
        tail -n 30 "$OUT/configure.log" >&2
        rm -f "$NGX/objs/Makefile"
        die "configure failed (full log: build/fuzz/configure.log)"
    fi
fi
mv -f "$OUT/configure.args.new" "$OUT/configure.args"

log "building nginx's objects (clang, ASan, UBSan, fuzzer coverage)"
make -C "$NGX" -f objs/Makefile -j"$(jobs)" objs/nginx > "$OUT/make.log" 2>&1 \
    || { grep -E -B2 -A10 'error|Error' "$OUT/make.log" | tail -n 60 >&2;
         die "building nginx failed (full log: build/fuzz/make.log)"; }

# the flags and libraries nginx was built with
CFLAGS=$(sed -n 's/^CFLAGS = //p' "$NGX/objs/Makefile")
LIBS=$(awk '/\$\(LINK\) -o objs\/nginx/ { link = 1; next }
            link && /^$/ { exit }
            link && !/^[ \t]*objs\// { sub(/^[ \t]+/, ""); sub(/ *\\$/, "");
                                        printf "%s ", $0 }' \
       "$NGX/objs/Makefile")

INCS=(
    -I "$NGX/src/core" -I "$NGX/src/event" -I "$NGX/src/event/modules"
    -I "$NGX/src/os/unix" -I "$NGX/objs" -I "$NGX/src/http"
    -I "$NGX/src/http/modules" -I "$BUILD/libjwt/include"
    -I "$MODULE_SRC" -I "$FUZZ_SRC"
)

# nginx's objects, but main(), which libFuzzer brings
mapfile -t NGX_OBJS < <(find "$NGX/objs/src" -name '*.o' \
                        ! -path '*/core/nginx.o' | sort)
NGX_OBJS+=("$NGX/objs/ngx_modules.o" "$OBJ/nginx-nomain.o")

if [ ! -f "$OBJ/nginx-nomain.o" ] \
   || [ "$NGX/objs/src/core/nginx.o" -nt "$OBJ/nginx-nomain.o" ]
then
    objcopy --redefine-sym main=ngx_http_ciba_fuzz_nginx_main \
        "$NGX/objs/src/core/nginx.o" "$OBJ/nginx-nomain.o"
fi

# 3. the module and the harness (always: they are a few files)

compile() {
    local src="$1" obj="$2"
    shift 2
    # shellcheck disable=SC2086
    "$CC" -c $CFLAGS -fsanitize=nonnull-attribute "${INCS[@]}" "$@" \
        -o "$obj" "$src"
}

# clang warns of more than gcc, with which the module is built: its
# warnings are shown, not fatal, here
log "building the module and the harness"
MODULE_OBJS=()
for src in "$MODULE_SRC"/*.c; do
    obj="$OBJ/$(basename "${src%.c}").o"
    compile "$src" "$obj" -Wno-error
    MODULE_OBJS+=("$obj")
done

compile "$FUZZ_SRC/fuzz_common.c" "$OBJ/fuzz_common.o" \
    -DNGX_HTTP_CIBA_FUZZ_KEYS="\"$FUZZ_SRC/keys\""

# 4. the targets

if [ "$#" -eq 0 ]; then
    set --
    for src in "$FUZZ_SRC"/fuzz_*.c; do
        name=$(basename "${src%.c}")
        [ "$name" = fuzz_common ] && continue
        set -- "$@" "${name#fuzz_}"
    done
fi

for target in "$@"; do
    src="$FUZZ_SRC/fuzz_$target.c"
    [ -f "$src" ] || die "no fuzz target \"$target\" ($src)"

    # a target may #include a module source for its static functions:
    # that file's object is left out
    objs=()
    for obj in "${MODULE_OBJS[@]}"; do
        base=$(basename "${obj%.o}").c
        if grep -q "^#include \".*/$base\"" "$src"; then
            continue
        fi
        objs+=("$obj")
    done

    log "building fuzz target $target"
    compile "$src" "$OBJ/fuzz_$target.o"

    # shellcheck disable=SC2086
    "$CC" -g $SAN_FLAGS -fsanitize=fuzzer -o "$BIN/$target.tmp" \
        "$OBJ/fuzz_$target.o" "$OBJ/fuzz_common.o" "${objs[@]}" \
        "${NGX_OBJS[@]}" "$BUILD/libjwt/lib/libjwt.a" -ljansson $LIBS
    mv -f "$BIN/$target.tmp" "$BIN/$target"
done

log "fuzz targets in ${BIN#"$ROOT"/}: $*"
