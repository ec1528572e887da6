#!/bin/bash
# Kept here for the record; it runs from the carry folder: copy it with the stripped binaries (clc.xz, clc-old.xz,
# gpu_decode_bench.xz), extract-ab.sh, timed.py, medians.py, nvcomp_bench.py (and run 35's pc2.cl = kernels/ at 5e12c16)
# into .dev-gpu-gpu-decode/ of the main checkout.
# docs/GPU.md run 36 (issue 16), one H200: the committed two-warp walk (W = 64, collapse 4) against more
# placing warps (CLC_GPU_SB_WG = 96, 128, 256) and longer collapse (CLC_GPU_SB_COLLAPSE = 8, 16) on the
# Rust-doc tar, best of 3 each, the key ones twice, interleaved; nvCOMP 6.0 LZ4 / Snappy on the same bytes.
# run(command="bash .dev-gpu-gpu-decode/run36.sh", carry=[".dev-gpu-gpu-decode",
#     ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"], kind="nvidia-h200")
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/r36}; mkdir -p "$OUT"
export CLC_CACHE_DIR=/tmp/clc-cache
DEV=${DEV:-NVIDIA}
xz -dc $D/gpu_decode_bench.xz > /tmp/gdb && chmod +x /tmp/gdb
W=/tmp/r36w; rm -rf $W; mkdir -p $W
if [ -n "${TAR:-}" ]; then cp "$TAR" $W/rdoc.tar; else xz -dc "$R/.dev-gpu-shared/rdoc.tar.xz" > $W/rdoc.tar; fi
k() {  # label, env..., -- bench args
  local label=$1; shift; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  echo "-- $label"
  env "${e[@]}" timeout 90 /tmp/gdb $W/rdoc.tar --device $DEV --repeat 3 "$@" 2>&1 | grep -E "^ratio|gpu LZ_EXT3_SB|passes|rror|differ|wrong|panic" | sed "s/^/$label | /"
}
{
  echo "== kernel"; nproc; nvidia-smi -L; ls -l $W/rdoc.tar
  for i in 1 2; do
    k "W64 c4 (committed)" X=1 --
    k "W128 c4" CLC_GPU_SB_WG=128 --
    k "W128 c8" CLC_GPU_SB_WG=128 CLC_GPU_SB_COLLAPSE=8 --
  done
  k "W64 c8" CLC_GPU_SB_COLLAPSE=8 --
  k "W64 c16" CLC_GPU_SB_COLLAPSE=16 --
  k "W96 c4" CLC_GPU_SB_WG=96 --
  k "W256 c4" CLC_GPU_SB_WG=256 --
  k "W128 c16" CLC_GPU_SB_WG=128 CLC_GPU_SB_COLLAPSE=16 --
  k "W64 c4 16M" X=1 -- --frame-size 16777216
  k "W128 c8 16M" CLC_GPU_SB_WG=128 CLC_GPU_SB_COLLAPSE=8 -- --frame-size 16777216
  k "W128 c8 sb16K" CLC_GPU_SB_WG=128 CLC_GPU_SB_COLLAPSE=8 -- --sb-log 14
  if [ -z "${NONV:-}" ]; then
    echo "-- nvCOMP 6.0"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$R"/.dev-gpu-shared/whl/*.whl \
      && PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" $W/rdoc.tar LZ4,Snappy 2>&1 | tail -4
  fi
} > "$OUT/kernel.log" 2>&1
rm -rf $W
grep -E "\| (gpu|  passes)|nvcomp|rror|differ|wrong|panic" "$OUT/kernel.log"
