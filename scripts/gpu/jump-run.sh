#!/bin/bash
# Issue 16, runs 25-27 of docs/GPU.md: the LZ_EXT3_SB decoder as a walk + pointer jumping, on one H200, in one call:
#   1. the kernel on the Rust-doc tar (4 MiB frames, all 72 in one batch; 16 MiB frames; variants through
#      VARIANTS, env settings of CLC_GPU_SB_JUMPS / _JPER / _JWG / _LONG; batches of 8 and 16; 16 KiB
#      sub-blocks), every frame compared with the
#      input and with the CPU decoder's bytes, beside the CPU decoder on every thread;
#   2. nvCOMP 6.0 LZ4 and Snappy decompress on the same bytes;
#   3. `clc extract` and read-all through `clc mount` of the archive packed with --cpu: --cpu, the default,
#      the GPU named (the split), and every frame on the GPU (CLC_GPU_DECODE_ALL=1), REPS interleaved.
# Here: cargo build --release --bin clc --example gpu_decode_bench; copy target/release/clc and
# target/release/examples/gpu_decode_bench (stripped; or xz -9 of them as clc.xz, gpu_decode_bench.xz), this script, scripts/gpu/nvcomp_bench.py,
# scripts/gpu/timed.py and scripts/gpu/medians.py into .dev-gpu-gpu-decode/ of the main checkout; then
# run(command="bash .dev-gpu-gpu-decode/jump-run.sh", carry=[".dev-gpu-gpu-decode",
# ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"]). Logs under $OUT; a medians table last.
# Env: DEV (NVIDIA), REPS (3), VARIANTS (run 26's list; run 25 ran the JUMPS 1, 2, 8, 16, JWG 128, 512 and LONG 64), TAR (a tar to use instead of rdoc.tar.xz), NONV=1 (no nvCOMP), QUICK=1
# (no variants: a dry run on PoCL), VARIANTS16 (env settings also timed on 16 MiB frames), NOSMALL=1 (no
# small batches, no 16 KiB sub-blocks), NOE2E=1 (no part 3). Run 27 swapped the walk's source at run time:
# VARIANTS="CLC_GPU_SB_SRC=.dev-gpu-gpu-decode/a.cl ..." (the path relative to the checkout's root).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/jump-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/jump.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
DEV=${DEV:-NVIDIA}; REPS=${REPS:-3}
B=$D/gpu_decode_bench; C=$D/clc; T="python3 $D/timed.py"
# Binaries may travel xz-compressed (the carry limit): clc.xz, gpu_decode_bench.xz.
for f in clc gpu_decode_bench; do [ -e $D/$f.xz ] && { xz -dc $D/$f.xz > /tmp/$f && chmod +x /tmp/$f; }; done
[ -x /tmp/clc ] && [ -e $D/clc.xz ] && C=/tmp/clc; [ -x /tmp/gpu_decode_bench ] && [ -e $D/gpu_decode_bench.xz ] && B=/tmp/gpu_decode_bench
sec() { $T "$@" | cut -d' ' -f1; }
W=/tmp/jr; rm -rf $W; mkdir -p $W/t $W/m
echo "== machine"; nproc; nvidia-smi -L 2>/dev/null; uptime
if [ -n "${TAR:-}" ]; then cp "$TAR" $W/rdoc.tar; else xz -dc "$R/.dev-gpu-shared/rdoc.tar.xz" > $W/rdoc.tar; fi
ls -l $W/rdoc.tar
echo "== 1. kernel: 4 MiB frames, one batch, best of 5"
timeout 100 $B $W/rdoc.tar --device $DEV --repeat 5
echo "== 16 MiB frames"
timeout 100 $B $W/rdoc.tar --device $DEV --repeat 5 --frame-size 16777216 | sed -n '5,7p'
if [ -z "${QUICK:-}" ]; then
  for v in ${VARIANTS:-CLC_GPU_SB_JUMPS=4 CLC_GPU_SB_JUMPS=16 CLC_GPU_SB_JPER=4 CLC_GPU_SB_JPER=16 CLC_GPU_SB_JWG=128}; do
    echo "-- $v (4 MiB)"; env $v timeout 60 $B $W/rdoc.tar --device $DEV --repeat 3 | sed -n '5,7p'
  done
  for v in ${VARIANTS16:-}; do
    echo "-- $v (16 MiB)"; env $v timeout 60 $B $W/rdoc.tar --device $DEV --repeat 3 --frame-size 16777216 | sed -n '5,7p'
  done
  [ -n "${NOSMALL:-}" ] || for b in 8 16; do echo "-- batches of $b (4 MiB)"; timeout 60 $B $W/rdoc.tar --device $DEV --repeat 3 --batch $b | sed -n '5,7p'; done
  [ -n "${NOSMALL:-}" ] || { echo "-- 16 KiB sub-blocks (4 MiB)"; timeout 60 $B $W/rdoc.tar --device $DEV --repeat 3 --sb-log 14 | sed -n '3p;5,7p'; }
fi
if [ -z "${NONV:-}" ]; then
  echo "== 2. nvCOMP 6.0 on the same tar (device-resident, CUDA events)"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$R"/.dev-gpu-shared/whl/*.whl \
    && PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" $W/rdoc.tar LZ4,Snappy
fi
[ -n "${NOE2E:-}" ] && { echo "== done (NOE2E: no extract or mount)"; exit 0; }
echo "== 3. extract and read-all through the mount (archive packed with --cpu)"
tar xf $W/rdoc.tar -C $W/t; echo "tree: $(du -sb --apparent-size $W/t | cut -f1) bytes, $(find $W/t -type f | wc -l) files"
$C pack $W/t -o $W/r --cpu -q; ls -l $W/r.*
rm -rf $W/x; $C extract $W/r.001 -o $W/x -q --gpu-device $DEV   # kernel cache
MODES=("--cpu" "" "--gpu-device $DEV")
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do
    rm -rf $W/x; sync; echo "extract [$m]: $(sec timeout 60 $C extract $W/r.001 -o $W/x -q $m)"
  done
  rm -rf $W/x; sync; echo "extract [all-gpu]: $(sec timeout 60 env CLC_GPU_DECODE_ALL=1 $C extract $W/r.001 -o $W/x -q --gpu-device $DEV)"
done
diff -r $W/t $W/x >/dev/null && echo "extract [all-gpu] identical to the tree" || echo "extract [all-gpu] DIFFERS"
rm -rf $W/x; $C extract $W/r.001 -o $W/x --gpu-device $DEV | tail -2
diff -r $W/t $W/x >/dev/null && echo "extract [--gpu-device $DEV] identical to the tree" || echo "extract [--gpu-device] DIFFERS"
rm -rf $W/x; echo "-- CLC_TRACE extract [--gpu-device $DEV]"
CLC_TRACE=1 $C extract $W/r.001 -o $W/x --gpu-device $DEV 2>&1 | grep -E "GpuKernel|GpuCopy|GpuDecode|Decode |share|GPU|extracted|time" | head -14
rm -rf $W/x; echo "-- CLC_TRACE extract [all-gpu]"
CLC_TRACE=1 CLC_GPU_DECODE_ALL=1 $C extract $W/r.001 -o $W/x --gpu-device $DEV 2>&1 | grep -E "GpuKernel|GpuCopy|GpuDecode|Decode |share|GPU|extracted|time" | head -14
rm -rf $W/x
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do
    $C mount $W/r.001 $W/m $m || { echo "mount [$m] failed"; continue; }
    echo "read-all [$m]: $(sec timeout 60 bash -c "tar cf - -C $W/m . | cat >/dev/null")"
    $C umount $W/m
  done
done
$C mount $W/r.001 $W/m --gpu-device $DEV && { diff -r $W/t $W/m >/dev/null && echo "mount [--gpu-device $DEV] identical to the tree" || echo "mount DIFFERS"; $C umount $W/m; }
echo "== medians"
python3 $D/medians.py "$OUT/jump.log" '(?:extract|read-all) \[[^]]*\]' 34
echo "== done"
