#!/bin/bash
# Issue 16 figures on the lent H200 machine, in one call: LZ_EXT3_SB decode kernel vs nvCOMP on the same
# tar, then `clc extract` and read-all through `clc mount`: --cpu, the default (GPU_DEVICE = auto) and
# the GPU named (one device, and on a two-GPU machine both: GPU/CPU split by measured rates).
#   Here: cargo build --release --examples; copy target/release/{clc,examples/gpu_decode_bench,
#   examples/sb_decode} (stripped), this script and scripts/gpu/nvcomp_bench.py into .dev-gpu-gpu-decode/
#   of the main checkout; then run(command="bash .dev-gpu-gpu-decode/decode-run.sh",
#   carry=[".dev-gpu-gpu-decode", ".dev-gpu-shared"]). The log comes back as $OUT/decode.log.
# Env: QUICK=1 skips the variants; REPS (3) repetitions of each end-to-end timing; DEV (NVIDIA) the
# device for the kernel rows; TAR a tar to use instead of rdoc.tar.xz (a dry run on PoCL elsewhere).
D=$(cd "$(dirname "$0")" && pwd); S=$(cd "$D/../.dev-gpu-shared" && pwd)
exec > >(tee "$OUT/decode.log") 2>&1
REPS=${REPS:-3}
export CLC_CACHE_DIR=/tmp/clc-cache
TIMEFORMAT=%R
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local rc=$?; awk -v a="$s" -v b="$(date +%s.%N)" -v r=$rc 'BEGIN{printf "%.3f s (rc %d)\n", b-a, r}'; }
echo "== machine"; nvidia-smi -L; nproc; free -g | head -2
DEV=${DEV:-NVIDIA}
if [ -n "$TAR" ]; then cp "$TAR" /tmp/rdoc.tar; else xz -dc "$S/rdoc.tar.xz" > /tmp/rdoc.tar; fi; ls -l /tmp/rdoc.tar
rm -rf /tmp/tree /tmp/a.* /tmp/x
mkdir -p /tmp/tree && tar xf /tmp/rdoc.tar -C /tmp/tree && du -sb /tmp/tree
B="$D/gpu_decode_bench"
echo "== kernel: LZ_EXT3_SB on the GPU vs the CPU, same tar (4 MiB frames, 64 KiB sub-blocks)"
timeout 120 $B /tmp/rdoc.tar --device $DEV --repeat 5 --v1
echo "== 16 MiB frames"
timeout 120 $B /tmp/rdoc.tar --device $DEV --repeat 5 --frame-size 16777216
NG=$(nvidia-smi -L 2>/dev/null | wc -l)
if [ "$NG" -ge 2 ]; then
  echo "== both GPUs (frames dealt round-robin, a thread per device; kernel time = the slower device)"
  timeout 120 $B /tmp/rdoc.tar --device all --repeat 5 | tail -4
fi
if [ -z "$QUICK" ]; then
  echo "== variants (4 MiB frames): portable loads/fence; sub-blocks 16 / 256 KiB; batch 8"
  # (CLC_GPU_SB_PTX=0, the portable build of the in-order kernel, went with that kernel: docs/GPU.md History)
  timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --sb-log 14 | tail -4
  timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --sb-log 18 | tail -4
  timeout 60 $B /tmp/rdoc.tar --device $DEV --repeat 3 --batch 8 | tail -3
fi
echo "== nvCOMP 6.0 on the same tar (device-resident, CUDA events)"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$S"/whl/*.whl \
  && PYTHONPATH=/tmp/site timeout 150 python3 "$D/nvcomp_bench.py" /tmp/rdoc.tar
echo "== clc pack --cpu (the archive every run below reads)"
C="$D/clc"
$C pack /tmp/tree -o /tmp/a --cpu | tail -3; ls -l /tmp/a.*
$C info /tmp/a.001 --json | grep -E '"(frames|subblock_size|subblock_frames|bytes_stored|format)"'
MODES=("--cpu" "" "--gpu-device 0")
[ "${NG:-0}" -ge 2 ] && MODES+=("--gpu-device all")
echo "== extract: REPS of each mode, interleaved (mode '' = the default, GPU_DEVICE = auto)"
rm -rf /tmp/x; t $C extract /tmp/a.001 -o /tmp/x --gpu-device 0
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do rm -rf /tmp/x; echo "extract [$m]: $(t $C extract /tmp/a.001 -o /tmp/x $m)"; done
done
for m in "--gpu-device 0" "${MODES[3]:-}"; do
  [ -z "$m" ] && continue
  rm -rf /tmp/x; echo "-- CLC_TRACE extract [$m]"; CLC_TRACE=1 $C extract /tmp/a.001 -o /tmp/x $m 2>&1 | grep -v "^$" | grep -v "Cached" | tail -12
  diff -r /tmp/tree /tmp/x >/dev/null && echo "extract [$m] identical to the tree"
done
rm -rf /tmp/x; echo "-- CLC_TRACE extract [--cpu]"; CLC_TRACE=1 $C extract /tmp/a.001 -o /tmp/x --cpu 2>&1 | tail -6
echo "== read-all through clc mount: tar cf - . | cat"
mkdir -p /tmp/m
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do
    $C mount /tmp/a.001 /tmp/m $m || { echo "mount failed"; break 2; }
    echo "read-all [$m]: $(t bash -c 'tar cf - -C /tmp/m . | cat >/dev/null')"
    $C umount /tmp/m
  done
done
echo "== CPU: one 16 MiB frame on 1..16 threads"
timeout 90 "$D/sb_decode" /tmp/rdoc.tar 16 64 9 1,2,4,8,16
echo "== done"
