#!/bin/bash
# NUM_SCAN_WORKERS 4 vs 16 on the lent 16-core machine (docs/BENCHMARKS.md §4); carried like h100-scaling.sh.
D=$(dirname "$0"); cd "$D"; D=$PWD
exec > >(tee "$OUT/scan.log") 2>&1
T="python3 $D/timed.py"
mkdir -p /tmp/ver && for f in "$D"/django/*.tar.gz; do tar xzf "$f" -C /tmp/ver; done
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
for tree in /tmp/ver /tmp/src; do
  tar cf - -C $tree . | cat > /dev/null
  for w in 4 16 4 16; do
    printf "NUM_SCAN_WORKERS = $w\n" > /tmp/w.cfg
    for i in 1 2 3; do rm -f /tmp/a.*; echo "$tree scan_workers=$w: $($T $D/clc pack $tree -o /tmp/a --cpu -q --config /tmp/w.cfg) $(CLC_TRACE=1 $D/clc pack $tree -o /tmp/b --cpu -q --force --config /tmp/w.cfg 2>&1 | grep 'scan done')"; done
  done
done
