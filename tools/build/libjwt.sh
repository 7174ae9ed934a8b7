#!/usr/bin/env bash
# "make deps", part 2: libjwt >= 3.  Debian 12 has none, so unless the
# system has one, build the static library from Debian's libjwt3 SOURCE
# package (unstable) into build/libjwt/{include,lib}, where ../../config
# looks for it.  Does nothing when build/libjwt is complete already.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PREFIX="$BUILD/libjwt"

# How libjwt is built.  Hidden visibility: the module's .so must not
# export libjwt's functions (nginx loads modules with RTLD_GLOBAL).
CMAKE_OPTIONS=(
    -DWITH_GNUTLS=OFF -DWITH_LIBCURL=OFF -DWITH_TESTS=OFF
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_C_VISIBILITY_PRESET=hidden
    -DCMAKE_INSTALL_PREFIX="$PREFIX"
)

# built already, the same way
if [ -f "$PREFIX/include/jwt.h" ] && [ -f "$PREFIX/include/jwt_export.h" ] \
   && [ -f "$PREFIX/lib/libjwt.a" ] \
   && [ "$(cat "$PREFIX/build-options" 2>/dev/null)" = "${CMAKE_OPTIONS[*]}" ]; then
    exit 0
fi

if [ -n "${NGX_CIBA_LIBJWT:-}" ] && [ -f "$NGX_CIBA_LIBJWT/include/jwt.h" ]; then
    log "using NGX_CIBA_LIBJWT=$NGX_CIBA_LIBJWT"
    exit 0
fi

if pkg-config --atleast-version=3 libjwt 2>/dev/null; then
    log "using the system's libjwt $(pkg-config --modversion libjwt)"
    exit 0
fi

start=$SECONDS

apt_private_init libjwt \
    'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian unstable main'

SRC="$BUILD/src/libjwt"
rm -rf "$SRC"

apt_private_have_lists || apt_private_update
if ! apt_private_source "$SRC" libjwt3; then
    # the lists may be stale (a newer upload removed the old files)
    apt_private_update
    rm -rf "$SRC"
    apt_private_source "$SRC" libjwt3
fi

orig=$(compgen -G "$SRC/libjwt3_*.orig.tar.*" | sort -V | tail -n 1) \
    || die "no libjwt3 orig tarball in $SRC"
log "unpacking ${orig##*/}"
mkdir -p "$SRC/tree"
tar -xf "$orig" -C "$SRC/tree" --strip-components=1

log "building libjwt (static, PIC)"
cmake -S "$SRC/tree" -B "$SRC/cmake" "${CMAKE_OPTIONS[@]}" \
    > "$SRC/cmake.log" 2>&1 \
    || { cat "$SRC/cmake.log" >&2; die "cmake failed for libjwt"; }
make -C "$SRC/cmake" -j"$(jobs)" jwt_static > "$SRC/make.log" 2>&1 \
    || { tail -n 50 "$SRC/make.log" >&2; die "building libjwt failed"; }

export_h=$(find "$SRC/cmake" -name jwt_export.h -print -quit)
[ -n "$export_h" ] || die "jwt_export.h was not generated"
[ -f "$SRC/cmake/libjwt.a" ] || die "libjwt.a was not built"

# install through a staging directory, so an interrupted run leaves
# no half-installed prefix behind
rm -rf "$PREFIX.tmp"
mkdir -p "$PREFIX.tmp/include" "$PREFIX.tmp/lib"
cp "$SRC/tree/include/jwt.h" "$export_h" "$PREFIX.tmp/include/"
cp "$SRC/cmake/libjwt.a" "$PREFIX.tmp/lib/"
printf '%s\n' "${CMAKE_OPTIONS[*]}" > "$PREFIX.tmp/build-options"
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"

version=$(sed -n 's/^#define JWT_VERSION_STRING[[:space:]]*"\(.*\)"/\1/p' \
    "$PREFIX/include/jwt_export.h")
log "libjwt ${version:-?} installed in ${PREFIX#"$ROOT"/} ($((SECONDS - start)) s)"
