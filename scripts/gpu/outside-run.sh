#!/bin/bash
# What a 16-core `--cpu` pack spends outside its own trace (run 103: ~30 ms of a 170 ms pack of the Rust docs):
# the process's start (`clc --version`), a pack of an empty tree, and the Rust docs packed with CLC_TRACE=1,
# timed from outside, with peak RSS, minor faults and CPU from the children's rusage; then the same pack with
# --threads 2, 4, 8 (what the thread count costs at exit). REPS rounds, medians last.
# Carry: .dev-gpu-m (clc), .dev-gpu-shared/rdoc.tar.xz; run(command="bash scripts/gpu/outside-run.sh", carry=[...]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/outside-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/outside.log") 2>&1
REPS=${REPS:-7}; W=/tmp/os; rm -rf $W; mkdir -p $W/t $W/empty
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t; tar cf - -C $W/t . >/dev/null
echo "cores $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
# wall ms, CPU ms, peak RSS MiB, minor faults of one command; the trace's last line's time when traced.
tm() { python3 "$R/scripts/gpu/traced.py" "$@"; }
for i in $(seq $REPS); do
  echo "R version $(tm $D/clc --version)"
  rm -f $W/e.*; echo "R empty $(tm $D/clc pack $W/empty -o $W/e --cpu -q)"
  rm -f $W/a.*; echo "R rdoc $(CLC_TRACE=1 tm $D/clc pack $W/t/rdoc -o $W/a --cpu -q)"
  for n in 2 4 8; do rm -f $W/a.*; echo "R rdoc-t$n $(CLC_TRACE=1 tm $D/clc pack $W/t/rdoc -o $W/a --cpu -q --threads $n)"; done
done
echo "== medians of $REPS: wall ms, CPU ms, peak RSS MiB, minor faults, trace end ms (wall - trace = outside)"
python3 - "$OUT/outside.log" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if p[:1] == ["R"] and len(p) == 7: d[p[1]].append([float(x) for x in p[2:]])
for k, v in d.items():
    m = [st.median(x[i] for x in v) for i in range(5)]
    print(f"{k:9} wall {m[0]:7.1f}  cpu {m[1]:6.0f}  rss {m[2]:5.0f}  minflt {m[3]:7.0f}  trace {m[4]:6.1f}  outside {m[0]-m[4] if m[4] else 0:5.1f}")
PY
