#!/bin/bash
# A/B of `clc pack --cpu` (and the default) between clc binaries on the lent machine, interleaved, on the
# Rust-doc tree and a mixed tree (the machine's /usr/share/doc, python3, /usr/include), as final-run.sh
# section 1 makes them. Here: put stripped binaries named clc-* and timed.py into a folder .dev-gpu-X;
# run(command="bash scripts/gpu/pack-ab.sh .dev-gpu-X", carry=[".dev-gpu-X", ".dev-gpu-shared/rdoc.tar.xz"]).
# Logs under $OUT; a table (medians of REPS) last.
set -u
R=$(cd "$(dirname "$0")/../.." && pwd)
D=$(cd "${1:?usage: pack-ab.sh CARRY_DIR}" && pwd)
OUT=${OUT:-/tmp/pack-ab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/pack-ab.log") 2>&1
REPS=${REPS:-3}; T="python3 $D/timed.py"
nproc; uptime
W=/tmp/pab; rm -rf $W; mkdir -p $W/t $W/src
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
for t in $W/t/rdoc $W/src; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
for tree in $W/t/rdoc $W/src; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    for b in $D/clc-*; do
      v=$(basename $b)
      rm -f $W/a.*; echo "$n $v cpu: $($T $b pack $tree -o $W/a --cpu -q | cut -d' ' -f1)"
      echo "$n $v size: $(cat $W/a.* | wc -c)"
      rm -f $W/a.*; echo "$n $v default: $($T $b pack $tree -o $W/a -q | cut -d' ' -f1)"
    done
  done
  for b in $D/clc-*; do echo "-- trace $(basename $b) $n"; rm -f $W/a.*; CLC_TRACE=1 $b pack $tree -o $W/a --cpu -q 2>&1 | grep "trace: [A-Z]" | head -12; done
done
echo "== table (medians of $REPS)"
python3 "$R/scripts/gpu/medians.py" "$OUT/pack-ab.log" '\S+ \S+ (?:cpu|default|size)' 36
