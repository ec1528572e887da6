#!/bin/bash
# Issue 17, run 21 (one H200, 16 cores): the cutter grouping one segment per thread (pack::stream::cutter)
# against run 20's binary, on the Rust-doc tree, a mixed tree and a 3 GB tree of large files (gen_big.py:
# BIG permuted copies of the Rust-doc tar); then the shared pack (compress::Split) on the large tree, where
# the CPU may now be busy enough for the GPU's share to pay. Interleaved runs, medians; archives of the two
# binaries compared (the cuts must not change); two shared packs compared.
# Here: the stripped release clc of this branch as clc, run 20's as clc-old, this script and timed.py
# in .dev-gpu-gpu-pack/ (the trees come from scripts/gpu/trees.sh); run(command="bash .dev-gpu-gpu-pack/cutter-run.sh",
# carry=[".dev-gpu-gpu-pack", ".dev-gpu-shared/rdoc.tar.xz"]). Locally: DEV=pthread SH=DIR BIG=2 MIXED=0.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/cutter-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
T="python3 $D/timed.py"; REPS=${REPS:-3}; DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}
BIG=${BIG:-10}; MIXED=${MIXED:-1}; LEAD=${LEAD:-1000000000}
W=/tmp/cr; rm -rf $W; mkdir -p $W/t $W/src
nproc; uptime; nvidia-smi -L 2>/dev/null
. "$R/scripts/gpu/trees.sh"; make_trees
mkdir -p $W/one && cp -a $W/t/rdoc/*/sync $W/one/ 2>/dev/null; $D/clc pack $W/one -o $W/o --gpu-device $DEV -q; rm -f $W/o.*
sec() { $T "$@" | cut -d' ' -f1; }
mode() {  # mode NAME TREE ARCHIVE [extra env via CLC_* already exported]
  case $1 in
    old) $D/clc-old pack $2 -o $3 --cpu -q ;;
    cpu) $D/clc pack $2 -o $3 --cpu -q ;;
    default) $D/clc pack $2 -o $3 -q ;;
    named) $D/clc pack $2 -o $3 --gpu-device $DEV -q ;;
    shared) CLC_GPU_LEAD=$LEAD $D/clc pack $2 -o $3 --gpu-device $DEV -q ;;
    shared6) CLC_GPU_LEAD=$LEAD CLC_GPU_SHARE=6/16 $D/clc pack $2 -o $3 --gpu-device $DEV -q ;;
  esac
}
export -f mode; export D DEV LEAD
trace() {
  rm -f $W/x.*; echo "-- trace $1 $(basename $2)"
  case $1 in
    cpu) CLC_TRACE=1 $D/clc pack $2 -o $W/x --cpu ;;
    shared) CLC_GPU_LEAD=$LEAD CLC_TRACE=1 $D/clc pack $2 -o $W/x --gpu-device $DEV ;;
  esac 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |GPU opened|GPU waited|frames shared|stream done|index written|^time|^frames" | head -24
}
for tree in $TREES; do
  n=$(basename $tree)
  case $n in big) MODES="old cpu shared shared6";; *) MODES="old cpu default named";; esac
  for i in $(seq $REPS); do
    for m in $MODES; do rm -f $W/$m.*; echo "$n $m: $(sec bash -c "mode $m $tree $W/$m")"; done
  done
  for m in $MODES; do echo "$n size $m: $(cat $W/$m.* | wc -c)"; done
  cmp -s $W/old.001 $W/cpu.001 && echo "$n: old and new --cpu archives identical"
  [ $n = big ] && { trace cpu $tree; trace shared $tree
    mode shared $tree $W/s2; cmp -s $W/shared.001 $W/s2.001 && echo "big: two shared packs identical"
    rm -rf $W/x; $D/clc extract $W/shared.001 -o $W/x --cpu -q && diff -r $tree $W/x >/dev/null && echo "big: shared archive extracts byte-exact"; }
  rm -f $W/*.0*
done
echo "== table (medians)"
python3 "$R/scripts/gpu/medians.py" "$OUT/run.log" '\S+ \S+' 16
grep -E "size |identical|byte-exact" $OUT/run.log
