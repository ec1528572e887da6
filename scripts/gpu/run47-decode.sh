#!/bin/bash
# docs/GPU.md run 47 (issue 16), one H200: the format-6 decoder (mid-points every 512 sequences, final
# entries carrying their byte, passes in sub-block rows) against main's decoder (26ccd94, the bench built
# from main: its own encoder, format 5 frames) and against the same build with the mid-points ignored
# (CLC_GPU_SB_MIDS=0) or the old tile order (CLC_GPU_SB_ORDER=0), on the Rust-doc tar, beside nvCOMP 6.0 LZ4 /
# Snappy on the same bytes; best of 3 per line, every frame compared with the input.
# Here: cargo build --release --example gpu_decode_bench at this commit and at main; xz -9 of the stripped
# binaries as gpu_decode_bench.xz and gpu_decode_bench_main.xz, this script and nvcomp_bench.py in
# .dev-gpu-gpu-decode/ of the main checkout;
# run(command="bash .dev-gpu-gpu-decode/run47-decode.sh", carry=[".dev-gpu-gpu-decode",
#     ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"], kind="nvidia-h200")
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/r47}; mkdir -p "$OUT"
export CLC_CACHE_DIR=/tmp/clc-cache CLC_GPU_SB_STATS=1
DEV=${DEV:-NVIDIA}; REP=${REP:-3}
xz -dc $D/gpu_decode_bench.xz > /tmp/gdb && chmod +x /tmp/gdb
xz -dc $D/gpu_decode_bench_main.xz > /tmp/gdb-main && chmod +x /tmp/gdb-main
W=/tmp/r47w; rm -rf $W; mkdir -p $W
if [ -n "${TAR:-}" ]; then cp "$TAR" $W/rdoc.tar; else xz -dc "$R/.dev-gpu-shared/rdoc.tar.xz" > $W/rdoc.tar; fi
k() {  # label, binary, env..., -- bench args
  local label=$1 bin=$2; shift 2; local e=(); while [ "$1" != "--" ]; do e+=("$1"); shift; done; shift
  echo "-- $label"
  env "${e[@]}" timeout 90 $bin $W/rdoc.tar --device $DEV --repeat $REP "$@" 2>&1 | grep -E "^ratio|gpu LZ_EXT3_SB|passes|pending|cpu LZ_EXT3_SB|rror|differ|wrong|panic" | sed "s/^/$label | /"
}
nv() {
  echo "-- nvCOMP 6.0"
  PYTHONPATH=/tmp/site timeout 120 python3 "$D/nvcomp_bench.py" $W/rdoc.tar LZ4,Snappy 2>&1 | tail -4
}
{
  echo "== kernel"; nproc; nvidia-smi -L; uptime; ls -l $W/rdoc.tar
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$R"/.dev-gpu-shared/whl/*.whl
  [ -n "${NONV:-}" ] || nv
  for i in 1 2; do
    k "main" /tmp/gdb-main X=1 --
    k "format 6" /tmp/gdb X=1 --
    k "format 6, points ignored" /tmp/gdb CLC_GPU_SB_MIDS=0 --
  done
  k "format 6, old tile order" /tmp/gdb CLC_GPU_SB_ORDER=0 --
  k "format 6, W 96" /tmp/gdb CLC_GPU_SB_WG=96 --
  k "format 6, W 64" /tmp/gdb CLC_GPU_SB_WG=64 --
  k "format 6, jumps 16" /tmp/gdb CLC_GPU_SB_JUMPS=16 --
  k "format 6, collapse 4" /tmp/gdb CLC_GPU_SB_COLLAPSE=4 --
  k "main 16M" /tmp/gdb-main X=1 -- --frame-size 16777216
  k "format 6 16M" /tmp/gdb X=1 -- --frame-size 16777216
  k "format 6 16M, points ignored" /tmp/gdb CLC_GPU_SB_MIDS=0 -- --frame-size 16777216
  k "format 6, batches of 16" /tmp/gdb X=1 -- --batch 16
  [ -n "${NONV:-}" ] || nv
} > "$OUT/kernel.log" 2>&1
rm -rf $W
grep -E "\| (gpu|cpu LZ_EXT3_SB|  passes|  pending)|^ratio|\| ratio|nvcomp|rror|differ|wrong|panic" "$OUT/kernel.log" | sed -E 's/gpu LZ_EXT3_SB \(v2, this kernel\) +//; s/\(summed over batches\), //'
