#!/bin/bash
# `clc extract` and `clc verify`, main's build (clc-main) against this session's (clc: extract decodes into
# the buffers of frames its writers are done with, verify reads and decodes into kept buffers), on all cores
# and on two pinned cores, into /dev/shm; and the Rust docs read through a fresh mount on all cores
# (`tar cf - . | cat`), issue 20's read-all against the extract. REPS rounds, builds alternating; the first
# extract of each build compared with its tree. Carry: .dev-gpu-m (clc, clc-main),
# .dev-gpu-shared/rdoc.tar.xz; run(command="bash scripts/gpu/xv-run.sh", carry=[".dev-gpu-m", ".dev-gpu-shared"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/xv-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/xv.log") 2>&1
REPS=${REPS:-7}; BUILDS=${BUILDS:-"clc-main clc"}; W=/dev/shm/xv; rm -rf $W; mkdir -p $W/t $W/mixed $W/mnt
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
echo "cores $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in rdoc mixed; do t=$W/t/rdoc; [ $n = mixed ] && t=$W/mixed
  $D/clc pack $t -o $W/$n --cpu -q; echo "$n: $(du -sb $t | cut -f1) bytes, archive $(cat $W/$n.0* | wc -c)"
  for b in $BUILDS; do rm -rf $W/x; $D/$b extract $W/$n.001 -o $W/x -q && diff -r --no-dereference $W/x $t >/dev/null && echo "$b $n: extract equal to the tree"; done
done
tm() { /usr/bin/time -f "%e %U %S %R" "$@" 2>&1 >/dev/null | tail -1; }
for i in $(seq $REPS); do
  for b in $BUILDS; do
    for n in rdoc mixed; do
      for mode in all pin2; do pre=(); [ $mode = pin2 ] && pre=(taskset -c 0,1)
        rm -rf $W/x; sync
        echo "X $n $mode $b $(tm "${pre[@]}" $D/$b extract $W/$n.001 -o $W/x -q)"
        echo "V $n $mode $b $(tm "${pre[@]}" $D/$b verify $W/$n.001 -q)"
      done
    done
    $D/$b mount $W/rdoc.001 $W/mnt; a=$(date +%s%N); (cd $W/mnt && tar cf - . | cat >/dev/null); z=$(date +%s%N)
    umount $W/mnt; sleep 0.2
    echo "M rdoc all $b $(awk -v a=$a -v z=$z 'BEGIN {printf "%.3f", (z - a) / 1e9}') 0 0 0"
  done
done | tee $OUT/rows.txt
rm -rf $W
echo "== medians of $REPS: wall s, CPU s (user + system), minor faults"
python3 - $OUT/rows.txt <<'PY'
import sys, collections, statistics as st
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if len(p) == 8 and p[0] in "XVM":
        d[tuple(p[:4])].append((float(p[4]), float(p[5]) + float(p[6]), int(p[7])))
for k in sorted(d):
    v = d[k]
    print(*k, "%.3f" % st.median(x[0] for x in v), "%.2f" % st.median(x[1] for x in v), int(st.median(x[2] for x in v)), " ".join("%.3f" % x[0] for x in v))
PY
