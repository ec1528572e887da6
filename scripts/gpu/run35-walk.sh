#!/bin/bash
# Kept here for the record; it runs from the carry folder: copy it with the stripped binaries (clc.xz, clc-old.xz,
# gpu_decode_bench.xz), extract-ab.sh, timed.py, medians.py, nvcomp_bench.py (and run 35's pc2.cl = kernels/ at 5e12c16)
# into .dev-gpu-gpu-decode/ of the main checkout.
# docs/GPU.md run 35 (issue 16), two H200s, one call:
#  1. the kernel on the Rust-doc tar: the committed walk (built in) against the two-warp
#     producer/consumer walk (pc2.cl, CLC_GPU_SB_WG=64), interleaved, best of 3 each; 16 MiB frames and
#     16 KiB sub-blocks once each; nvCOMP 6.0 LZ4 / Snappy on the same bytes;
#  2. extract-ab.sh: this branch's clc against main's (clc-old), tmpfs and disk, REPS runs.
# run(command="bash .dev-gpu-gpu-decode/run35.sh", carry=[".dev-gpu-gpu-decode",
#     ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"], kind="nvidia-h200-x2")
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/r35}; mkdir -p "$OUT"
export CLC_CACHE_DIR=/tmp/clc-cache
DEV=${DEV:-NVIDIA}
xz -dc $D/gpu_decode_bench.xz > /tmp/gdb && chmod +x /tmp/gdb
W=/tmp/r35w; rm -rf $W; mkdir -p $W
if [ -n "${TAR:-}" ]; then cp "$TAR" $W/rdoc.tar; else xz -dc "$R/.dev-gpu-shared/rdoc.tar.xz" > $W/rdoc.tar; fi
PC2="CLC_GPU_SB_SRC=$D/pc2.cl CLC_GPU_SB_WG=64"
k() {  # label, env..., -- bench args
  local label=$1; shift; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  echo "-- $label"
  env "${e[@]}" timeout 90 /tmp/gdb $W/rdoc.tar --device $DEV --repeat 3 "$@" 2>&1 | grep -E "^ratio|gpu LZ_EXT3_SB|passes|rror|differ|wrong|panic" | sed "s/^/$label | /"
}
{
  echo "== 1. kernel"; nproc; nvidia-smi -L; ls -l $W/rdoc.tar
  for i in 1 2; do
    k "committed 4M" X=1 --
    k "pc2 4M" $PC2 --
  done
  k "committed W64 4M" CLC_GPU_SB_WG=64 --
  k "committed 16M" X=1 -- --frame-size 16777216
  k "pc2 16M" $PC2 -- --frame-size 16777216
  k "committed 4M sb16K" X=1 -- --sb-log 14
  k "pc2 4M sb16K" $PC2 -- --sb-log 14
  if [ -z "${NONV:-}" ]; then
    echo "-- nvCOMP 6.0"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$R"/.dev-gpu-shared/whl/*.whl \
      && PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" $W/rdoc.tar LZ4,Snappy 2>&1 | tail -4
  fi
} > "$OUT/kernel.log" 2>&1
rm -rf $W
echo "== 2. extract A/B"
REPS=${REPS:-5} bash $D/extract-ab.sh $D > /dev/null 2>&1
tail -48 "$OUT/run.log"
echo "== kernel (best of 3 each)"
grep -E "\| (gpu|  passes)|nvCOMP|LZ4|Snappy|rror|differ|wrong|panic" "$OUT/kernel.log"
