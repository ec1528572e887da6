#!/usr/bin/env bash
# Pack A/B of clc builds beside `mksquashfs -comp lz4 -processors $(nproc)` on the same trees, interleaved
# (each round runs every build on every tree in turn), `--cpu`, SOURCE_DATE_EPOCH fixed: one line per pack,
# `TREE BUILD WALL_S USER_S SYS_S PEAK_KB`, an `uptime` per round, then the medians (wall / CPU = user + sys).
# Usage: scripts/bench-stream-ab.sh NAME=CLC_BINARY... -- TREE...   REPS=N (default 5); NICE=N (default 0:
# a negative value keeps other processes' builds off the measured packs; needs root); OUT (default
# /dev/shm/clc-stream-ab, removed at the end). Build names: anything but `sqfs`, which is mksquashfs.
set -uo pipefail
BINS=(); while [ $# -gt 0 ] && [ "$1" != -- ]; do BINS+=("$1"); shift; done; shift
[ ${#BINS[@]} -ge 1 ] && [ $# -ge 1 ] || { echo "usage: $0 NAME=CLC... -- TREE..." >&2; exit 2; }
REPS=${REPS:-5}; O=${OUT:-/dev/shm/clc-stream-ab}; mkdir -p "$O"; LOG=$O/log
export SOURCE_DATE_EPOCH=1700000000
echo "$(nproc) cores, $(date -u '+%F %H:%M') UTC"
for i in $(seq "$REPS"); do
  for t in "$@"; do
    for nb in "${BINS[@]}" sqfs=; do
      n=${nb%%=*}; b=${nb#*=}; rm -f "$O"/x.*
      if [ "$n" = sqfs ]; then cmd="mksquashfs $t $O/x.sqfs -comp lz4 -processors $(nproc) -noappend -quiet -no-progress >/dev/null"
      else cmd="$b pack $t -o $O/x -q --cpu"; fi
      t0=$(date +%s.%N); nice -n "${NICE:-0}" /usr/bin/time -f "%U %S %M" -o "$O/cpu" bash -c "$cmd"; t1=$(date +%s.%N)
      echo "$(basename "$t") $n $(echo "$t1 - $t0" | bc -l) $(cat "$O/cpu")" | tee -a "$LOG"
    done
  done
  uptime
done
python3 - "$LOG" <<'PY'
import collections, statistics as st, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    t, n, wall, u, s, _ = line.split()
    rows[(t, n)].append((float(wall), float(u) + float(s)))
for (t, n), v in rows.items():
    print(f"{t:12s} {n:6s} wall {st.median(x[0] for x in v):.3f}  cpu {st.median(x[1] for x in v):.3f}  (wall {min(x[0] for x in v):.2f}-{max(x[0] for x in v):.2f})")
PY
rm -rf "$O"
