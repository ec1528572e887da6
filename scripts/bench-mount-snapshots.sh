#!/usr/bin/env bash
# An archive of N snapshots (`clc pack --append`) mounted with `clc mount`, against squashfuse over N
# squashfs images (`mksquashfs -comp lz4`) of the same N trees (docs/BENCHMARKS.md §9.3).
#
#   scripts/bench-mount-snapshots.sh DIR [WORK]      (as root: drops the page cache, mounts)
#
# DIR is copied to WORK/tree; version 1 is that copy, version k > 1 is version k - 1 after
# `scripts/mutate-tree.py TREE 1 k` (1 % of the files edited, deleted or added, seeded by k). After each
# version: `clc pack TREE -o WORK/ar --append --name vK` and `mksquashfs TREE WORK/sq/vK.sqfs -comp lz4`.
# Then, REPS times, the tools interleaved (medians in the table):
#   mount   wall time of `clc mount WORK/ar.001 MNT` plus `ls MNT` (the mount is ready), page cache warm;
#           for squashfuse, the N `squashfuse` commands (one mount point per image under one directory)
#           plus the same `ls`; and again with the page cache dropped first (cold)
#   stat    `find . -print0 | xargs -0 stat` over all N trees, on fresh mounts, page cache dropped
# Environment: N (30), REPS (3), CLC (target/release/clc), REUSE (set: keep the versions WORK holds).
set -euo pipefail
DIR=${1:?usage: $0 DIR [WORK]}
W=${2:-/tmp/bench-mount-snapshots}
N=${N:-30}
REPS=${REPS:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CLC=$(realpath "${CLC:-$HERE/target/release/clc}")
[ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, mounts)" >&2; exit 2; }
command -v mksquashfs >/dev/null && command -v squashfuse >/dev/null || { echo "needs squashfs-tools and squashfuse" >&2; exit 2; }
MNT=$W/mnt SQ=$W/sqmnt
cleanup() {
    mountpoint -q "$MNT" && umount "$MNT" 2>/dev/null || true
    for m in "$SQ"/*; do mountpoint -q "$m" 2>/dev/null && umount "$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
if [ -z "${REUSE:-}" ]; then
rm -rf "$W"; mkdir -p "$W/sq" "$MNT" "$SQ"
cp -a "$DIR" "$W/tree"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
pack_s=0 sq_s=0
for k in $(seq "$N"); do
    [ "$k" = 1 ] || python3 "$HERE/scripts/mutate-tree.py" "$W/tree" 1 "$k" >>"$W/mutate.log"
    t0=$(now); "$CLC" pack "$W/tree" -o "$W/ar" --append --name "v$(printf %02d "$k")" -q; t1=$(now)
    pack_s=$(echo "$pack_s + $t1 - $t0" | bc -l)
    t0=$(now); mksquashfs "$W/tree" "$W/sq/v$(printf %02d "$k").sqfs" -comp lz4 -quiet -no-progress >/dev/null; t1=$(now)
    sq_s=$(echo "$sq_s + $t1 - $t0" | bc -l)
done
echo "$pack_s $sq_s" >"$W/make.s"
fi
read -r pack_s sq_s <"$W/make.s"
clc_bytes=$(du -cb --apparent-size "$W"/ar.[0-9]* | tail -1 | cut -f1)
sq_bytes=$(du -cb --apparent-size "$W"/sq/*.sqfs | tail -1 | cut -f1)

mount_clc() { "$CLC" mount "$W/ar.001" "$MNT"; }
mount_sqfs() { for i in "$W"/sq/*.sqfs; do m=$SQ/$(basename "$i" .sqfs); mkdir -p "$m"; squashfuse "$i" "$m"; done; }
umount_clc() { umount "$MNT"; }
umount_sqfs() { for m in "$SQ"/*; do umount "$m"; done; }
root() { case $1 in clc) echo "$MNT" ;; sqfs) echo "$SQ" ;; esac; }
declare -A R
add() { R[$1,$2]="${R[$1,$2]:-} $3"; echo "sample: $1 $2 $3"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for rep in $(seq "$REPS"); do
    for t in clc sqfs; do
        t0=$(now); mount_$t; ls "$(root $t)" >/dev/null; t1=$(now)
        add mount_warm $t "$(secs "$t0" "$t1")"
        umount_$t
        cold
        t0=$(now); mount_$t; ls "$(root $t)" >/dev/null; t1=$(now)
        add mount_cold $t "$(secs "$t0" "$t1")"
        [ "$t" = clc ] && add files $t "$(cd "$MNT" && find . | wc -l)"
        [ "$t" = sqfs ] && add files $t "$(cd "$SQ" && find . | wc -l)"
        umount_$t
        mount_$t; cold
        t0=$(now); (cd "$(root $t)" && find . -print0 | xargs -0 stat >/dev/null); t1=$(now)
        add stat $t "$(secs "$t0" "$t1")"
        umount_$t
    done
done
echo "tree: $DIR ($(du -s --apparent-size --bytes "$DIR" | cut -f1) bytes, $(find "$DIR" -type f | wc -l) files), $N versions; $(tail -1 "$W/mutate.log")"
echo "clc $(git -C "$HERE" rev-parse --short HEAD), $(mksquashfs -version 2>&1 | head -1), squashfuse $(dpkg-query -W -f '${Version}' squashfuse 2>/dev/null); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| | clc (one archive, %s snapshots) | squashfuse (%s images) |\n|---|---|---|\n' "$N" "$N"
printf '| bytes | %s | %s |\n' "$clc_bytes" "$sq_bytes"
printf '| make all versions, s | %.2f | %.2f |\n' "$pack_s" "$sq_s"
for m in mount_warm mount_cold stat; do
    printf '| %s, s (median of %s) | %.3f | %.3f |\n' "$m" "$REPS" \
        "$(echo "${R[$m,clc]}" | median)" "$(echo "${R[$m,sqfs]}" | median)"
done
printf '| entries seen by find | %s | %s |\n' "$(echo "${R[files,clc]}" | median)" "$(echo "${R[files,sqfs]}" | median)"
