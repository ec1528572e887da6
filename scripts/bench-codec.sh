#!/usr/bin/env bash
# The CPU codec against its peers on source trees (issue 21): for each DIR, in the same run,
#   pack time (wall, and CPU = user + sys of every process) and size of `clc pack --cpu`, `tar | zstd -3 -T0` and
#   `mksquashfs -comp lz4` (all cores),
#   then examples/codec_levers on the clc archive: every lever of the entropy stage, one at a time, on the
#   very frames clc packed, with the archive size each would give against tar | zstd -3.
# Usage: scripts/bench-codec.sh DIR...     REPS=N (default 3) pack rounds, the tools taking turns; medians.
#   BENCH_TMP=DIR (default /dev/shm) for archives.  LEVERS=a,b,c to run only some variants.
#   CLC_PACK_ARGS: extra flags for clc pack (default --cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench-codec.sh DIR..." >&2; exit 2; }
REPS=${REPS:-3}
cargo build --release --quiet --bin clc --example codec_levers
CLC=$PWD/target/release/clc
LEV=$PWD/target/release/examples/codec_levers
W=$(mktemp -d "${BENCH_TMP:-/dev/shm}/clc-codec.XXXXXX")
trap 'rm -rf "$W"' EXIT
median() { sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
timed() { # FILE CMD: appends CMD's wall seconds to FILE and its CPU seconds (user + sys, all processes) to FILE.cpu
    local f=$1; shift
    local t0 t1
    t0=$(date +%s.%N); /usr/bin/time -f "%U %S" -o "$W/cpu" bash -c "$*"; t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l >> "$f"
    awk '{print $1 + $2}' "$W/cpu" >> "$f.cpu"
}
echo "$(nproc) cores, $(date -u +%F), commit $(git rev-parse --short HEAD); machine shared with other builds"
for DIR in "$@"; do
    SRC=$(realpath "$DIR")
    tar cf - -C "$SRC" . | cat > /dev/null
    rm -f "$W"/t.* "$W"/t.*.cpu
    for ((i = 1; i <= REPS; i++)); do
        rm -rf "$W"/c.* "$W"/z.zst "$W"/s.sqfs
        timed "$W/t.clc" "'$CLC' pack '$SRC' -o '$W/c' -q ${CLC_PACK_ARGS:---cpu}"
        timed "$W/t.zstd" "tar cf - -C '$SRC' . | zstd -3 -T0 -q > '$W/z.zst'"
        timed "$W/t.sqfs" "mksquashfs '$SRC' '$W/s.sqfs' -comp lz4 -noappend -quiet -no-progress >/dev/null"
    done
    IN=$(du -sb --apparent-size "$SRC" | cut -f1)
    C=$(cat "$W"/c.* | wc -c); Z=$(wc -c < "$W/z.zst"); S=$(wc -c < "$W/s.sqfs")
    echo
    echo "### $SRC: $(echo "$IN/1000000" | bc) MB in $(find "$SRC" -type f | wc -l) files, median of $REPS"
    echo
    echo "| tool | pack s | size MB | size / in | size × tar\|zstd -3 | pack × mksquashfs lz4 | pack CPU s | CPU × mksquashfs |"
    echo "|---|---|---|---|---|---|---|---|"
    SQ=$(median "$W/t.sqfs"); SQC=$(median "$W/t.sqfs.cpu")
    for k in clc zstd sqfs; do
        case $k in clc) B=$C; N="clc pack ${CLC_PACK_ARGS:---cpu}";; zstd) B=$Z; N="tar \| zstd -3 -T0";;
                    sqfs) B=$S; N="mksquashfs -comp lz4";; esac
        T=$(median "$W/t.$k"); TC=$(median "$W/t.$k.cpu")
        printf "| %s | %.2f | %.2f | %.3f | %.3f | %.2f | %.2f | %.2f |\n" "$N" "$T" "$(echo "$B/1000000" | bc -l)" \
            "$(echo "$B/$IN" | bc -l)" "$(echo "$B/$Z" | bc -l)" "$(echo "$T/$SQ" | bc -l)" "$TC" "$(echo "$TC/$SQC" | bc -l)"
    done
    echo
    TAR_ZSTD_BYTES=$Z "$LEV" "$W/c.001" ${LEVERS:+"$LEVERS"}
done
