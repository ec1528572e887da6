#!/usr/bin/env bash
# Packs and extracts DIR with clc and, in the same run, with `tar | lz4 -1`, `tar | zstd -3 -T0` and
# `mksquashfs -comp lz4`; prints a Markdown table of times, sizes and peak RSS, with ratios against tar|lz4.
# Usage: scripts/bench.sh DIR [extra clc pack flags…]     (the source is read once first so all start warm)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench.sh DIR [clc pack flags]" >&2; exit 2; }
SRC=$(realpath "$1"); shift
scripts/deps.sh bench
cargo build --release --quiet
CLC=$PWD/target/release/clc
W=$(mktemp -d /tmp/clc-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
tar cf - -C "$SRC" . | cat > /dev/null

# run NAME CMD: times CMD (wall seconds) and its peak RSS (KiB, largest process of the pipeline)
declare -A T R
run() {
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$W/rss.$name" bash -c "$*"
    t1=$(date +%s.%N)
    T[$name]=$(echo "$t1 - $t0" | bc -l)
    R[$name]=$(sort -n "$W/rss.$name" | tail -n1)
}
size() { du -cb "$@" | tail -n1 | cut -f1; }

run clc_pack "'$CLC' pack '$SRC' -o '$W/c' -q $*"
run lz4_pack "tar cf - -C '$SRC' . | lz4 -1 -q > '$W/t.lz4'"
run zstd_pack "tar cf - -C '$SRC' . | zstd -3 -T0 -q > '$W/t.zst'"
run sqfs_pack "mksquashfs '$SRC' '$W/s.sqfs' -comp lz4 -noappend -quiet -no-progress >/dev/null"
run clc_x "'$CLC' extract '$W/c.001' -o '$W/xc' -q"
run lz4_x "mkdir '$W/xl' && lz4 -d -q < '$W/t.lz4' | tar xf - -C '$W/xl'"
run zstd_x "mkdir '$W/xz' && zstd -d -q < '$W/t.zst' | tar xf - -C '$W/xz'"
run sqfs_x "unsquashfs -q -n -d '$W/xs' '$W/s.sqfs' >/dev/null"
diff -r --no-dereference "$SRC" "$W/xc" >/dev/null || { echo "clc extract differs from source!" >&2; exit 1; }

IN=$(du -sb --apparent-size "$SRC" | cut -f1)
declare -A S=([clc]=$(size "$W"/c.*) [lz4]=$(size "$W/t.lz4") [zstd]=$(size "$W/t.zst") [sqfs]=$(size "$W/s.sqfs"))
echo
echo "Source: $SRC, $(numfmt --to=iec "$IN") in $(find "$SRC" -type f | wc -l) files; $(nproc) cores; clc flags: ${*:-(defaults)}"
echo
echo "| tool | pack s | size MiB | size/in | extract s | pack RSS MiB | pack × lz4 | size × lz4 | size × zstd | extract × lz4 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for k in clc lz4 zstd sqfs; do
    printf "| %s | %.2f | %.1f | %.3f | %.2f | %.0f | %.2f | %.3f | %.3f | %.2f |\n" \
        "$k" "${T[${k}_pack]}" "$(echo "${S[$k]}/1048576" | bc -l)" "$(echo "${S[$k]}/$IN" | bc -l)" \
        "${T[${k}_x]}" "$(echo "${R[${k}_pack]}/1024" | bc -l)" \
        "$(echo "${T[${k}_pack]}/${T[lz4_pack]}" | bc -l)" "$(echo "${S[$k]}/${S[lz4]}" | bc -l)" \
        "$(echo "${S[$k]}/${S[zstd]}" | bc -l)" "$(echo "${T[${k}_x]}/${T[lz4_x]}" | bc -l)"
done
