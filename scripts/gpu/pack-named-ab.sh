#!/bin/bash
# Pack with a named GPU against --cpu, two builds in one call (issue 17: a named device no frame needs
# is not waited for when the probe table vouches for it). The carried folder D holds clc (new) and
# clc-old (before), scripts/gpu/timed.py as timed.py; each build runs as a file named clc (only a binary
# of that name probes the drivers, docs/GPU.md run 35). Trees: the Rust docs (.dev-gpu-shared/rdoc.tar.xz)
# and the machine's mixed tree (/usr/share/doc, python3, /usr/include). Modes: --cpu, default,
# --gpu-device NVIDIA, --gpu-device all (CPU_ONLY=1: --cpu alone); SQFS=1 adds mksquashfs -comp lz4
# -processors N (from D/bin, libraries in D/lib) on the same tree; REPS interleaved, medians last.
# run(command="REPS=5 bash scripts/gpu/pack-named-ab.sh .dev-gpu-final", carry=[".dev-gpu-final",
#     ".dev-gpu-shared/rdoc.tar.xz"], kind="nvidia-h200-x2")
set -u
D=$(realpath "${1:?usage: $0 CARRY_DIR}"); R=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-/tmp/pna-out}; mkdir -p "$OUT"; exec > >(tee "$OUT/pack-named-ab.log") 2>&1
REPS=${REPS:-5}; W=/dev/shm/pna; rm -rf $W; mkdir -p $W/t $W/src $W/new $W/old
export CLC_CACHE_DIR=/tmp/clc-cache
cp "$D/clc" $W/new/clc; cp "$D/clc-old" $W/old/clc
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
for t in $W/t/rdoc $W/src; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
for b in new old; do $W/$b/clc pack $W/t/rdoc/*/ -o $W/warm -q --gpu-device NVIDIA --force >/dev/null 2>&1; rm -f $W/warm.*; done
MODES=("--cpu" "" "--gpu-device NVIDIA" "--gpu-device all"); [ "${CPU_ONLY:-0}" = 1 ] && MODES=("--cpu")
export PATH=$D/bin:$PATH LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
for i in $(seq $REPS); do
  for t in $W/t/rdoc $W/src; do
    for m in "${MODES[@]}"; do
      for b in new old; do
        rm -f $W/a.*; s=$(python3 "$D/timed.py" $W/$b/clc pack $t -o $W/a -q $m | cut -d' ' -f1)
        echo "$(basename $t) $b [$m]: $s $(cat $W/a.* | wc -c)"
      done
    done
    if [ "${SQFS:-0}" = 1 ] && command -v mksquashfs >/dev/null; then
      rm -f $W/t.sqfs; s=$(python3 "$D/timed.py" mksquashfs $t $W/t.sqfs -comp lz4 -processors $(nproc) -noappend -quiet -no-progress | cut -d' ' -f1)
      echo "$(basename $t) mksquashfs [lz4]: $s $(stat -c %s $W/t.sqfs)"
    fi
  done
done
echo "== table (medians of $REPS, s; archive bytes)"
grep '\]: ' "$OUT/pack-named-ab.log" | python3 -c '
import sys, collections, statistics
d = collections.OrderedDict()
for l in sys.stdin:
    k, v = l.rsplit(": ", 1); s, n = v.split()
    d.setdefault(k, []).append((float(s), n))
for k, v in d.items():
    runs = " ".join("%.3f" % x for x, _ in v)
    print("%-40s %7.3f  runs %s  bytes %s" % (k, statistics.median(x for x, _ in v), runs, v[0][1]))
'
rm -rf $W
