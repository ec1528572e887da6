#!/bin/bash
# CHUNK_FILES_FROM on the lent machine (issue 21): clc-main (every file cut by FastCDC) and clc (files under
# 1 MiB one chunk each) packing the Rust docs, the mixed tree (/usr/share/doc, python3, /usr/include) and
# python3 alone, in turn with `mksquashfs -comp lz4 -processors N`, REPS rounds, on every core and on two
# pinned cores (taskset -c 2,3; -processors 2). Wall and CPU (children's rusage) per pack, sizes once,
# a table of medians last. Carry: .dev-gpu-m (clc, clc-main, bin/mksquashfs, lib/), .dev-gpu-shared/rdoc.tar.xz;
# run(command="bash scripts/gpu/whole-run.sh", carry=[".dev-gpu-m", ".dev-gpu-shared"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/whole-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/whole.log") 2>&1
export PATH=$D/bin:$PATH LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
REPS=${REPS:-7}; N=$(nproc)
W=/tmp/wr; rm -rf $W; mkdir -p $W/t $W/mixed $W/py
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
cp -a /usr/lib/python3.* $W/py/ 2>/dev/null
for t in $W/t/rdoc $W/mixed $W/py; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
echo "cores $N; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
# wall and CPU seconds of one command (its children's rusage).
tm() { python3 -c '
import resource, subprocess, sys, time
r0 = resource.getrusage(resource.RUSAGE_CHILDREN); t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
t = time.perf_counter() - t0; r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{t:.4f} {r.ru_utime - r0.ru_utime + r.ru_stime - r0.ru_stime:.4f}" + ("" if rc == 0 else f" exit{rc}"))' "$@"; }
for mode in all two; do
  if [ $mode = all ]; then P="" ; NP=$N; else P="taskset -c 2,3"; NP=2; fi
  for tree in $W/t/rdoc $W/mixed $W/py; do
    n=$(basename $tree)
    for i in $(seq $REPS); do
      rm -f $W/s.sqfs; echo "R $mode $n sqfs $(tm $P mksquashfs $tree $W/s.sqfs -comp lz4 -processors $NP -noappend -quiet -no-progress)"
      for b in clc-main clc; do
        rm -f $W/a.*; echo "R $mode $n $b $(tm $P $D/$b pack $tree -o $W/a --cpu -q)"
      done
    done
    [ $mode = all ] && for b in clc-main clc; do rm -f $W/a.*; $D/$b pack $tree -o $W/a --cpu -q; echo "S $n $b $(cat $W/a.0* | wc -c)"; done
    [ $mode = all ] && echo "S $n sqfs $(stat -c %s $W/s.sqfs)"
    rm -f $W/a.* $W/s.sqfs
  done
done
echo "== table: medians of $REPS (wall s / CPU s); x sqfs = wall against mksquashfs in the same mode"
python3 - "$OUT/whole.log" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list); sz = {}
for l in open(sys.argv[1]):
    p = l.split()
    if p[:1] == ["R"] and len(p) == 6: d[(p[1], p[2], p[3])].append((float(p[4]), float(p[5])))
    if p[:1] == ["S"]: sz[(p[1], p[2])] = int(p[3])
print(f"{'mode':5} {'tree':6} {'tool':9} {'wall':>7} {'cpu':>7} {'x sqfs':>7} {'bytes':>11}")
for (m, t, b), v in sorted(d.items()):
    w = st.median(x[0] for x in v); c = st.median(x[1] for x in v)
    s = st.median(x[0] for x in d[(m, t, "sqfs")])
    print(f"{m:5} {t:6} {b:9} {w:7.3f} {c:7.3f} {w/s:7.3f} {sz.get((t, b), 0):11d}")
PY
