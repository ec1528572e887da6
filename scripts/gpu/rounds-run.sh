#!/bin/bash
# History: the rounds kernel's runs (binaries of commit 421e9ee); the decoder is now a walk + pointer jumping
# (scripts/gpu/jump-run.sh, GPU.md runs 25-26), whose host code does not load the rounds kernels' variants.
# Issue 16, run 11 (docs/GPU.md): the rounds kernel (kernels/lz_ext3_sb_decompress.cl) on one H200, in one call:
# the decode kernel on the Rust-doc tar (4 and 16 MiB frames, variants) beside nvCOMP LZ4/Snappy on the
# same bytes, then `clc extract` with the GPU named vs --cpu (byte-exact against the tree).
#   Here: cargo build --release --bin clc --example gpu_decode_bench; copy target/release/clc and
#   target/release/examples/gpu_decode_bench (stripped), this script and scripts/gpu/nvcomp_bench.py
#   into .dev-gpu-gpu-dec/ of the main checkout; then run(command="bash .dev-gpu-gpu-dec/rounds-run.sh",
#   carry=[".dev-gpu-gpu-dec", ".dev-gpu-shared"]). The log comes back as $OUT/rounds.log.
# Env: REPS (3) repetitions of each extract timing; DEV (NVIDIA) the device; TAR a tar to use instead of
# rdoc.tar.xz and NONV=1 to skip nvCOMP (a dry run on PoCL elsewhere).
D=$(cd "$(dirname "$0")" && pwd); S=$(cd "$D/../.dev-gpu-shared" && pwd)
OUT=${OUT:-/tmp/rounds-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/rounds.log") 2>&1
REPS=${REPS:-3}
DEV=${DEV:-NVIDIA}
export CLC_CACHE_DIR=/tmp/clc-cache
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local rc=$?; awk -v a="$s" -v b="$(date +%s.%N)" -v r=$rc 'BEGIN{printf "%.3f s (rc %d)\n", b-a, r}'; }
echo "== machine"; nvidia-smi -L 2>/dev/null; nproc; free -g | head -2
if [ -n "$TAR" ]; then cp "$TAR" /tmp/rdoc.tar; else xz -dc "$S/rdoc.tar.xz" > /tmp/rdoc.tar; fi; ls -l /tmp/rdoc.tar
B="$D/gpu_decode_bench"
echo "== kernel: 4 MiB frames, 64 KiB sub-blocks (all 72 frames in one batch)"
timeout 100 $B /tmp/rdoc.tar --device $DEV --repeat 5
echo "== 16 MiB frames"
timeout 100 $B /tmp/rdoc.tar --device $DEV --repeat 5 --frame-size 16777216 | tail -5
echo "== variants, 4 MiB frames: no group copies (LONG 2^25); group copies from 16 bytes"
CLC_GPU_SB_LONG=33554432 timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 | tail -4 | head -2
CLC_GPU_SB_LONG=16 timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 | tail -4 | head -2
echo "== variants: encoder depth bound 16 and 4 rounds (ratio cost); 16 KiB sub-blocks; batch 8"
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --max-depth 16 | sed -n '3p;5,7p'
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --max-depth 4 | sed -n '3p;5,7p'
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --sb-log 14 | sed -n '3p;5,7p'
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --batch 8 | sed -n '5,7p'
if [ -z "$NONV" ]; then
  echo "== nvCOMP 6.0 on the same tar (device-resident, CUDA events)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$S"/whl/*.whl \
    && PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" /tmp/rdoc.tar LZ4,Snappy
fi
echo "== clc pack --cpu, then extract: --cpu vs --gpu-device $DEV (split by rates), REPS interleaved"
C="$D/clc"
rm -rf /tmp/tree /tmp/a.* /tmp/x; mkdir -p /tmp/tree && tar xf /tmp/rdoc.tar -C /tmp/tree && du -sb /tmp/tree
$C pack /tmp/tree -o /tmp/a --cpu | tail -2; ls -l /tmp/a.*
rm -rf /tmp/x; t $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV
for i in $(seq $REPS); do
  for m in "--cpu" "--gpu-device $DEV"; do rm -rf /tmp/x; echo "extract [$m]: $(t $C extract /tmp/a.001 -o /tmp/x $m)"; done
done
rm -rf /tmp/x; echo "-- CLC_TRACE extract [--gpu-device $DEV]"
CLC_TRACE=1 $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV 2>&1 | grep -v "^$" | tail -14
diff -r /tmp/tree /tmp/x >/dev/null && echo "extract [--gpu-device $DEV] identical to the tree" || echo "extract DIFFERS"
echo "== done"
