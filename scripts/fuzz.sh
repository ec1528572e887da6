#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named) for SECONDS each (default 60) and prints, per target, the
# executions libFuzzer reports and the crashes it left (fuzz/artifacts/<target>/crash-*, oom-*, timeout-*).
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`); the first build of the
# fuzz crate (clc and its dependencies with AddressSanitizer) takes several minutes on two cores.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# New corpus entries go to fuzz/corpus/<target> (git-ignored); fuzz/seeds/<target> is read as well. A crash
# is reproduced with `cargo +nightly fuzz run -a TARGET fuzz/artifacts/TARGET/crash-…`; minimise it
# (`cargo +nightly fuzz tmin -a TARGET …`), commit it under fuzz/regressions/TARGET/ and add a named test to
# tests/fuzz_regress.rs. Exits 1 if any target crashed.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-60}
shift $(($# > 0 ? 1 : 0))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# -a: debug assertions and overflow checks, as in `cargo test`.
flags=(-a --release)
cargo +nightly fuzz build "${flags[@]}" || exit 2
# Temporary archives of the open_archive targets go to memory when possible.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
mkdir -p artifacts
failed=0
printf '%-22s %8s %14s %8s\n' target seconds executions crashes
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t.log"
    before=$(ls "artifacts/$t" | grep -cE '^(crash|oom|timeout|leak)-')
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -timeout=30 >"$log" 2>&1
    after=$(ls "artifacts/$t" | grep -cE '^(crash|oom|timeout|leak)-')
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    if [ -z "$execs" ]; then # stopped at a crash: the last status line says how far it got
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    crashes=$((after - before))
    [ "$crashes" -gt 0 ] && failed=1
    printf '%-22s %8s %14s %8s\n' "$t" "$secs" "${execs:-0}" "$crashes"
done
exit $failed
