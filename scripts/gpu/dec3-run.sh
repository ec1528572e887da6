#!/bin/bash
# History (docs/GPU.md run 4): the out-of-order and in-order kernels it times were removed when the rounds
# kernel replaced them; it no longer measures what it says.
# Issue 16, out-of-order LZ_EXT3_SB decoder (per-byte readiness): kernel vs nvCOMP on the same tar, then
# `clc extract` of the tree with the GPU vs --cpu, in one call of at most ~3 minutes.
#   Here: cargo build --release --examples; copy target/release/clc and
#   target/release/examples/gpu_decode_bench (stripped), this script and scripts/gpu/nvcomp_bench.py into
#   .dev-gpu-gpu-dec/ of the main checkout; then run(command="bash .dev-gpu-gpu-dec/dec3-run.sh",
#   carry=[".dev-gpu-gpu-dec", ".dev-gpu-shared"]). The log comes back as $OUT/dec.log.
# Run 4 (docs/GPU.md) was this script on commit 628e78d, where the out-of-order kernel was the default;
# since then it is chosen by CLC_GPU_SB_OOO=1: export it (OOO=1 here does) to measure it again, beside
# a run without for the in-order kernel.
# Env: OOO=1 the out-of-order kernel; TAR a tar to use instead of rdoc.tar.xz and DEV (NVIDIA) the device (a dry run on PoCL elsewhere).
D=$(cd "$(dirname "$0")" && pwd); S=$(cd "$D/../.dev-gpu-shared" && pwd)
OUT=${OUT:-/tmp}
exec > >(tee "$OUT/dec.log") 2>&1
REPS=${REPS:-3}
DEV=${DEV:-NVIDIA}
export CLC_CACHE_DIR=/tmp/clc-cache
[ -n "$OOO" ] && export CLC_GPU_SB_OOO=1
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local rc=$?; awk -v a="$s" -v b="$(date +%s.%N)" -v r=$rc 'BEGIN{printf "%.3f s (rc %d)\n", b-a, r}'; }
echo "== machine"; nvidia-smi -L 2>/dev/null; nproc
if [ -n "$TAR" ]; then cp "$TAR" /tmp/rdoc.tar; else xz -T0 -dc "$S/rdoc.tar.xz" > /tmp/rdoc.tar; fi; ls -l /tmp/rdoc.tar
rm -rf /tmp/tree /tmp/a.* /tmp/x; mkdir -p /tmp/tree && tar xf /tmp/rdoc.tar -C /tmp/tree
B="$D/gpu_decode_bench"
echo "== kernel: LZ_EXT3_SB, 4 MiB frames, 64 KiB sub-blocks, all frames in one launch (+ v1 kernel)"
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 5 --v1
echo "== 16 MiB frames"
timeout 30 $B /tmp/rdoc.tar --device $DEV --repeat 3 --frame-size 16777216 | tail -3
echo "== portable loads/fence (CLC_GPU_SB_PTX=0)"
CLC_GPU_SB_PTX=0 timeout 30 $B /tmp/rdoc.tar --device $DEV --repeat 3 | tail -3
echo "== group copies from 128 bytes (CLC_GPU_SB_LONG=128); batch 8"
CLC_GPU_SB_LONG=128 timeout 30 $B /tmp/rdoc.tar --device $DEV --repeat 3 | tail -3
timeout 30 $B /tmp/rdoc.tar --device $DEV --repeat 3 --batch 8 | tail -3
if [ -d "$S/whl" ] && command -v nvidia-smi >/dev/null; then
  echo "== nvCOMP 6.0 on the same tar (device-resident, CUDA events)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$S"/whl/*.whl \
    && PYTHONPATH=/tmp/site timeout 60 python3 "$D/nvcomp_bench.py" /tmp/rdoc.tar LZ4,Snappy
fi
echo "== clc pack --cpu"
C="$D/clc"
timeout 60 $C pack /tmp/tree -o /tmp/a --cpu | tail -2; ls -l /tmp/a.*
echo "== extract: REPS of each mode, interleaved"
rm -rf /tmp/x; t timeout 30 $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV
for i in $(seq $REPS); do
  for m in "--cpu" "--gpu-device $DEV"; do rm -rf /tmp/x; sync; echo "extract [$m]: $(t timeout 30 $C extract /tmp/a.001 -o /tmp/x $m)"; done
done
rm -rf /tmp/x; echo "-- CLC_TRACE extract [--gpu-device $DEV]"
CLC_TRACE=1 timeout 30 $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV 2>&1 | grep -v "^$" | tail -14
diff -r /tmp/tree /tmp/x >/dev/null && echo "extract [--gpu-device $DEV] identical to the tree" || echo "extract DIFFERS"
rm -rf /tmp/x; echo "-- CLC_TRACE extract [--cpu]"; CLC_TRACE=1 timeout 30 $C extract /tmp/a.001 -o /tmp/x --cpu 2>&1 | tail -6
echo "== done"
