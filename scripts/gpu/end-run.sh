#!/bin/bash
# Session 10's end-of-session figures in one call on the lent machine (one H200, 16 cores):
#   1. issue 20: scripts/gpu/mount-2core.sh with clc-main (main at c7542af), clc (this session's main) and clc
#      with 1 and 2 FUSE request threads (CLC_MOUNT_FUSE_THREADS), squashfuse beside them: warm mount, read-all
#      on two pinned CPUs, the 16-core extract against the read-all;
#   2. issues 21 and 17: scripts/gpu/alloc-probe.sh, clc-main against clc, --codec zstd and the default codec,
#      all cores and two pinned CPUs, beside mksquashfs -comp lz4;
#   3. issue 17: scripts/gpu/final-run.sh section 1 (tar | lz4, tar | zstd, mksquashfs, --cpu, the default,
#      one GPU, every frame on the GPU).
# Carry: .dev-gpu-end (clc, clc-main, the scripts named above, timed.py, rusage.py, gen-large.py, bench-ready,
# squashfuse, mksquashfs and bin/{lz4,zstd,mksquashfs}, lib/), .dev-gpu-shared/rdoc.tar.xz.
# run(command="bash .dev-gpu-end/end-run.sh", carry=[".dev-gpu-end", ".dev-gpu-shared/rdoc.tar.xz"])
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd); O=${OUT:-/tmp/end-out}; mkdir -p "$O"
F1="clc@CLC_MOUNT_FUSE_THREADS=1"
OUT=$O/mount REPS=5 REPS_READY=11 READY_BUILDS="clc-main clc $F1" \
  BUILDS="clc-main clc $F1 clc@CLC_MOUNT_FUSE_THREADS=2" \
  timeout 220 bash "$D/mount-2core.sh" "$D" "$R/.dev-gpu-shared/rdoc.tar.xz" > /dev/null 2>&1
for c in zstd lz; do
  cd=" "; [ $c = zstd ] && cd="--codec zstd"
  OUT=$O/pack-$c CODEC="$cd" VARIANTS="main=clc-main new=clc" REPS=3 timeout 120 bash "$D/alloc-probe.sh" > /dev/null 2>&1
done
SECTIONS=1 REPS=3 OUT=$O/final timeout 150 bash "$D/final-run.sh" > /dev/null 2>&1
echo "== 1. mount (tables of mount-2core.sh)"; sed -n '/^==/,$p' "$O/mount/log" | tail -40
for c in zstd lz; do echo "== 2. pack, $c"; sed -n '/== table/,$p' "$O/pack-$c/probe.log"; done
echo "== 3. issue 17's pack table"; grep -E "size|verifies|byte-exact|^== table" -A0 "$O/final/final.log" | head -30; sed -n '/== table/,$p' "$O/final/final.log" | head -40
