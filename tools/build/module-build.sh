#!/usr/bin/env bash
# Builds the dynamic module in a tree configured by module-configure.sh,
# copies it to OUT and checks that the system nginx loads it.
#
# usage: module-build.sh DIR OUT

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$1"
OUT="$2"

# Recompile all of the module's objects: nginx's makefile only knows the
# headers that config lists, and the module is a few files.
rm -f "$DIR"/objs/addon/ngx_http_ciba_module/*.o

log "building ngx_http_ciba_module.so"
make -C "$DIR" -f objs/Makefile -j"$(jobs)" modules

cp "$DIR/objs/ngx_http_ciba_module.so" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"

"$(dirname "${BASH_SOURCE[0]}")/module-check.sh" "$OUT"
