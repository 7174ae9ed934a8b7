#!/usr/bin/env bash
# "make deps", part 1: the Debian packages the build and the tests need.
# Runs apt only when a package is missing (apt-get update first, then
# install); does nothing when everything is installed already.

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(
    # the nginx we build the module for, and its build tree
    nginx nginx-dev
    # libraries the module links against
    libjansson-dev libssl-dev
    # toolchain (cmake for libjwt; dpkg-dev for "apt-get source")
    cmake pkg-config gcc make dpkg-dev
    # used by the tests and tools/run-demo.sh (openssl: test keys)
    curl openssl valgrind
    # Perl prerequisites of Test::Nginx
    libtest-base-perl libtest-longstring-perl liblist-moreutils-perl
    libtext-diff-perl libipc-run-perl libwww-perl liburi-perl
    libhttp-message-perl
    # Crypt::JWT: the tests mint tokens with it
    libcrypt-jwt-perl
    # the approver page's browser test (t/099): headless Chromium driven
    # by playwright-core (t/fixtures/browser), and a font for its screenshots
    chromium fonts-dejavu-core
)

# Node.js only when there is no node at all (the image ships Node 20).
if ! command -v node > /dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=()
for p in "${PACKAGES[@]}"; do
    if ! installed "$p"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root"

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -q update
apt-get -q install -y --no-install-recommends "${missing[@]}" < /dev/null
