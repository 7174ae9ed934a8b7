#!/usr/bin/env bash
# Builds an upstream nginx (default 1.26.3) from its pristine source with
# ngx_http_ciba_module as a dynamic module, and runs the test suite
# against it: operators run other nginx versions than Debian 12's 1.22.1.
#
# usage: nginx-upstream.sh build          download (cached), verify, build
#        nginx-upstream.sh test [T...]    the same, then the suite (or T...)
#
# Environment:
#   NGINX_UPSTREAM_VERSION   nginx version (default 1.26.3)
#   NGINX_UPSTREAM_SHA256    SHA-256 of nginx_VERSION.orig.tar.gz; needed
#                            only for a version not pinned below
#   TEST_NGINX_SERVER_PORT   listen address of the tests
#                            (default 127.0.0.1:1990)
#   TEST_NGINX_SERVROOT      their server root
#                            (default t/servroot-nginx-VERSION)
#   CIBA_CC_OPT              extra compiler options (as for "make module")
#
# The source is Debian's copy of the upstream tarball
# (pool/main/n/nginx/nginx_VERSION.orig.tar.gz, the one trixie's nginx
# source package uses), downloaded once into build/src/nginx-upstream/.
# It is used only when its SHA-256 is the one pinned here; the pin is
# also compared with the checksum in trixie's signed Sources index
# (fetched with a private apt configuration under build/apt/nginx-trixie)
# when that index can be had.  When the archive cannot serve a verified
# tarball, the script prints one "SKIPPED: ..." line and exits 0; a
# failed build or a failed test fails it.
#
# Result: build/nginx-VERSION/ (the --prefix): sbin/nginx and
# modules/ngx_http_ciba_module.so; the source tree and the logs are in
# build/src/nginx-VERSION/.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${NGINX_UPSTREAM_VERSION:-1.26.3}"

# SHA-256 of the pristine upstream tarballs (Debian's nginx_V.orig.tar.gz
# is nginx.org's nginx-V.tar.gz, byte for byte).
declare -A PINNED_SHA256=(
    [1.26.3]=69ee2b237744036e61d24b836668aad3040dda461fe6f570f1787eab570c75aa
)

# The Debian suite whose signed Sources index lists the tarball.
INDEX_SUITE=trixie

ARCHIVE_URL="http://deb.debian.org/debian/pool/main/n/nginx"
ORIG="nginx_$VERSION.orig.tar.gz"
DL="$BUILD/src/nginx-upstream"
SRC="$BUILD/src/nginx-$VERSION"
PREFIX="$BUILD/nginx-$VERSION"
MODULE_SO="$PREFIX/modules/ngx_http_ciba_module.so"

# Packages the build needs beyond "make deps" (PCRE2 for the rewrite
# module, zlib for gzip, OpenSSL for the ssl module).
BUILD_PACKAGES=(
    libpcre2-dev zlib1g-dev libssl-dev libjansson-dev gcc make curl
)

# nginx's configure options: the hardening of Debian's build, and the
# modules of Debian's nginx that need no extra library (the suite uses
# ssl for the TLS ping callback, stub_status, and the debug log).
CC_OPT='-g -O2 -fstack-protector-strong -Wformat -Werror=format-security'
CC_OPT+=' -fPIC -Wdate-time -D_FORTIFY_SOURCE=2'
LD_OPT='-Wl,-z,relro -Wl,-z,now -fPIC'
CONFIGURE_ARGS=(
    --prefix="$PREFIX"
    --with-compat
    --with-debug
    --with-threads
    --with-pcre-jit
    --with-http_ssl_module
    --with-http_v2_module
    --with-http_stub_status_module
    --with-http_realip_module
    --with-http_auth_request_module
    --with-http_dav_module
    --with-http_slice_module
    --with-http_addition_module
    --with-http_gunzip_module
    --with-http_gzip_static_module
    --with-http_sub_module
    --with-http_secure_link_module
    --with-cc-opt="$CC_OPT${CIBA_CC_OPT:+ $CIBA_CC_OPT}"
    --with-ld-opt="$LD_OPT"
    --add-dynamic-module="$ROOT"
)

skipped() {
    printf 'SKIPPED: nginx %s source not available from %s (%s)\n' \
        "$VERSION" "Debian's archive" "$*"
}

sha256_of() {
    sha256sum "$1" | cut -d ' ' -f 1
}

# Install the build packages that are missing (apt only then).
ensure_packages() {
    local p missing=()
    for p in "${BUILD_PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" \
             != "ii " ]; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root"
    log "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -q update
    DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
        --no-install-recommends "${missing[@]}" < /dev/null
}

# index_sha256: the SHA-256 that the suite's signed Sources index gives
# for $ORIG, or nothing (index not available, or the file not listed).
# apt checks the Release signature (Debian's archive keyring) and the
# Sources file's hash, so what it lists can be trusted.
index_sha256() {
    local src="deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    apt_private_init "nginx-$INDEX_SUITE" \
        "$src http://deb.debian.org/debian $INDEX_SUITE main" \
        "$src http://deb.debian.org/debian $INDEX_SUITE-updates main" \
        "$src http://deb.debian.org/debian-security $INDEX_SUITE-security main"
    if ! apt_private_have_lists; then
        if ! apt_private_update > "$APT_DIR/update.log" 2>&1; then
            log "apt-get update for $INDEX_SUITE failed" \
                "(see ${APT_DIR#"$ROOT"/}/update.log)"
            return 0
        fi
    fi
    # " SHA256 SIZE NAME" lines under Checksums-Sha256 of every version
    apt-cache "${APT_PRIVATE[@]}" showsrc nginx 2>/dev/null \
        | awk -v f="$ORIG" '
            /^[^ ]/ { in_sums = ($1 == "Checksums-Sha256:") }
            in_sums && NF == 3 && $3 == f { print $1 }' \
        | sort -u
}

# fetch: $DL/$ORIG, verified.  Prints the SKIPPED line and returns 1
# when the archive cannot serve a verified tarball.
fetch() {
    local pinned="${PINNED_SHA256[$VERSION]:-${NGINX_UPSTREAM_SHA256:-}}"
    [ -n "$pinned" ] \
        || die "no SHA-256 pinned for nginx $VERSION: set" \
               "NGINX_UPSTREAM_SHA256 or add it to ${BASH_SOURCE[0]##*/}"
    [[ "$pinned" =~ ^[0-9a-f]{64}$ ]] \
        || die "bad SHA-256 for nginx $VERSION: $pinned"

    mkdir -p "$DL"
    if [ -f "$DL/$ORIG" ]; then
        if [ "$(sha256_of "$DL/$ORIG")" = "$pinned" ]; then
            return 0
        fi
        log "the cached $ORIG does not match the pinned SHA-256:" \
            "downloading it again"
        rm -f "$DL/$ORIG"
    fi

    local start=$SECONDS sums n
    log "checking the pinned SHA-256 against $INDEX_SUITE's signed" \
        "Sources index"
    sums=$(index_sha256) || sums=
    n=$(printf '%s' "$sums" | grep -c . || true)
    if [ "$n" -eq 0 ]; then
        log "$INDEX_SUITE's Sources index does not list $ORIG (or could" \
            "not be read): the pinned SHA-256 alone decides"
    elif [ "$n" -ne 1 ] || [ "$sums" != "$pinned" ]; then
        skipped "$INDEX_SUITE's signed Sources index gives SHA-256" \
                "${sums//$'\n'/ } for $ORIG, not the pinned $pinned"
        return 1
    else
        log "$INDEX_SUITE's signed Sources index agrees: $pinned"
    fi

    log "downloading $ARCHIVE_URL/$ORIG"
    local code
    if ! code=$(curl -sS -L --retry 2 --connect-timeout 20 --max-time 300 \
                     -o "$DL/$ORIG.part" -w '%{http_code}' \
                     "$ARCHIVE_URL/$ORIG" 2> "$DL/curl.log")
    then
        rm -f "$DL/$ORIG.part"
        skipped "download of $ARCHIVE_URL/$ORIG failed:" \
                "$(tail -n 1 "$DL/curl.log")"
        return 1
    fi
    if [ "$code" != 200 ]; then
        rm -f "$DL/$ORIG.part"
        skipped "HTTP $code for $ARCHIVE_URL/$ORIG"
        return 1
    fi
    local got
    got=$(sha256_of "$DL/$ORIG.part")
    if [ "$got" != "$pinned" ]; then
        rm -f "$DL/$ORIG.part"
        skipped "checksum mismatch for $ORIG: SHA-256 $got, pinned $pinned"
        return 1
    fi
    mv -f "$DL/$ORIG.part" "$DL/$ORIG"
    log "downloaded and verified $ORIG ($((SECONDS - start)) s)"
}

# build: unpack, configure (again only when the options or ../../config
# changed), make, install into $PREFIX; check that it loads the module.
build() {
    local start=$SECONDS rel="${SRC#"$ROOT"/}"

    [ -f "$BUILD/libjwt/lib/libjwt.a" ] || [ -n "${NGX_CIBA_LIBJWT:-}" ] \
        || pkg-config --atleast-version=3 libjwt 2>/dev/null \
        || die "no libjwt >= 3: run \"make deps\""

    if [ ! -x "$SRC/configure" ] \
       || [ "$(cat "$SRC/.orig-sha256" 2>/dev/null)" \
            != "$(sha256_of "$DL/$ORIG")" ]
    then
        log "unpacking $ORIG into ${SRC#"$ROOT"/}"
        rm -rf "$SRC"
        mkdir -p "$SRC"
        tar -xzf "$DL/$ORIG" -C "$SRC" --strip-components=1
        sha256_of "$DL/$ORIG" > "$SRC/.orig-sha256"
    fi

    printf '%s\n' "${CONFIGURE_ARGS[@]}" > "$SRC/configure.args.new"
    if [ ! -f "$SRC/objs/Makefile" ] \
       || ! cmp -s "$SRC/configure.args.new" "$SRC/configure.args" \
       || [ "$ROOT/config" -nt "$SRC/objs/Makefile" ]
    then
        log "configuring nginx $VERSION"
        rm -f "$SRC/configure.args"
        if ! (cd "$SRC" && ./configure "${CONFIGURE_ARGS[@]}") \
               > "$SRC/configure.log" 2>&1
        then
            tail -n 30 "$SRC/configure.log" >&2
            rm -f "$SRC/objs/Makefile"
            die "configure failed (full log: $rel/configure.log)"
        fi
        grep -i 'libjwt\|jansson\|openssl libcrypto' "$SRC/configure.log" >&2 \
            || true
    fi
    mv -f "$SRC/configure.args.new" "$SRC/configure.args"

    # always recompile the module (nginx's makefile knows only the
    # headers that config lists)
    rm -f "$SRC"/objs/addon/ngx_http_ciba_module/*.o
    log "building nginx $VERSION and the module"
    if ! make -C "$SRC" -j"$(jobs)" > "$SRC/make.log" 2>&1; then
        grep -E -B2 -A10 'error|Error' "$SRC/make.log" | tail -n 60 >&2
        die "building nginx $VERSION failed (full log: $rel/make.log)"
    fi
    # nginx compiles with -Werror; a warning from anywhere else fails too
    if grep -q -i 'warning:' "$SRC/make.log"; then
        grep -i -A3 'warning:' "$SRC/make.log" >&2
        die "the build of nginx $VERSION printed warnings" \
            "(full log: $rel/make.log)"
    fi
    make -C "$SRC" install > "$SRC/install.log" 2>&1 \
        || { tail -n 20 "$SRC/install.log" >&2; die "make install failed"; }

    "$PREFIX/sbin/nginx" -v 2>&1 | grep -q "nginx/$VERSION\$" \
        || die "$PREFIX/sbin/nginx is not nginx $VERSION"
    "$(dirname "${BASH_SOURCE[0]}")/module-check.sh" "$MODULE_SO" \
        "$PREFIX/sbin/nginx"
    log "built ${PREFIX#"$ROOT"/}/sbin/nginx and ${MODULE_SO#"$ROOT"/}" \
        "($((SECONDS - start)) s)"
}

cmd="${1:-}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    build|test) ;;
    *) die "usage: ${BASH_SOURCE[0]##*/} build | test [TEST...]" ;;
esac

ensure_packages
fetch || exit 0
build

if [ "$cmd" = test ]; then
    export TEST_NGINX_BINARY="$PREFIX/sbin/nginx"
    export TEST_NGINX_LOAD_MODULES="$MODULE_SO"
    export TEST_NGINX_SERVER_PORT="${TEST_NGINX_SERVER_PORT:-127.0.0.1:1990}"
    TEST_NGINX_SERVROOT="${TEST_NGINX_SERVROOT:-$ROOT/t/servroot-nginx-$VERSION}"
    export TEST_NGINX_SERVROOT
    log "running the tests against nginx $VERSION on $TEST_NGINX_SERVER_PORT"
    start=$SECONDS
    rc=0
    "$(dirname "${BASH_SOURCE[0]}")/run-tests.sh" "$@" || rc=$?
    log "tests against nginx $VERSION: $((SECONDS - start)) s, exit $rc"
    exit "$rc"
fi
