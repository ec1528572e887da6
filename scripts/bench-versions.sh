#!/usr/bin/env bash
# Two versions of a tree as two snapshots of one archive (`clc pack --append`, the second version replacing
# the first at the same path) against one plain archive of both trees side by side (docs/BENCHMARKS.md §9).
#
# Usage: scripts/bench-versions.sh OLD NEW [WORK]
# Prints the bytes of both (all volumes) and their ratio.
set -euo pipefail
OLD=${1:?usage: $0 OLD NEW [WORK]}
NEW=${2:?usage: $0 OLD NEW [WORK]}
W=${3:-/tmp/bench-versions}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CLC=${CLC:-$HERE/target/release/clc}
[ -x "$CLC" ] || (cd "$HERE" && cargo build --release --quiet)
rm -rf "$W"; mkdir -p "$W/side" "$W/ver"
size() { du -s --apparent-size --bytes "$@" | awk '{s+=$1} END {print s+0}'; }
cp -a "$OLD" "$W/side/old"; cp -a "$NEW" "$W/side/new"
t0=$(date +%s.%N)
"$CLC" pack "$W/side" -o "$W/side-archive" -q
t1=$(date +%s.%N)
side=$(size "$W"/side-archive.[0-9]*)
cp -a "$OLD" "$W/ver/tree"
t2=$(date +%s.%N)
"$CLC" pack "$W/ver/tree" -o "$W/versioned" --append -q --name old
t3=$(date +%s.%N)
rm -rf "$W/ver/tree"; cp -a "$NEW" "$W/ver/tree"
t4=$(date +%s.%N)
"$CLC" pack "$W/ver/tree" -o "$W/versioned" --append -q --name new
t5=$(date +%s.%N)
ver=$(size "$W"/versioned.[0-9]*)
echo "old: $OLD ($(size "$OLD") bytes), new: $NEW ($(size "$NEW") bytes); clc $(git -C "$HERE" rev-parse --short HEAD); $(nproc) cores"
printf '| archive | bytes | × side by side | pack s |\n|---|---|---|---|\n'
printf '| one archive, both trees side by side | %s | 1.000 | %.2f |\n' "$side" "$(echo "$t1 - $t0" | bc -l)"
printf '| two snapshots (--append) | %s | %.3f | %.2f + %.2f |\n' "$ver" "$(echo "$ver / $side" | bc -l)" \
    "$(echo "$t3 - $t2" | bc -l)" "$(echo "$t5 - $t4" | bc -l)"
"$CLC" snapshots "$W/versioned.001"
