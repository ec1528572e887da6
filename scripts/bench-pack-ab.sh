#!/usr/bin/env bash
# Pack one tree with several clc builds and `mksquashfs -comp lz4`, alternating, and print each one's median
# wall time and its runs (BENCHMARKS.md 11.7-11.8).
# Usage: scripts/bench-pack-ab.sh TREE REPS CODEC CLC_BINARY...   (BENCH_TMP: where archives go, default /tmp)
# On a machine shared with builds, run it as root with `nice -n -15` and autogroup off
# (`echo 0 > /proc/sys/kernel/sched_autogroup_enabled`) so that the builds, at nice 10, yield.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: scripts/bench-pack-ab.sh TREE REPS CODEC CLC_BINARY..." >&2; exit 2; }
T=$1; R=$2; CO=$3; shift 3
W=$(mktemp -d "${BENCH_TMP:-/tmp}/clc-pab.XXXXXX")
trap 'rm -rf "$W"' EXIT
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }
for _ in $(seq "$R"); do
    for b in "$@"; do
        rm -f "$W"/a.*
        echo "$(basename "$b") $(ms "$b" pack "$T" -o "$W/a" --codec "$CO" -q)"
    done
    rm -f "$W/s.sqfs"
    echo "mksquashfs $(ms mksquashfs "$T" "$W/s.sqfs" -comp lz4 -quiet -no-progress)"
done | sort -k1,1 -k2n | awk '{a[$1] = a[$1] " " $2; n[$1]++; v[$1, n[$1]] = $2}
    END {for (k in a) printf "%-12s median %5d ms |%s\n", k, v[k, int((n[k] + 1) / 2)], a[k]}' | sort
