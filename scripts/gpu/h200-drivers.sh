#!/bin/bash
# Issue 17, fourth run: the driver probe with OCL_ICD_FILENAMES counted; start-up with only NVIDIA's
# driver loaded; what GPU_DEVICE = auto decides.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
exec > >(tee "$OUT/run4.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; CLC=$D/clc
mkdir -p /tmp/t && tar xJf $R/.dev-gpu-shared/rdoc.tar.xz -C /tmp/t; mkdir -p /tmp/one && cp -a /tmp/t/rdoc/std-1.95/process /tmp/one/
echo "-- first pack --gpu-device NVIDIA (probes the drivers, compiles)"; CLC_TRACE=1 $T $CLC pack /tmp/one -o /tmp/x --gpu-device NVIDIA 2>&1 | grep -v "trace: [A-Z]"
cat $CLC_CACHE_DIR/opencl-icds.txt; ls $CLC_CACHE_DIR
for i in 1 2 3; do rm -f /tmp/x.*; echo "gpu NVIDIA: $($T $CLC pack /tmp/one -o /tmp/x --gpu-device NVIDIA -q)"; rm -f /tmp/x.*; echo "cpu: $($T $CLC pack /tmp/one -o /tmp/x --cpu -q)"; done
rm -f /tmp/x.*; CLC_TRACE=1 $CLC pack /tmp/one -o /tmp/x --gpu-device NVIDIA 2>&1 | grep "gpu:\|^GPU"
rm -f /tmp/x.*; CLC_TRACE=1 $CLC pack /tmp/one -o /tmp/x --gpu-device all 2>&1 | grep "gpu: Open\|^GPU"
for i in 1 2 3; do rm -f /tmp/x.*; echo "rdoc default: $($T $CLC pack /tmp/t/rdoc -o /tmp/x -q)"; done
rm -f /tmp/x.*; CLC_TRACE=1 $CLC pack /tmp/t/rdoc -o /tmp/x -q 2>&1 | grep "auto"
