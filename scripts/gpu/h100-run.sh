#!/bin/bash
# How to run: build here (cargo build --release --examples), copy target/release/{clc,examples/gpu_bench}
# (stripped), this script, nvcomp_bench.py and the nvidia-nvcomp-cu13 + nvidia-libnvcomp-cu13 wheels (in whl/)
# into one folder, carry it to the GPU machine and run this script from there; results go to $OUT/run2.log.
# Final H100 run: kernel throughput vs nvCOMP on the same tar; clc pack/extract end to end, CPU threads vs GPU.
D=$(dirname "$0"); cd "$D"; D=$PWD
exec > >(tee $OUT/run2.log) 2>&1
TIMEFORMAT=%R
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
tar cf /tmp/data.tar -C /tmp/src . ; ls -l /tmp/data.tar; du -sb /tmp/src
echo "== gpu_bench"
for b in 32 128; do timeout 120 $D/gpu_bench /tmp/data.tar --device NVIDIA --batch $b --repeat 3 2>&1 | tail -9; done
echo "== nvcomp"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $D/whl/*.whl && PYTHONPATH=/tmp/site timeout 120 python3 $D/nvcomp_bench.py /tmp/data.tar
echo "== tar | lz4 -1, zstd -3 (if present)"
which lz4 zstd
( time (tar cf - -C /tmp/src . | lz4 -1 -q > /tmp/t.lz4) ) 2>&1; ls -l /tmp/t.lz4 2>/dev/null
( time (tar cf - -C /tmp/src . | zstd -3 -T0 -q > /tmp/t.zst) ) 2>&1; ls -l /tmp/t.zst 2>/dev/null
echo "== clc pack, page cache warm"
tar cf - -C /tmp/src . > /dev/null
for t in 1 2 4 8 16; do rm -f /tmp/a.*; echo "cpu threads=$t: $( { time $D/clc pack /tmp/src -o /tmp/a --cpu --threads $t -q ; } 2>&1 ) s"; done
for i in 1 2; do rm -f /tmp/g.*; echo "gpu: $( { time $D/clc pack /tmp/src -o /tmp/g --gpu-device NVIDIA -q ; } 2>&1 ) s"; done
$D/clc pack /tmp/src -o /tmp/g2 --gpu-device NVIDIA | tail -4
ls -l /tmp/a.001 /tmp/g.001
echo "== clc extract"
for m in "--cpu" "--gpu-device NVIDIA"; do for i in 1 2; do rm -rf /tmp/x; echo "extract $m: $( { time $D/clc extract /tmp/a.001 -o /tmp/x $m -q ; } 2>&1 ) s"; done; done
rm -rf /tmp/x; $D/clc extract /tmp/g.001 -o /tmp/x --gpu-device NVIDIA | tail -2; diff -r /tmp/src /tmp/x > /dev/null && echo "gpu-made archive restored identical (decoded on GPU)"
rm -rf /tmp/y; $D/clc extract /tmp/g.001 -o /tmp/y --cpu -q; diff -r /tmp/src /tmp/y > /dev/null && echo "gpu-made archive restored identical (decoded on CPU)"
rm -rf /tmp/lx; mkdir /tmp/lx; echo "lz4 -d | tar x: $( { time (lz4 -d -q < /tmp/t.lz4 | tar xf - -C /tmp/lx) ; } 2>&1 ) s"
