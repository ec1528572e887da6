#!/bin/bash
# Issue 20's warm mount after session 12's start-up levers (fat LTO, mimalloc started only by a pack,
# `clc mount` parsed alone), on the lent machine: scripts/gpu/mount-2core.sh (warm mount + `ls` pinned to
# two CPUs and on all cores, REPS_READY interleaved; read-all of the doc tree and four 100 MiB files, REPS)
# with clc-main and clc, then scripts/gpu/alloc-probe.sh with the same two builds (a pack's time with
# mimalloc started by the switch instead of at load, 16 cores and two pinned). Tables last; logs under $OUT.
#   bash scripts/gpu/start-run.sh DIR RDOC.tar.xz
# DIR: clc-main, clc, squashfuse, mksquashfs and bin/mksquashfs, lib/, gen-large.py, bench-ready,
# alloc-probe.sh, rusage.py.
set -u
D=$(realpath "$1"); RDOC=$(realpath "$2"); OUT=${OUT:-/tmp/start-out}
mkdir -p "$OUT"
OUT=$OUT/m REPS=${REPS:-3} REPS_READY=${REPS_READY:-61} BUILDS="clc-main clc" \
    bash "$(dirname "$0")/mount-2core.sh" "$D" "$RDOC" > "$OUT/mount.log" 2>&1
OUT=$OUT/a VARIANTS="main=clc-main new=clc" CODEC=" " REPS=${REPS_PACK:-5} \
    bash "$D/alloc-probe.sh" > "$OUT/alloc.log" 2>&1
echo "== pack (alloc-probe.sh, default codec)"; sed -n '/== table/,$p' "$OUT/a/probe.log" | head -30
echo "== mount (mount-2core.sh)"; sed -n '/== ready, pinned/,$p' "$OUT/m/log" | grep -v "sample" | head -40
