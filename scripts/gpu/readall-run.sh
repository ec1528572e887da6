#!/bin/bash
# Issue 20 on the lent machine, session 13: the warm mount of this stop's build beside main's, and the
# read-all of the Rust docs on all cores against `clc extract` with the mount's push and thread knobs one
# at a time (scripts/gpu/mount-2core.sh with NAME@ENV=VALUE builds), then one traced read-all per knob
# on all cores (the mount's own count of first reads and of files pushed into the page cache, from
# CLC_TRACE at unmount). Tables last; logs under $OUT.
#   bash scripts/gpu/readall-run.sh DIR RDOC.tar.xz
# DIR: clc-main, clc, squashfuse, mksquashfs, lib/, gen-large.py, bench-ready (as mount-2core.sh).
set -u
D=$(realpath "$1"); RDOC=$(realpath "$2"); OUT=${OUT:-/tmp/readall-out}
mkdir -p "$OUT"
KNOBS=${KNOBS:-"CLC_MOUNT_PUSH_LIMITS=1048576,256,16777216 CLC_MOUNT_FUSE_THREADS=16 CLC_MOUNT_PUSH=0"}
B="clc-main clc"; for k in $KNOBS; do B="$B clc@$k"; done
OUT=$OUT/m REPS=${REPS:-3} REPS_READY=${REPS_READY:-61} BUILDS="$B" READY_BUILDS="clc-main clc" \
    bash "$(dirname "$0")/mount-2core.sh" "$D" "$RDOC" > "$OUT/mount.log" 2>&1
# Traced read-alls, all cores (the tree again: mount-2core.sh removed its work directory).
W=/dev/shm/ra; MNT=$W/mnt; mkdir -p "$MNT"
xz -dc "$RDOC" | tar xf - -C "$W" && "$D/clc" pack "$W/rdoc" -o "$W/rdoc" --cpu -q
for k in CLC_NONE=0 $KNOBS; do
    for rep in 1 2; do
        rm -f "$W/log"
        env "$k" CLC_TRACE=1 "$D/clc" mount "$W/rdoc.001" "$MNT" --log "$W/log" 2>>"$OUT/mount-stderr.log"
        sync; echo 3 >/proc/sys/vm/drop_caches
        t0=$(date +%s.%N); (cd "$MNT" && tar cf - . | cat >/dev/null); t1=$(date +%s.%N)
        umount "$MNT"; sleep 0.3
        echo "traced $k rep $rep: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') s; $(grep -h "first reads" "$W/log" | sed 's/.*trace: *[0-9.]* s *//')"
    done
done | tee "$OUT/traced.log"
rm -rf "$W"
echo "== mount-2core.sh tables"; sed -n '/^== read-all on CPUs/,$p' "$OUT/m/log" | head -40
echo "== traced read-alls, all cores"; cat "$OUT/traced.log"
