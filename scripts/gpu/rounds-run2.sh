#!/bin/bash
# History: the rounds kernel's runs (binaries of commit 4447f9e); the decoder is now a walk + pointer jumping
# (scripts/gpu/jump-run.sh, GPU.md runs 25-26), whose host code does not load the rounds kernels' variants.
# Issue 16, run 12 of docs/GPU.md (rounds kernel): the binaries of rounds-run.sh (run 1) with kernel variants
# loaded through CLC_GPU_SB_SRC (same arguments, same host code), so no rebuild between the two calls:
#   k2.cl    checks and copies CH = 16 bytes per memory round trip (commit 8535020 without group checks)
#   k3.cl    k2 + group checks of matches with >= GCHK = 256 bytes left (kernels/lz_ext3_sb_decompress.cl
#            at 8535020); k3ch32 / k3ch8: CH 32 / 8; k3g64: GCHK 64
# Here: copy kernels/lz_ext3_sb_decompress.cl as k3.cl (and the variants, sed on the #defines) beside
# rounds-run.sh's files in .dev-gpu-gpu-dec/; run(command="bash .dev-gpu-gpu-dec/rounds-run2.sh",
# carry=[".dev-gpu-gpu-dec", ".dev-gpu-shared"]). Env: DEV (NVIDIA), TAR, REPS (3) as rounds-run.sh.
D=$(cd "$(dirname "$0")" && pwd); S=$(cd "$D/../.dev-gpu-shared" && pwd)
OUT=${OUT:-/tmp/rounds-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/rounds2.log") 2>&1
REPS=${REPS:-3}
DEV=${DEV:-NVIDIA}
export CLC_CACHE_DIR=/tmp/clc-cache
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local rc=$?; awk -v a="$s" -v b="$(date +%s.%N)" -v r=$rc 'BEGIN{printf "%.3f s (rc %d)\n", b-a, r}'; }
echo "== machine"; nvidia-smi -L 2>/dev/null; nproc
if [ -n "$TAR" ]; then cp "$TAR" /tmp/rdoc.tar; else xz -dc "$S/rdoc.tar.xz" > /tmp/rdoc.tar; fi; ls -l /tmp/rdoc.tar
B="$D/gpu_decode_bench"
for k in k2 k3 k3ch32 k3ch8 k3g64; do
  echo "== $k, 4 MiB frames"
  CLC_GPU_SB_SRC="$D/$k.cl" timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 | sed -n '5,7p'
done
export CLC_GPU_SB_SRC="$D/k3.cl"
echo "== k3, LONG 16 / 256"
CLC_GPU_SB_LONG=16 timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 | sed -n '5,6p'
CLC_GPU_SB_LONG=256 timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 | sed -n '5,6p'
echo "== k3, 16 MiB frames"
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --frame-size 16777216 | sed -n '5,7p'
echo "== k3, depth bound 16 / 4"
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --max-depth 16 | sed -n '3p;5,6p'
timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --max-depth 4 | sed -n '3p;5,6p'
echo "== k3: clc pack --cpu, then extract: --cpu vs --gpu-device $DEV, REPS interleaved"
C="$D/clc"
rm -rf /tmp/tree /tmp/a.* /tmp/x; mkdir -p /tmp/tree && tar xf /tmp/rdoc.tar -C /tmp/tree
$C pack /tmp/tree -o /tmp/a --cpu | tail -1
rm -rf /tmp/x; t $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV
for i in $(seq $REPS); do
  for m in "--cpu" "--gpu-device $DEV"; do rm -rf /tmp/x; sync; echo "extract [$m]: $(t $C extract /tmp/a.001 -o /tmp/x $m)"; done
done
rm -rf /tmp/x; echo "-- CLC_TRACE extract [--gpu-device $DEV]"
CLC_TRACE=1 $C extract /tmp/a.001 -o /tmp/x --gpu-device $DEV 2>&1 | grep -E "GpuKernel|Decode |share|GPU decoded|extracted"
diff -r /tmp/tree /tmp/x >/dev/null && echo "extract [--gpu-device $DEV] identical to the tree" || echo "extract DIFFERS"
echo "== done"
