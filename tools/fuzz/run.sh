#!/usr/bin/env bash
# Runs each fuzz target of build/fuzz/bin for a bounded time, one process
# each (the machine is shared: no -jobs/-workers beyond one), prints one
# line per target (executions, speed, coverage, crashes) and fails when
# any target crashed, leaked, timed out or ran out of memory.
#
# usage: run.sh [TARGET...]          (default: every built target)
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_FLAGS     extra libFuzzer flags (e.g. -only_ascii=1)
#
# Seeds: tools/fuzz/corpus/<target> (read only).  What the fuzzer finds
# goes to build/fuzz/corpus/<target> (kept between runs); crash inputs
# to build/fuzz/artifacts/<target>; each run's log to
# build/fuzz/logs/<target>.log.  A crash input can be run again with
#   build/fuzz/bin/<target> <file>

set -euo pipefail

# shellcheck source=tools/build/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../build/lib.sh"

FUZZ_SRC="$ROOT/tools/fuzz"
OUT="$BUILD/fuzz"
BIN="$OUT/bin"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"

case "$SECONDS_PER_TARGET" in
    ''|*[!0-9]*) die "FUZZ_SECONDS must be a number of seconds" ;;
esac

# the longest input worth trying, per target
max_len() {
    case "$1" in
        token_raw)    echo 16400 ;;   # NGX_HTTP_CIBA_TOKEN_MAX and a bit
        token_signed) echo 4096 ;;
        digest)       echo 4096 ;;
        as_answer)    echo 8192 ;;
        handle)       echo 4200 ;;    # handles: at most 4096
        callback)     echo 5000 ;;    # bodies: at most 4096
        binding)      echo 1024 ;;
        store)        echo 1024 ;;    # 256 operations
        *)            echo 4096 ;;
    esac
}

if [ "$#" -eq 0 ]; then
    for f in "$BIN"/*; do
        [ -x "$f" ] && set -- "$@" "$(basename "$f")"
    done
fi

[ "$#" -gt 0 ] || die "no fuzz targets in ${BIN#"$ROOT"/}: run tools/fuzz/build.sh"

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
if [ -n "$symbolizer" ]; then
    export ASAN_SYMBOLIZER_PATH="$symbolizer"
fi

mkdir -p "$OUT/logs"

failed=()

printf '%-13s %11s %8s %6s %7s %7s  %s\n' \
    target execs exec/s cov features corpus result

for target in "$@"; do
    bin="$BIN/$target"
    [ -x "$bin" ] || die "no fuzz target $target (${bin#"$ROOT"/})"

    seeds="$FUZZ_SRC/corpus/$target"
    corpus="$OUT/corpus/$target"
    artifacts="$OUT/artifacts/$target"
    logf="$OUT/logs/$target.log"

    mkdir -p "$corpus" "$artifacts"
    [ -d "$seeds" ] || seeds=

    before=$(find "$artifacts" -type f | wc -l)

    rc=0
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_PER_TARGET" \
        -max_len="$(max_len "$target")" -timeout=20 -rss_limit_mb=2048 \
        -dict="$FUZZ_SRC/ciba.dict" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" ${FUZZ_FLAGS:-} \
        "$corpus" ${seeds:+"$seeds"} > "$logf" 2>&1 || rc=$?

    after=$(find "$artifacts" -type f | wc -l)

    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -n 1)
    status=$(grep -E '^#[0-9]+' "$logf" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$status")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$status")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<< "$status")

    if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
        result="ok, 0 crashes"
    else
        result="FAILED (exit $rc, $((after - before)) new crash inputs in ${artifacts#"$ROOT"/})"
        failed+=("$target")
    fi

    printf '%-13s %11s %8s %6s %7s %7s  %s\n' "$target" "${execs:-?}" \
        "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done

if [ "${#failed[@]}" -ne 0 ]; then
    for target in "${failed[@]}"; do
        printf '\n==== %s (build/fuzz/logs/%s.log)\n' "$target" "$target"
        grep -E -A40 'ERROR: |runtime error|fuzz harness|Test unit written' \
            "$OUT/logs/$target.log" | head -n 80 || true
    done
    die "fuzz targets failed: ${failed[*]}"
fi

log "all fuzz targets ran ${SECONDS_PER_TARGET}s each without a crash"
