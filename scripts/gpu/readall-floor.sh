#!/bin/bash
# Issue 20 on the lent machine: what a read-all of the Rust docs costs without FUSE, beside the mount's
# read-all and `clc extract` into tmpfs, all cores, interleaved REPS times: `tar cf - . | cat` over the
# unpacked tree in tmpfs (the reader's own floor: no server, every page cached), the same through
# `clc mount` with the page cache dropped after mounting (the archive in tmpfs stays cached), and
# `clc extract` into tmpfs; and the same two read-alls by $(nproc) parallel readers (`find -print0 | xargs
# -0 -P N -n 64 cat`), which read as the extract writes: many files at once. Table last; samples under $OUT.
#   bash scripts/gpu/readall-floor.sh DIR RDOC.tar.xz      (DIR/clc)
set -u
D=$(realpath "$1"); RDOC=$(realpath "$2"); OUT=${OUT:-/tmp/floor-out}; REPS=${REPS:-7}
mkdir -p "$OUT"
W=/dev/shm/fl; MNT=$W/mnt
cleanup() { mountpoint -q "$MNT" && umount "$MNT"; rm -rf "$W"; }
trap cleanup EXIT
cleanup; mkdir -p "$MNT"
xz -dc "$RDOC" | tar xf - -C "$W" && "$D/clc" pack "$W/rdoc" -o "$W/rdoc" --cpu -q || { echo "FAIL: setup"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
declare -A R
add() { R[$1]="${R[$1]:-} $2"; echo "sample $1 $2" >> "$OUT/samples"; }
for rep in $(seq "$REPS"); do
    t0=$(now); (cd "$W/rdoc" && tar cf - . | cat >/dev/null); add tmpfs "$(secs "$t0" "$(now)")"
    "$D/clc" mount "$W/rdoc.001" "$MNT"; sync; echo 3 >/proc/sys/vm/drop_caches
    t0=$(now); (cd "$MNT" && tar cf - . | cat >/dev/null); add mount "$(secs "$t0" "$(now)")"
    umount "$MNT"
    t0=$(now); (cd "$W/rdoc" && find . -type f -print0 | xargs -0 -P "$(nproc)" -n 64 cat >/dev/null); add ptmpfs "$(secs "$t0" "$(now)")"
    "$D/clc" mount "$W/rdoc.001" "$MNT"; sync; echo 3 >/proc/sys/vm/drop_caches
    t0=$(now); (cd "$MNT" && find . -type f -print0 | xargs -0 -P "$(nproc)" -n 64 cat >/dev/null); add pmount "$(secs "$t0" "$(now)")"
    umount "$MNT"
    rm -rf "$W/x"; sync; echo 3 >/proc/sys/vm/drop_caches
    t0=$(now); "$D/clc" extract "$W/rdoc.001" -o "$W/x" --cpu -q; add extract "$(secs "$t0" "$(now)")"
    rm -rf "$W/x"
done
med() { echo "${R[$1]}" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {printf "%s (%s-%s)", v[int((NR+1)/2)], v[1], v[NR]}'; }
echo "== $(nproc) cores, Rust docs ($(du -sb "$W/rdoc" | cut -f1) bytes), medians of $REPS (min-max), s"
echo "tar | cat from tmpfs (no FUSE): $(med tmpfs)"
echo "tar | cat through clc mount:    $(med mount)"
echo "clc extract into tmpfs:         $(med extract)"
echo "$(nproc) readers from tmpfs:          $(med ptmpfs)"
echo "$(nproc) readers through clc mount:   $(med pmount)"
