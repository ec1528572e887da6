#!/bin/bash
# docs/GPU.md run 46 (issue 16), one H200: the LZ_EXT3_SB decode kernel's levers, each alone and together,
# beside nvCOMP 6.0 LZ4 / Snappy on the same bytes (the Rust-doc tar), best of 3 per line, every frame
# compared with the input. Variants by environment only (one build of gpu_decode_bench):
#   CLC_GPU_SB_VAL=1     a final entry holds its byte's value (no load of the literal's byte);
#   CLC_GPU_SB_ORDER=1   the passes take the tiles by sub-block row across the frames;
#   CLC_GPU_SB_STAGE=B   the walk copies the first B input bytes of its sub-block to local memory for the parse;
#   CLC_GPU_SB_SPLIT=N   mid-points every N sequences, found by the host (what format 6's would give the walk).
# Here: cargo build --release --example gpu_decode_bench; xz -9 of the stripped binary as gpu_decode_bench.xz,
# this script and nvcomp_bench.py in .dev-gpu-gpu-decode/ of the main checkout;
# run(command="bash .dev-gpu-gpu-decode/run46-decode.sh", carry=[".dev-gpu-gpu-decode",
#     ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"], kind="nvidia-h200")
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/r46}; mkdir -p "$OUT"
export CLC_CACHE_DIR=/tmp/clc-cache CLC_GPU_SB_STATS=1
DEV=${DEV:-NVIDIA}; REP=${REP:-3}
xz -dc $D/gpu_decode_bench.xz > /tmp/gdb && chmod +x /tmp/gdb
W=/tmp/r46w; rm -rf $W; mkdir -p $W
if [ -n "${TAR:-}" ]; then cp "$TAR" $W/rdoc.tar; else xz -dc "$R/.dev-gpu-shared/rdoc.tar.xz" > $W/rdoc.tar; fi
k() {  # label, env..., -- bench args
  local label=$1; shift; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  echo "-- $label"
  env "${e[@]}" timeout 90 /tmp/gdb $W/rdoc.tar --device $DEV --repeat $REP "$@" 2>&1 | grep -E "^ratio|gpu LZ_EXT3_SB|passes|pending|rror|differ|wrong|panic" | sed "s/^/$label | /"
}
V="CLC_GPU_SB_VAL=1"; O="CLC_GPU_SB_ORDER=1"
{
  echo "== kernel"; nproc; nvidia-smi -L; uptime; ls -l $W/rdoc.tar
  for i in 1 2; do
    k "base" X=1 --
    k "val+order" $V $O --
    k "val+order+split256" $V $O CLC_GPU_SB_SPLIT=256 --
  done
  k "val" $V --
  k "order" $O --
  k "stage8K" CLC_GPU_SB_STAGE=8192 --
  k "stage16K" CLC_GPU_SB_STAGE=16384 --
  k "split512" CLC_GPU_SB_SPLIT=512 --
  k "split256" CLC_GPU_SB_SPLIT=256 --
  k "split128" CLC_GPU_SB_SPLIT=128 --
  k "val+order j4" $V $O CLC_GPU_SB_JUMPS=4 --
  k "val+order j16" $V $O CLC_GPU_SB_JUMPS=16 --
  k "val+order c0" $V $O CLC_GPU_SB_COLLAPSE=0 --
  k "val+order+stage8K" $V $O CLC_GPU_SB_STAGE=8192 --
  k "val+order+split256+stage8K" $V $O CLC_GPU_SB_SPLIT=256 CLC_GPU_SB_STAGE=8192 --
  k "val+order+split256 W64" $V $O CLC_GPU_SB_SPLIT=256 CLC_GPU_SB_WG=64 --
  k "val+order+split512" $V $O CLC_GPU_SB_SPLIT=512 --
  k "val+order+split128" $V $O CLC_GPU_SB_SPLIT=128 --
  k "base 16M" X=1 -- --frame-size 16777216
  k "val+order 16M" $V $O -- --frame-size 16777216
  k "val+order+split256 16M" $V $O CLC_GPU_SB_SPLIT=256 -- --frame-size 16777216
  if [ -z "${NONV:-}" ]; then
    echo "-- nvCOMP 6.0"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$R"/.dev-gpu-shared/whl/*.whl \
      && PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" $W/rdoc.tar LZ4,Snappy 2>&1 | tail -4
  fi
} > "$OUT/kernel.log" 2>&1
rm -rf $W
grep -E "\| (gpu|  passes|  pending)|nvcomp|rror|differ|wrong|panic" "$OUT/kernel.log" | sed -E 's/gpu LZ_EXT3_SB \(v2, this kernel\) +//; s/\(summed over batches\), //'
