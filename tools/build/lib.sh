#!/usr/bin/env bash
# Shared helpers for the tools/build/*.sh scripts (sourced, not run).
#
# The private apt functions fetch Debian SOURCE packages through an apt
# configuration of their own under build/apt/NAME, so the system's
# sources, package lists and caches are never touched.

set -euo pipefail

# Repository root (the directory holding the Makefile and config).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build"

log() {
    printf '==> %s\n' "$*" >&2
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# apt_private_init NAME SOURCES_LINE...
#   Sets up build/apt/NAME with a sources.list holding the given lines
#   and sets APT_PRIVATE (the options array for apt-get / apt-cache).
apt_private_init() {
    local name="$1"
    shift
    APT_DIR="$BUILD/apt/$name"
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"

    local new="$APT_DIR/sources.list.new"
    printf '%s\n' "$@" > "$new"
    if cmp -s "$new" "$APT_DIR/sources.list"; then
        rm -f "$new"
    else
        # different sources: the old lists are stale
        mv -f "$new" "$APT_DIR/sources.list"
        rm -f "$APT_DIR/lists/"*_Sources* "$APT_DIR/lists/"*Release* 2>/dev/null || true
    fi

    APT_PRIVATE=(
        -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
        -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$APT_DIR/lists"
        -o "Dir::Cache=$APT_DIR/cache"
        -o "Dir::Cache::pkgcache="
        -o "Dir::Cache::srcpkgcache="
        -o "APT::Sandbox::User=root"
        -o "Acquire::Retries=3"
    )
}

# apt_private_update: fetch the private Sources lists.
apt_private_update() {
    log "apt-get update (private lists in ${APT_DIR#"$ROOT"/})"
    apt-get -q "${APT_PRIVATE[@]}" update
}

# apt_private_have_lists: true when "apt_private_update" has run.
apt_private_have_lists() {
    compgen -G "$APT_DIR/lists/*_Sources*" > /dev/null
}

# apt_private_source DIR SPEC...
#   Downloads (only) the source package SPEC (e.g. "libjwt3" or
#   "nginx=1.22.1-9+deb12u9") into DIR.  Returns non-zero on failure.
apt_private_source() {
    local dir="$1"
    shift
    mkdir -p "$dir"
    (cd "$dir" && apt-get -q "${APT_PRIVATE[@]}" source --download-only "$@")
}

# apt_private_source_versions NAME: the versions of source package NAME
# in the private lists, newest first.
apt_private_source_versions() {
    apt-cache "${APT_PRIVATE[@]}" showsrc "$1" 2>/dev/null \
        | sed -n 's/^Version: //p' | sort -u -r -V
}

# jobs: how many parallel compile jobs to use.
jobs() {
    nproc 2>/dev/null || echo 2
}
