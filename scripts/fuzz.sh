#!/usr/bin/env bash
# A longer fuzzing campaign than CI's 15 s per target: every cargo-fuzz target (or the ones
# named) runs for FUZZ_MINUTES (default 10) on a scratch copy of its committed corpus; what it
# finds is merged back into fuzz/corpus/<target> minimised (`-merge=1` keeps only inputs that
# add coverage), so `cargo test` replays it from then on. A crash stops the campaign with the
# input saved under fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh                          # all targets, 10 minutes each
#   FUZZ_MINUTES=3 scripts/fuzz.sh frame_decoder reply_decode
#   FUZZ_RUNS=11000000 FUZZ_MINUTES=60 nice scripts/fuzz.sh frame_decoder
#                                            # stop at 1.1e7 executions (or 60 min)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Prints the
# executions per target at the end.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

MINUTES="${FUZZ_MINUTES:-10}"
SECONDS_EACH=$((MINUTES * 60))
JOBS="${FUZZ_JOBS:-1}"
RUNS=()
if [ -n "${FUZZ_RUNS:-}" ]; then
    RUNS=(-runs="$FUZZ_RUNS")
fi
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -O
declare -a summary=()
for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    scratch=$(mktemp -d)
    cp -r "$corpus/." "$scratch/" 2>/dev/null || true
    before=$(find "$corpus" -type f | wc -l)
    echo "==> $target: ${MINUTES} min from $before corpus inputs"
    log=$(mktemp)
    # Parallel jobs log to fuzz-N.log files of their own; one job logs here.
    parallel=()
    if [ "$JOBS" -gt 1 ]; then
        parallel=(-jobs="$JOBS" -workers="$JOBS")
    fi
    if ! cargo +nightly fuzz run -O "$target" "$scratch" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 "${parallel[@]}" "${RUNS[@]}" \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -60 "$log"
        rm -rf "$scratch"
        echo "fuzz target $target failed: see fuzz/artifacts/$target/" >&2
        exit 1
    fi
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    # Keep only the inputs that add coverage to what is committed.
    merged=$(mktemp -d)
    cargo +nightly fuzz run -O "$target" "$merged" "$corpus" "$scratch" -- -merge=1 \
        >/dev/null 2>&1 || true
    if [ -n "$(ls -A "$merged")" ]; then
        rm -rf "$corpus"
        mkdir -p "$corpus"
        cp -r "$merged/." "$corpus/"
    fi
    after=$(find "$corpus" -type f | wc -l)
    rm -rf "$scratch" "$merged" "$log"
    summary+=("$(printf '%-18s %14s executions in %s s; corpus %s -> %s inputs' \
        "$target" "${runs:-?}" "$SECONDS_EACH" "$before" "$after")")
done
echo
echo "==> fuzz campaign"
printf '  %s\n' "${summary[@]}"
