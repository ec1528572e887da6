#!/usr/bin/env bash
# Pack and extract with clc's default codec (LZ_EXT3_SB), `--codec lz_ext3e` and `--codec zstd` (issue 21) beside
# `mksquashfs -comp lz4`, `mksquashfs -comp zstd`, `tar | zstd -3 -T0` and `tar | lz4 -1`, in the same run,
# on each DIR: wall and CPU (user + sys of every process) medians, sizes, and every clc archive restored and
# compared with its source.
# Usage: scripts/bench-codec-ab.sh DIR...    REPS=N (default 3); BENCH_TMP (default /dev/shm); SQZ=0 leaves
# out `mksquashfs -comp zstd` (12-47 × the others' pack CPU); LEVEL1=1 adds `clc --codec zstd` at ZSTD_LEVEL 1 and
# `tar | zstd -1 -T0`, and each codec's own one-core speed on the tree's tar (`zstd -b1e3`, `lz4 -b1`, 4 MiB blocks)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench-codec-ab.sh DIR..." >&2; exit 2; }
REPS=${REPS:-3}
SQZ=${SQZ:-1}
LEVEL1=${LEVEL1:-0}
cargo build --release --quiet --bin clc
W=$(mktemp -d "${BENCH_TMP:-/dev/shm}/clc-ab.XXXXXX")
trap 'rm -rf "$W"' EXIT
cp target/release/clc "$W/clc"
CLC=$W/clc
printf 'CODEC = zstd\nZSTD_LEVEL = 1\n' > "$W/z1.txt"
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timed() { # NAME CMD: wall seconds to $W/t.NAME, CPU seconds (user + sys) to $W/c.NAME
    local f=$1; shift
    local t0 t1
    sync
    t0=$(date +%s.%N); /usr/bin/time -f "%U %S" -o "$W/cpu" bash -c "$*"; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l >> "$W/t.$f"
    awk '{print $1 + $2}' "$W/cpu" >> "$W/c.$f"
}
echo "$(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD); machine shared with other builds"
for DIR in "$@"; do
    SRC=$(realpath "$DIR")
    tar cf - -C "$SRC" . | cat > /dev/null
    rm -f "$W"/t.* "$W"/c.*
    for ((i = 1; i <= REPS; i++)); do
        rm -rf "$W"/a.* "$W"/e.* "$W"/zs.* "$W"/z1.0* "$W/z1.zst" "$W/s.sqfs" "$W/q.sqfs" "$W/z.zst" "$W/l.lz4"
        timed a_pack "'$CLC' pack '$SRC' -o '$W/a' -q --cpu"
        timed e_pack "'$CLC' pack '$SRC' -o '$W/e' -q --cpu --codec lz_ext3e"
        timed zs_pack "'$CLC' pack '$SRC' -o '$W/zs' -q --cpu --codec zstd"
        [ "$LEVEL1" = 0 ] || timed z1_pack "'$CLC' pack '$SRC' -o '$W/z1' -q --cpu --config '$W/z1.txt'"
        timed sqfs_pack "mksquashfs '$SRC' '$W/s.sqfs' -comp lz4 -noappend -quiet -no-progress >/dev/null"
        [ "$SQZ" = 0 ] || timed sqz_pack "mksquashfs '$SRC' '$W/q.sqfs' -comp zstd -noappend -quiet -no-progress >/dev/null"
        timed zstd_pack "tar cf - -C '$SRC' . | zstd -3 -T0 -q > '$W/z.zst'"
        [ "$LEVEL1" = 0 ] || timed zstd1_pack "tar cf - -C '$SRC' . | zstd -1 -T0 -q > '$W/z1.zst'"
        timed lz4_pack "tar cf - -C '$SRC' . | lz4 -1 -q > '$W/l.lz4'"
        rm -rf "$W"/x?*
        timed a_x "'$CLC' extract '$W/a.001' -o '$W/xa' -q"
        timed e_x "'$CLC' extract '$W/e.001' -o '$W/xe' -q"
        timed zs_x "'$CLC' extract '$W/zs.001' -o '$W/xzs' -q"
        [ "$LEVEL1" = 0 ] || timed z1_x "'$CLC' extract '$W/z1.001' -o '$W/xz1' -q"
        timed sqfs_x "unsquashfs -q -n -d '$W/xs' '$W/s.sqfs' >/dev/null"
        [ "$SQZ" = 0 ] || timed sqz_x "unsquashfs -q -n -d '$W/xq' '$W/q.sqfs' >/dev/null"
        timed zstd_x "mkdir '$W/xz' && zstd -d -q < '$W/z.zst' | tar xf - -C '$W/xz'"
        [ "$LEVEL1" = 0 ] || timed zstd1_x "mkdir '$W/xz1z' && zstd -d -q < '$W/z1.zst' | tar xf - -C '$W/xz1z'"
        timed lz4_x "mkdir '$W/xl' && lz4 -d -q < '$W/l.lz4' | tar xf - -C '$W/xl'"
    done
    XS="xa xe xzs"; [ "$LEVEL1" = 0 ] || XS="$XS xz1"
    for x in $XS; do
        diff -r --no-dereference "$SRC" "$W/$x" > "$W/diff" || { echo "$x differs from $SRC:" >&2; head "$W/diff" >&2; exit 1; }
    done
    IN=$(du -sb --apparent-size "$SRC" | cut -f1)
    Z=$(wc -c < "$W/z.zst")
    declare -A S=([a]=$(cat "$W"/a.0* | wc -c) [e]=$(cat "$W"/e.0* | wc -c) [sqfs]=$(wc -c < "$W/s.sqfs") [zs]=$(cat "$W"/zs.0* | wc -c) [sqz]=$([ "$SQZ" = 0 ] && echo 0 || wc -c < "$W/q.sqfs") [z1]=$([ "$LEVEL1" = 0 ] && echo 0 || cat "$W"/z1.0* | wc -c) [zstd1]=$([ "$LEVEL1" = 0 ] && echo 0 || wc -c < "$W/z1.zst") [zstd]=$Z [lz4]=$(wc -c < "$W/l.lz4"))
    echo
    echo "### $SRC: $(echo "$IN/1000000" | bc) MB in $(find "$SRC" -type f | wc -l) files, median of $REPS"
    echo
    echo "| tool | size MB | × tar\|zstd -3 | pack s | pack CPU s | pack × sqfs (wall, CPU) | extract s | extract CPU s | extract × clc default (wall, CPU) |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for k in a e zs z1 sqfs sqz zstd zstd1 lz4; do
        [ "$k" != sqz ] || [ "$SQZ" != 0 ] || continue
        case $k in z1 | zstd1) [ "$LEVEL1" != 0 ] || continue;; esac
        case $k in a) N="clc default (LZ_EXT3_SB)";; e) N="clc --codec lz_ext3e";; zs) N="clc --codec zstd";; z1) N="clc --codec zstd, ZSTD_LEVEL 1";; zstd1) N="tar \| zstd -1 -T0";; sqfs) N="mksquashfs -comp lz4";;
            sqz) N="mksquashfs -comp zstd";; zstd) N="tar \| zstd -3 -T0";; lz4) N="tar \| lz4 -1";; esac
        printf "| %s | %.2f | %.3f | %.2f | %.2f | %.2f, %.2f | %.2f | %.2f | %.2f, %.2f |\n" "$N" \
            "$(echo "${S[$k]}/1000000" | bc -l)" "$(echo "${S[$k]}/$Z" | bc -l)" \
            "$(median "$W/t.${k}_pack")" "$(median "$W/c.${k}_pack")" \
            "$(echo "$(median "$W/t.${k}_pack")/$(median "$W/t.sqfs_pack")" | bc -l)" \
            "$(echo "$(median "$W/c.${k}_pack")/$(median "$W/c.sqfs_pack")" | bc -l)" \
            "$(median "$W/t.${k}_x")" "$(median "$W/c.${k}_x")" \
            "$(echo "$(median "$W/t.${k}_x")/$(median "$W/t.a_x")" | bc -l)" \
            "$(echo "$(median "$W/c.${k}_x")/$(median "$W/c.a_x")" | bc -l)"
    done
    if [ "$LEVEL1" != 0 ]; then
        tar cf "$W/tree.tar" -C "$SRC" .
        echo
        echo "One core, the codec alone on the tree's tar (4 MiB blocks): MB/s compress, ratio"
        echo
        for l in 1 2 3; do zstd -b$l -B4M "$W/tree.tar" 2>&1 | tr '\r' '\n' | grep 'MB/s.*MB/s' | tail -1 | sed "s/^/zstd -$l: /"; done
        lz4 -b1 "$W/tree.tar" 2>&1 | tr '\r' '\n' | grep 'MB/s.*MB/s' | tail -1 | sed "s/^/lz4 -1: /"
        rm -f "$W/tree.tar"
    fi
done
