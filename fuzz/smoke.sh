#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for FUZZ_SECONDS seconds each (default 30)
# and prints the executions per target. Exits non-zero when any target finds a crash,
# a timeout or an out-of-memory input; the input is then in fuzz/artifacts/<target>/.
#
#   fuzz/smoke.sh                      # 30 s per target
#   FUZZ_SECONDS=60 fuzz/smoke.sh raw_id
#   FUZZ_RUNS=1 fuzz/smoke.sh          # CI: a fixed number of executions per target (about
#                                      # 30 s each here) from a fixed seed, so a run that
#                                      # passed once passes again: the same inputs, in order
#
# Inputs: the seeds (fuzz/seeds/<target>) and the corpus `cargo xtask fuzz` keeps
# (fuzz/corpus/<target>), both committed; new finds go to $CARGO_TARGET_DIR/fuzz-corpus.
#
# cargo-fuzz needs unstable compiler flags (sanitizers, coverage instrumentation): the
# stable toolchain provides them with RUSTC_BOOTSTRAP=1, so no nightly is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
# Executions per target for FUZZ_RUNS=1 (deterministic with -seed=1): about 30 s each here.
# (Fewer for the targets whose kept corpus holds long inputs: they start from the deep run's
# coverage and each execution costs more.)
declare -A runs=([acs_token]=120000 [entra_token]=150000 [hmac_authorization]=250000
    [json_body]=500000 [connection_string]=200000 [raw_id]=1500000)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-fuzz}"
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

mkdir -p "$CARGO_TARGET_DIR"
started=$SECONDS
if ! cargo fuzz build -O >"$CARGO_TARGET_DIR/fuzz-build.log" 2>&1; then
    tail -n 40 "$CARGO_TARGET_DIR/fuzz-build.log"
    exit 1
fi
echo "fuzz targets built in $((SECONDS - started)) s"

failed=()
printf '%-20s %14s %10s %9s\n' target executions exec/s peak_MB
for t in "${targets[@]}"; do
    corpus="$CARGO_TARGET_DIR/fuzz-corpus/$t"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "fuzz/corpus/$t" ] && dirs+=("fuzz/corpus/$t")
    [ -d "fuzz/seeds/$t" ] && dirs+=("fuzz/seeds/$t")
    log="$CARGO_TARGET_DIR/fuzz-$t.log"
    status=0
    if [ "${FUZZ_RUNS:-0}" = 1 ]; then
        budget=(-seed=1 -runs="${runs[$t]:-200000}")
    else
        budget=(-max_total_time="$seconds")
    fi
    cargo fuzz run -O "$t" "${dirs[@]}" -- \
        "${budget[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    printf '%-20s %14s %10s %9s\n' "$t" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$(stat peak_rss_mb)"
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|Base64' "$log" | head -n 20 || true
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]} (logs in $CARGO_TARGET_DIR/fuzz-<target>.log)"
    exit 1
fi
