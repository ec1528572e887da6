#!/bin/bash
# Where a --cpu pack's time goes on the lent machine (issues 17 and 21): the Rust docs, the mixed tree
# (/usr/share/doc, python3, /usr/include) and python3 alone, packed with clc-main and clc alternating
# (REPS each, onto the disk and into /dev/shm) beside mksquashfs -comp lz4 -processors N; then one pack of
# each tree with CLC_TRACE_EVENTS (the stage intervals per thread, under $OUT) and `strace -f -T` of the
# syncs where strace is installed. Carry: .dev-gpu-lead (clc, clc-main, timed.py, bin/ mksquashfs,
# lib/), .dev-gpu-shared/rdoc.tar.xz. copy this script there; run(command="bash .dev-gpu-lead/pack-probe.sh", carry=[...]).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd); OUT=${OUT:-/tmp/probe-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/probe.log") 2>&1
export PATH=$D/bin:$PATH LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
T="python3 $D/timed.py"; REPS=${REPS:-5}; N=$(nproc)
W=/tmp/pp; rm -rf $W; mkdir -p $W/t $W/src $W/py
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
cp -a /usr/lib/python3.* $W/py/ 2>/dev/null
for t in $W/t/rdoc $W/src $W/py; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
echo "cores $N; $(command -v perf || echo no perf); $(command -v strace || echo no strace); /tmp on $(df --output=source,fstype /tmp | tail -1)"
sec() { $T "$@" | cut -d' ' -f1; }
for tree in $W/t/rdoc $W/src $W/py; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    rm -f $W/s.sqfs; echo "$n sqfs: $(sec mksquashfs $tree $W/s.sqfs -comp lz4 -processors $N -noappend -quiet -no-progress)"
    for b in ${BINS:-clc-main clc}; do
      rm -f $W/a.*; echo "$n $b disk: $(sec $D/$b pack $tree -o $W/a --cpu -q)"
      rm -f /dev/shm/a.*; echo "$n $b shm: $(sec $D/$b pack $tree -o /dev/shm/a --cpu -q)"
      rm -f $W/a.*; echo "$n $b zstd disk: $(sec $D/$b pack $tree -o $W/a --cpu -q --codec zstd)"
    done
  done
  for b in ${BINS:-clc-main clc}; do
    rm -f $W/a.*; CLC_TRACE=1 CLC_TRACE_EVENTS=$OUT/ev-$n-$b.txt $D/$b pack $tree -o $W/a --cpu 2>&1 | grep "trace: \|^time" | sed "s/^/$n $b: /"
  done
  command -v strace >/dev/null && { rm -f $W/a.*; strace -f -T -e trace=fdatasync,fsync,rename -o $OUT/st-$n.txt $D/clc pack $tree -o $W/a --cpu -q; grep -v resumed $OUT/st-$n.txt | tail -5; }
  command -v perf >/dev/null && { rm -f $W/a.*; perf record -q -F 2999 -g -o $OUT/perf-$n.data $D/clc pack $tree -o $W/a --cpu -q 2>/dev/null; perf report -i $OUT/perf-$n.data --no-children --stdio --sort sym -g none 2>/dev/null | grep -v "^#\|^$" | head -40 > $OUT/perf-$n.txt; rm -f $OUT/perf-$n.data; }
  rm -f $W/a.* /dev/shm/a.*
done
echo "== table (medians of $REPS, s)"
python3 - "$OUT/probe.log" <<'PY'
import sys, re, statistics, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    m = re.match(r"^(\S+) (.+): ([0-9.]+)$", l.strip())
    if m: d[(m[1], m[2])].append(float(m[3]))
for (t, k), v in sorted(d.items()):
    print(f"{t:5} {k:22} {statistics.median(v):.3f}  ({len(v)} runs)")
PY
