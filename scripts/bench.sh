#!/usr/bin/env bash
# Packs and extracts DIR with clc and, in the same run, with `tar | lz4 -1`, `tar | zstd -3 -T0` and
# `mksquashfs -comp lz4`; prints a Markdown table of times, sizes and peak RSS, with ratios against tar|lz4.
# Usage: scripts/bench.sh DIR [extra clc pack flags…]
#   REPS=N (default 3): every pack and extract runs N times, the tools taking turns in each round; the
#   table shows the median time and the largest peak RSS. The source is read once first so all start warm.
#   BENCH_TMP=DIR (default /tmp): where archives and extracted trees go (e.g. /dev/shm to leave the disk out).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench.sh DIR [clc pack flags]" >&2; exit 2; }
SRC=$(realpath "$1"); shift
REPS=${REPS:-3}
scripts/deps.sh bench
cargo build --release --quiet
CLC=$PWD/target/release/clc
W=$(mktemp -d "${BENCH_TMP:-/tmp}/clc-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
tar cf - -C "$SRC" . | cat > /dev/null

# run NAME CMD: times CMD (wall seconds, appended to $W/t.NAME) and its peak RSS (KiB, largest process of
# the pipeline, appended to $W/r.NAME)
run() {
    local name=$1; shift
    local t0 t1
    sync
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$W/rss" bash -c "$*"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l >> "$W/t.$name"
    sort -n "$W/rss" | tail -n1 >> "$W/r.$name"
}
median() { sort -g "$W/t.$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxrss() { sort -n "$W/r.$1" | tail -n1; }
size() { du -cb "$@" | tail -n1 | cut -f1; }

for ((i = 1; i <= REPS; i++)); do
    rm -rf "$W"/c.* "$W"/t.lz4 "$W"/t.zst "$W"/s.sqfs
    run clc_pack "'$CLC' pack '$SRC' -o '$W/c' -q $*"
    run lz4_pack "tar cf - -C '$SRC' . | lz4 -1 -q > '$W/t.lz4'"
    run zstd_pack "tar cf - -C '$SRC' . | zstd -3 -T0 -q > '$W/t.zst'"
    run sqfs_pack "mksquashfs '$SRC' '$W/s.sqfs' -comp lz4 -noappend -quiet -no-progress >/dev/null"
    rm -rf "$W"/xc "$W"/xl "$W"/xz "$W"/xs
    run clc_x "'$CLC' extract '$W/c.001' -o '$W/xc' -q"
    run lz4_x "mkdir '$W/xl' && lz4 -d -q < '$W/t.lz4' | tar xf - -C '$W/xl'"
    run zstd_x "mkdir '$W/xz' && zstd -d -q < '$W/t.zst' | tar xf - -C '$W/xz'"
    run sqfs_x "unsquashfs -q -n -d '$W/xs' '$W/s.sqfs' >/dev/null"
done
diff -r --no-dereference "$SRC" "$W/xc" >/dev/null || { echo "clc extract differs from source!" >&2; exit 1; }

IN=$(du -sb --apparent-size "$SRC" | cut -f1)
declare -A S=([clc]=$(size "$W"/c.*) [lz4]=$(size "$W/t.lz4") [zstd]=$(size "$W/t.zst") [sqfs]=$(size "$W/s.sqfs"))
declare -A T
for k in clc lz4 zstd sqfs; do T[${k}_pack]=$(median ${k}_pack); T[${k}_x]=$(median ${k}_x); done
echo
echo "Source: $SRC, $(numfmt --to=iec "$IN") in $(find "$SRC" -type f | wc -l) files; $(nproc) cores;" \
     "median of $REPS runs; work dir ${BENCH_TMP:-/tmp}; clc flags: ${*:-(defaults)}"
echo
echo "| tool | pack s | size MiB | size/in | extract s | pack RSS MiB | extract RSS MiB | pack × lz4 | size × lz4 | size × zstd | extract × lz4 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for k in clc lz4 zstd sqfs; do
    printf "| %s | %.2f | %.1f | %.3f | %.2f | %.0f | %.0f | %.2f | %.3f | %.3f | %.2f |\n" \
        "$k" "${T[${k}_pack]}" "$(echo "${S[$k]}/1048576" | bc -l)" "$(echo "${S[$k]}/$IN" | bc -l)" \
        "${T[${k}_x]}" "$(echo "$(maxrss ${k}_pack)/1024" | bc -l)" "$(echo "$(maxrss ${k}_x)/1024" | bc -l)" \
        "$(echo "${T[${k}_pack]}/${T[lz4_pack]}" | bc -l)" "$(echo "${S[$k]}/${S[lz4]}" | bc -l)" \
        "$(echo "${S[$k]}/${S[zstd]}" | bc -l)" "$(echo "${T[${k}_x]}/${T[lz4_x]}" | bc -l)"
done
echo
echo "All times (s), in run order:"
for k in clc lz4 zstd sqfs; do
    echo "  $k pack: $(tr '\n' ' ' < "$W/t.${k}_pack")  extract: $(tr '\n' ' ' < "$W/t.${k}_x")"
done
