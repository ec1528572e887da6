#!/bin/bash
# Issue 17 run (nvidia-h200-x2): start-up, the PoCL abort (old vs new binary), the compression kernel
# beside nvCOMP LZ4 on the same tar (1 and 2 GPUs), and pack end to end on the Rust-doc tree and a
# mixed tree against tar|lz4 -1 and tar|zstd -3 -T0 (--cpu, default, 1 GPU, 2 GPUs), with CLC_TRACE.
# Carried: clc (this branch), clc-main (main before it), gpu_bench, timed.py, nvcomp_bench.py,
# bin/{lz4,zstd} + lib/; and .dev-gpu-shared (rdoc.tar.xz, nvCOMP wheels). Log: $OUT/run.log. Copy this file into the carried folder as run.sh.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
exec > >(tee "$OUT/run.log") 2>&1
export PATH=$D/bin:$PATH CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; CLC=$D/clc; OLD=$D/clc-main
nproc; nvidia-smi -L; nvidia-smi --query-gpu=clocks.sm,clocks.mem,persistence_mode --format=csv
echo "== info --devices (cold, then again)"; $T $CLC info --devices; $T $CLC info --devices
mkdir -p /tmp/t && tar xJf $R/.dev-gpu-shared/rdoc.tar.xz -C /tmp/t
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
mkdir -p /tmp/one && cp -a /tmp/t/rdoc/std-1.95/process /tmp/one/
for t in /tmp/t/rdoc /tmp/src /tmp/one; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . > /dev/null; done
P=$($CLC info --devices | grep -i -m1 "portable\|pocl" | cut -d: -f1); echo "PoCL device index: $P"

echo "== start-up, 1 MB tree"
rm -f /tmp/o.*; echo "gpu first (compiles): $($T $CLC pack /tmp/one -o /tmp/o --gpu-device NVIDIA -q)"
for i in 1 2 3; do
  rm -f /tmp/o.*; echo "cpu: $($T $CLC pack /tmp/one -o /tmp/o --cpu -q)"
  rm -f /tmp/o.*; echo "default: $($T $CLC pack /tmp/one -o /tmp/o -q)"
  rm -f /tmp/o.*; echo "gpu NVIDIA: $($T $CLC pack /tmp/one -o /tmp/o --gpu-device NVIDIA -q)"
done
rm -f /tmp/o.*; CLC_TRACE=1 $CLC pack /tmp/one -o /tmp/o --gpu-device NVIDIA -q 2>&1 | grep "gpu:\|GPU\|Finish"

echo "== PoCL (device $P): main's binary, then this one"
for b in $OLD $CLC; do rm -f /tmp/p.*; timeout 300 $b pack /tmp/t/rdoc/std-1.95/sync -o /tmp/p --gpu-device $P --frame-size 1M -q; echo "$(basename $b) --gpu-device $P: exit $?"; done

echo "== kernel vs nvCOMP (Rust-doc tree as one tar, similar order)"
(cd /tmp/t/rdoc && find . -type f | awk -F/ '{k=""; for(i=3;i<=NF;i++) k=k"/"$i; print k"\t"$0}' | sort | cut -f2 > /tmp/list && tar cf /tmp/rdoc.tar -T /tmp/list); ls -l /tmp/rdoc.tar
for a in "--device NVIDIA --batch 32" "--device NVIDIA --batch 128" "--device all --batch 32" "--device all --batch 128"; do
  echo "-- gpu_bench $a"; timeout 240 $D/gpu_bench /tmp/rdoc.tar $a --compress-only --repeat 3
done
python3 -m pip install -q --no-index --no-deps --target /tmp/site $R/.dev-gpu-shared/whl/*.whl && PYTHONPATH=/tmp/site timeout 120 python3 $D/nvcomp_bench.py /tmp/rdoc.tar

echo "== end to end"
for tree in /tmp/t/rdoc /tmp/src; do
  echo "--- $tree"
  for i in 1 2 3; do
    echo "lz4: $($T bash -c "tar cf - -C $tree . | lz4 -1 -q > /tmp/t.lz4")"
    echo "zstd: $($T bash -c "tar cf - -C $tree . | zstd -3 -T0 -q > /tmp/t.zst")"
    rm -f /tmp/a.*; echo "cpu: $($T $CLC pack $tree -o /tmp/a --cpu -q)"
    rm -f /tmp/d.*; echo "default: $($T $CLC pack $tree -o /tmp/d -q)"
    rm -f /tmp/g.*; echo "gpu1: $($T $CLC pack $tree -o /tmp/g --gpu-device NVIDIA -q)"
    rm -f /tmp/h.*; echo "gpu2: $($T $CLC pack $tree -o /tmp/h --gpu-device all -q)"
  done
  echo "sizes: lz4 $(stat -c %s /tmp/t.lz4) zstd $(stat -c %s /tmp/t.zst) cpu $(cat /tmp/a.* | wc -c) default $(cat /tmp/d.* | wc -c) gpu1 $(cat /tmp/g.* | wc -c) gpu2 $(cat /tmp/h.* | wc -c)"
  cmp /tmp/g.001 /tmp/h.001 && echo "1-GPU and 2-GPU archives identical"
  $CLC verify /tmp/h.001 > /dev/null && echo "2-GPU archive verifies"
  for m in "--cpu" "--gpu-device NVIDIA" "--gpu-device all"; do
    echo "trace $m:"; rm -f /tmp/x.*; CLC_TRACE=1 $CLC pack $tree -o /tmp/x $m 2>&1 | grep -v "^dedup\|^packed"
  done
done
echo "== summary"; grep -E "^(cpu|default|gpu|lz4|zstd|sizes|tree|nvcomp|compress |gpu / cpu|clc-main|clc --|1-GPU|2-GPU)" $OUT/run.log | tail -80
