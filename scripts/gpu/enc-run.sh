#!/bin/bash
# The LZ_EXT3_SB encoder's code changes on the lent machine (issue 21): each `sb_speed` build in ENCS
# (examples/sb_speed.rs: one core, 4 MiB frames, default params; MB/s and a digest of the output) pinned to
# one core (taskset -c 3), in turn, ROUNDS rounds, over three tars: the machine's python3, the Rust docs
# (carried) and a mixed tree (/usr/share/doc, python3, /usr/include); then whole packs of the three trees,
# every build in BUILDS against `mksquashfs -comp lz4` (scripts/gpu/whole-run.sh's loop), on all cores and
# on two pinned ones (PACKS=0: the encoders only). Tables of medians last.
# Carry: .dev-gpu-m (sb_* , clc builds, bin/mksquashfs, lib/), .dev-gpu-shared/rdoc.tar.xz;
# run(command="ENCS=\"sb_base sb_ws sb_pf\" BUILDS=\"clc-main clc-ws clc-pf\" bash scripts/gpu/enc-run.sh",
#     carry=[".dev-gpu-m", ".dev-gpu-shared"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/enc-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/enc.log") 2>&1
export PATH=$D/bin:$PATH LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ENCS=${ENCS:-"sb_base sb_ws"}; BUILDS=${BUILDS:-"clc-main clc-ws"}
ROUNDS=${ROUNDS:-5}; REPS=${REPS:-5}; SAMPLES=${SAMPLES:-5}; PACKS=${PACKS:-1}; N=$(nproc)
W=/tmp/er; rm -rf $W; mkdir -p $W/t $W/mixed $W/py
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
cp -a /usr/lib/python3.* $W/py/ 2>/dev/null
for t in rdoc mixed py; do
  src=$W/$t; [ $t = rdoc ] && src=$W/t/rdoc
  tar cf $W/$t.tar -C $src .
  echo "tree $t: $(du -sb --apparent-size $src | cut -f1) bytes, $(find $src -type f | wc -l) files; tar $(stat -c %s $W/$t.tar)"
done
echo "cores $N; $(uname -r); load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$ROUNDS"); do
  for t in py rdoc mixed; do
    for e in $ENCS; do
      echo "E $t $e $(taskset -c 3 $D/$e $W/$t.tar 4 $SAMPLES)"
    done
  done
done
echo "== encoder, one pinned core: medians of $ROUNDS runs' medians ($SAMPLES samples each), MB/s; digests must agree"
python3 - "$OUT/enc.log" <<'PY'
import sys, statistics as st, collections, re
d = collections.defaultdict(list); dg = {}
for l in open(sys.argv[1]):
    m = re.match(r"E (\S+) (\S+) .*-> (\d+) .*digest (\w+), median ([\d.]+)", l)
    if m:
        t, e, size, g, v = m.groups(); d[(t, e)].append(float(v)); dg.setdefault((t, e), set()).add((size, g))
encs = sorted({e for _, e in d})
for t in ["py", "rdoc", "mixed"]:
    base = st.median(d[(t, encs[0])]) if (t, encs[0]) in d else None
    for e in encs:
        if (t, e) not in d: continue
        v = st.median(d[(t, e)])
        print(f"{t:6} {e:10} {v:8.1f} MB/s  x {v/base:5.3f}  (min {min(d[(t,e)]):.1f} max {max(d[(t,e)]):.1f})  {sorted(dg[(t,e)])}")
PY
[ "$PACKS" = 1 ] || exit 0
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
      for b in $BUILDS; do
        rm -f $W/a.*; echo "R $mode $n $b $(tm $P $D/$b pack $tree -o $W/a --cpu -q)"
      done
    done
    [ $mode = all ] && for b in $BUILDS; do rm -f $W/a.*; SOURCE_DATE_EPOCH=1700000000 $D/$b pack $tree -o $W/a --cpu -q; echo "S $n $b $(cat $W/a.0* | wc -c) $(cat $W/a.0* | md5sum | cut -c1-12)"; done
    rm -f $W/a.* $W/s.sqfs
  done
done
echo "== packs: medians of $REPS (wall s / CPU s); x sqfs = wall against mksquashfs in the same mode"
python3 - "$OUT/enc.log" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list); sz = {}
for l in open(sys.argv[1]):
    p = l.split()
    if p[:1] == ["R"] and len(p) == 6: d[(p[1], p[2], p[3])].append((float(p[4]), float(p[5])))
    if p[:1] == ["S"]: sz[(p[1], p[2])] = f"{p[3]} {p[4]}"
print(f"{'mode':5} {'tree':6} {'tool':9} {'wall':>7} {'cpu':>7} {'x sqfs':>7}  bytes md5")
for (m, t, b), v in sorted(d.items()):
    w = st.median(x[0] for x in v); c = st.median(x[1] for x in v)
    s = st.median(x[0] for x in d[(m, t, "sqfs")])
    print(f"{m:5} {t:6} {b:9} {w:7.3f} {c:7.3f} {w/s:7.3f}  {sz.get((t, b), '')}")
PY
