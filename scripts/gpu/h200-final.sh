#!/bin/bash
# Issue 17, sixth run: the encoder with anchors at 1 in 16 (ABITS 4, the final default): kernel beside
# nvCOMP on the Rust-doc tar (1 and 2 GPUs), and pack end to end with the GPU on both trees.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
exec > >(tee "$OUT/run6.log") 2>&1
export PATH=$D/bin:$PATH CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; CLC=$D/clc
mkdir -p /tmp/t && tar xJf $R/.dev-gpu-shared/rdoc.tar.xz -C /tmp/t
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
(cd /tmp/t/rdoc && find . -type f | awk -F/ '{k=""; for(i=3;i<=NF;i++) k=k"/"$i; print k"\t"$0}' | sort | cut -f2 > /tmp/list && tar cf /tmp/rdoc.tar -T /tmp/list)
for a in "--device NVIDIA --batch 32" "--device NVIDIA --batch 128" "--device all --batch 128"; do
  echo "-- gpu_bench $a"; timeout 200 $D/gpu_bench /tmp/rdoc.tar $a --compress-only --repeat 3 | grep -v "n/a          n/a"
done
python3 -m pip install -q --no-index --no-deps --target /tmp/site $R/.dev-gpu-shared/whl/*.whl && PYTHONPATH=/tmp/site timeout 120 python3 $D/nvcomp_bench.py /tmp/rdoc.tar | grep LZ4
mkdir -p /tmp/one && cp -a /tmp/t/rdoc/std-1.95/process /tmp/one/ && $CLC pack /tmp/one -o /tmp/w --gpu-device all -q  # compiles the kernels once
for tree in /tmp/t/rdoc /tmp/src; do
  tar cf - -C $tree . > /dev/null
  for i in 1 2; do
    rm -f /tmp/a.*; echo "$tree cpu: $($T $CLC pack $tree -o /tmp/a --cpu -q)"
    rm -f /tmp/g.*; echo "$tree gpu1: $($T $CLC pack $tree -o /tmp/g --gpu-device NVIDIA -q)"
    rm -f /tmp/h.*; echo "$tree gpu2: $($T $CLC pack $tree -o /tmp/h --gpu-device all -q)"
  done
  echo "$tree sizes: cpu $(cat /tmp/a.* | wc -c) gpu1 $(cat /tmp/g.* | wc -c) gpu2 $(cat /tmp/h.* | wc -c)"
  cmp /tmp/g.001 /tmp/h.001 && echo "$tree: 1-GPU and 2-GPU archives identical"
  $CLC verify /tmp/g.001 > /dev/null && echo "$tree: GPU archive verifies"
  rm -f /tmp/x.*; CLC_TRACE=1 $CLC pack $tree -o /tmp/x --gpu-device NVIDIA 2>&1 | grep "trace: [A-Z]\|^time\|^frames"
done
