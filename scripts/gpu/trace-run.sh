#!/bin/bash
# Where a 16-core `--cpu` pack's wall time goes after CHUNK_FILES_FROM (issues 17 and 21): the Rust docs and
# the mixed tree packed REPS times onto the disk and into /dev/shm (tmpfs: fsync costs nothing there), then
# once each with CLC_TRACE=1 (phases and stage table) and CLC_TRACE_EVENTS (every stage interval per
# thread, under $OUT), and `strace -f -T` of the syncs where strace exists. Carry: .dev-gpu-m (clc),
# .dev-gpu-shared/rdoc.tar.xz; run(command="bash scripts/gpu/trace-run.sh", carry=[".dev-gpu-m", ".dev-gpu-shared"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/trace-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/trace.log") 2>&1
REPS=${REPS:-5}; W=/tmp/tr; rm -rf $W; mkdir -p $W/t $W/mixed
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
for t in $W/t/rdoc $W/mixed; do tar cf - -C $t . >/dev/null; done
echo "cores $(nproc); /tmp on $(df --output=source,fstype /tmp | tail -1); load $(cut -d' ' -f1-3 /proc/loadavg)"
ms() { local a b; a=$(date +%s%N); "$@"; b=$(date +%s%N); echo $(( (b - a) / 1000000 )); }
for tree in $W/t/rdoc $W/mixed; do n=$(basename $tree)
  for i in $(seq $REPS); do
    rm -f $W/a.*; d=$(ms $D/clc pack $tree -o $W/a --cpu -q)
    rm -f /dev/shm/a.*; s=$(ms $D/clc pack $tree -o /dev/shm/a --cpu -q)
    echo "R $n disk $d shm $s"
  done
  rm -f $W/a.*; CLC_TRACE=1 CLC_TRACE_EVENTS=$OUT/ev-$n.txt $D/clc pack $tree -o $W/a --cpu -q 2>&1 | grep -v "written:" | sed "s/^/$n disk: /"
  rm -f /dev/shm/a.*; CLC_TRACE=1 $D/clc pack $tree -o /dev/shm/a --cpu -q 2>&1 | grep -v "written:" | sed "s/^/$n shm: /"
  command -v strace >/dev/null && { rm -f $W/a.*; strace -f -T -e trace=fdatasync,fsync,rename -o $OUT/st-$n.txt $D/clc pack $tree -o $W/a --cpu -q; grep -v "exited" $OUT/st-$n.txt | tail -4 | sed "s/^/$n strace: /"; }
  rm -f $W/a.* /dev/shm/a.*
done
echo "== medians of $REPS, ms"
python3 - "$OUT/trace.log" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if p[:1] == ["R"]: d[(p[1], "disk")].append(int(p[3])); d[(p[1], "shm")].append(int(p[5]))
for k, v in sorted(d.items()): print(k[0], k[1], st.median(v), v)
PY
