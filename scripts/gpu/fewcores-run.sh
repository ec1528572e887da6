#!/bin/bash
# Issue 17 on a machine whose CPU is the cap: the lent H200 machine restricted to C cores (taskset; clc's
# thread count follows the affinity), so the GPU's share of a pack (compress::Split) can pay. One call:
# for C in CORES (default "2 4"): a tree of BIG permuted copies of the Rust-doc tar (gen_big.py: compresses
# like it, shares no chunk) and the Rust-doc tree, packed with --cpu, the default (auto), a named GPU (the
# default split) and every frame on the GPU (CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1), REPS runs interleaved;
# sizes; a CLC_TRACE of every frame on the GPU on the big tree (clc, and clc-old if carried); the default's archive verified and extracted
# byte-exact with --cpu on all cores. MODES picks the modes (default "cpu default named allgpu"); a mode
# ending in _old runs CARRY_DIR/clc-old instead (an earlier build, for a before/after in one call).
# Here: cargo build --release; strip target/release/clc into .dev-gpu-lead/ (with timed.py); then
# run(command="bash scripts/gpu/fewcores-run.sh .dev-gpu-lead", carry=[".dev-gpu-lead",
# ".dev-gpu-shared/rdoc.tar.xz"]). Logs under $OUT; a table last.
set -u
R=$(cd "$(dirname "$0")/../.." && pwd)
D=$(cd "${1:?usage: fewcores-run.sh CARRY_DIR}" && pwd)
OUT=${OUT:-/tmp/fewcores-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
CLC=$D/clc; T="python3 $D/timed.py"; REPS=${REPS:-3}; BIG=${BIG:-4}; CORES=${CORES:-2 4}
MODES=${MODES:-cpu default named allgpu}
W=/tmp/fc; rm -rf $W; mkdir -p $W/t
nproc; uptime; nvidia-smi -L 2>/dev/null
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
tar cf $W/rdoc.tar -C $W/t/rdoc .
python3 "$R/scripts/gpu/gen_big.py" $W/rdoc.tar $W/big "$BIG"; rm -f $W/rdoc.tar
for t in $W/big $W/t/rdoc; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes"; tar cf - -C $t . >/dev/null; done
mkdir -p $W/one && cp -a $W/t/rdoc/*/sync $W/one/ 2>/dev/null; $CLC pack $W/one -o $W/o --gpu-device NVIDIA -q; rm -f $W/o.*
sec() { $T "$@" | cut -d' ' -f1; }
mode() {  # mode NAME CORES TREE ARCHIVE
  local ts="taskset -c 0-$(($2 - 1))" CLC=$CLC
  case $1 in *_old) CLC=$D/clc-old ;; esac
  case ${1%_old} in
    cpu) $ts $CLC pack $3 -o $4 --cpu -q ;;
    default) $ts $CLC pack $3 -o $4 -q ;;
    named) $ts $CLC pack $3 -o $4 --gpu-device NVIDIA -q ;;
    allgpu) CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $ts $CLC pack $3 -o $4 --gpu-device NVIDIA -q ;;
  esac
}
export -f mode; export CLC D
for c in $CORES; do
  for tree in $W/big $W/t/rdoc; do
    n=$(basename $tree)c$c
    for i in $(seq $REPS); do
      for m in $MODES; do
        rm -f $W/$m.*; echo "$n $m: $(sec bash -c "mode $m $c $tree $W/$m")"
      done
    done
    for m in $MODES; do echo "$n size $m: $(cat $W/$m.* | wc -c)"; done
    if [ $n = bigc$c ]; then
      for b in $CLC $D/clc-old; do
        [ -x $b ] || continue
        echo "trace of every frame on the GPU, $b:"
        rm -f $W/x.*; CLC_TRACE=1 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 taskset -c 0-$((c - 1)) $b pack $tree -o $W/x --gpu-device NVIDIA 2>&1 | grep -E "trace: +[0-9.]+ s +(GPU|frames|stream done|index written)|trace: [A-Z]|^frames" | head -24
      done
      v=default; [ -e $W/allgpu.001 ] && v=allgpu
      $CLC verify $W/$v.001 -q && echo "$n: $v archive verifies"
      rm -rf $W/xx; $CLC extract $W/$v.001 -o $W/xx --cpu -q && diff -r $tree $W/xx >/dev/null && echo "$n: $v archive extracts byte-exact"
      rm -rf $W/xx $W/x.*
    fi
    rm -f $W/*.0*
  done
done
echo "== table (medians of $REPS)"
python3 "$R/scripts/gpu/medians.py" "$OUT/run.log" '\S+ \S+' 16
grep -E " size |verifies|byte-exact" "$OUT/run.log"
