#!/bin/bash
# Issue 20 on the lent machine: is the first read-all through a mount of a freshly made archive slow
# (runs 98-100: 1.2-1.4 s against 0.4-0.5 for later ones), and is it clc's? Each step: a fresh mount,
# page cache dropped after mounting, `tar cf - . | cat` over it, all cores. Steps: the Rust docs unpacked
# into tmpfs and packed (A), three read-alls of A; packed again under another name (B), two read-alls of B;
# a third pack (C) whose volume is read once with `cat` before mounting, two read-alls; a squashfs image of
# the same tree made fresh, two read-alls through squashfuse.
#   bash scripts/gpu/first-readall.sh DIR RDOC.tar.xz   (DIR: clc, squashfuse, mksquashfs, lib/)
set -u
D=$(realpath "$1"); RDOC=$(realpath "$2")
W=/dev/shm/fr; MNT=$W/mnt; LIB="env LD_LIBRARY_PATH=$D/lib"
cleanup() { mountpoint -q "$MNT" && umount "$MNT"; rm -rf "$W"; }
trap cleanup EXIT
cleanup; mkdir -p "$MNT"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
readall() { # label, mount command...
    local label=$1; shift
    "$@" "$MNT"; sync; echo 3 >/proc/sys/vm/drop_caches
    local t0; t0=$(now); (cd "$MNT" && tar cf - . | cat >/dev/null); echo "$label: $(secs "$t0" "$(now)") s"
    umount "$MNT"
}
t0=$(now); xz -dc "$RDOC" | tar xf - -C "$W"; echo "unpacked in $(secs "$t0" "$(now)") s"
t0=$(now); "$D/clc" pack "$W/rdoc" -o "$W/a" --cpu -q; echo "pack A in $(secs "$t0" "$(now)") s"
for i in 1 2 3; do readall "A read-all $i" "$D/clc" mount "$W/a.001"; done
t0=$(now); "$D/clc" pack "$W/rdoc" -o "$W/b" --cpu -q; echo "pack B in $(secs "$t0" "$(now)") s"
for i in 1 2; do readall "B read-all $i" "$D/clc" mount "$W/b.001"; done
"$D/clc" pack "$W/rdoc" -o "$W/c" --cpu -q; cat "$W/c.001" >/dev/null
for i in 1 2; do readall "C (volume read once first) read-all $i" "$D/clc" mount "$W/c.001"; done
t0=$(now); $LIB "$D/mksquashfs" "$W/rdoc" "$W/x.sqfs" -comp lz4 -quiet -no-progress >/dev/null; echo "mksquashfs in $(secs "$t0" "$(now)") s"
for i in 1 2; do readall "squashfuse read-all $i" $LIB "$D/squashfuse" "$W/x.sqfs"; done
