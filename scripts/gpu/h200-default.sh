#!/bin/bash
# Issue 17, second run: the default (GPU_DEVICE = auto) against --cpu on the same trees, after the
# capability rule. Log: $OUT/run2.log.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
exec > >(tee "$OUT/run2.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; CLC=$D/clc
mkdir -p /tmp/t && tar xJf $R/.dev-gpu-shared/rdoc.tar.xz -C /tmp/t
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
mkdir -p /tmp/one && cp -a /tmp/t/rdoc/std-1.95/process /tmp/one/
for tree in /tmp/one /tmp/t/rdoc /tmp/src; do
  tar cf - -C $tree . > /dev/null
  rm -f /tmp/d.*; CLC_TRACE=1 $CLC pack $tree -o /tmp/d -q 2>&1 | grep "auto\|platforms"
  for i in 1 2 3 4 5; do
    rm -f /tmp/a.*; echo "$tree cpu: $($T $CLC pack $tree -o /tmp/a --cpu -q)"
    rm -f /tmp/d.*; echo "$tree default: $($T $CLC pack $tree -o /tmp/d -q)"
  done
  cmp /tmp/a.001 /tmp/d.001 && echo "$tree: default archive identical to --cpu ($(cat /tmp/d.* | wc -c) bytes)"
done
