#!/bin/bash
# Issue 17, the shared pack (compress::Split) on the lent H200 machine, one call:
#   0. nvCOMP LZ4 compress on the Rust-doc tar, device-resident (nvcomp_bench.py);
#   1. the GPU encoder alone on the same tar and on the mixed tree's tar (gpu_bench: kernel and e2e GB/s,
#      GPU / CPU encoder size on the same frames);
#   2. clc pack of the Rust-doc tree and of a mixed tree (the machine's /usr/share/doc, python3, /usr/include):
#      --cpu, the default, the named GPU with the default split, the named GPU from the first byte
#      (CLC_GPU_LEAD=0, the default share), the named GPU for every frame (CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1,
#      as before the split); REPS runs interleaved, sizes, one CLC_TRACE run of the GPU modes;
#   3. a 3 GB tree of BIG permuted copies of the Rust-doc tar (gen_big.py: compresses like it, shares no
#      chunk): --cpu against the shared pack, where the GPU's share could pay;
#   4. determinism: two shared packs of the Rust-doc tree byte-identical; the shared archive verifies and
#      extracts byte-exact.
# Here: cargo build --release --bin clc --example gpu_bench; strip both into .dev-gpu-gpu-pack/ with this
# script, timed.py, gen_big.py, nvcomp_bench.py; then run(command="bash .dev-gpu-gpu-pack/share-run.sh",
# carry=[".dev-gpu-gpu-pack", ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"]). Locally on PoCL:
# DEV=pthread SH=/tmp/small-shared BIG=2 MIXED=0 bash scripts/gpu/share-run.sh (with the binaries beside it).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/share-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
CLC=$D/clc; T="python3 $D/timed.py"; REPS=${REPS:-3}; DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}
BIG=${BIG:-10}; MIXED=${MIXED:-1}
W=/tmp/gp; rm -rf $W; mkdir -p $W/t $W/src
nproc; uptime; nvidia-smi -L 2>/dev/null; nvidia-smi --query-gpu=clocks.sm,persistence_mode --format=csv 2>/dev/null
tar xJf "$SH/rdoc.tar.xz" -C $W/t
TREES="$W/t/rdoc"
if [ "$MIXED" = 1 ]; then
  cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
  TREES="$TREES $W/src"
fi
tar cf $W/rdoc.tar -C $W/t/rdoc .; [ "$MIXED" = 1 ] && tar cf $W/mixed.tar -C $W/src .
python3 $D/gen_big.py $W/rdoc.tar $W/big "$BIG"
for t in $TREES $W/big; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
mkdir -p $W/one && cp -a $W/t/rdoc/*/sync $W/one/ 2>/dev/null; $CLC pack $W/one -o $W/o --gpu-device $DEV -q; rm -f $W/o.*  # kernel cache
sec() { $T "$@" | cut -d' ' -f1; }

echo "== 0. nvCOMP"
if nvidia-smi -L >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
     --target /tmp/site "$SH"/whl/*.whl; then
  PYTHONPATH=/tmp/site timeout 90 python3 $D/nvcomp_bench.py $W/rdoc.tar LZ4
fi

echo "== 1. gpu_bench"
for tar in $W/rdoc.tar $( [ "$MIXED" = 1 ] && echo $W/mixed.tar ); do
  echo "gpu_bench $(basename $tar)"
  timeout 120 $D/gpu_bench $tar --device $DEV --batch 32 --compress-only --repeat 3 \
    | grep -E "^(input|compress|clc cpu|gpu / cpu|compress kernel)"
done

# modes: name and environment
mode() {  # mode NAME TREE ARCHIVE
  case $1 in
    cpu) $CLC pack $2 -o $3 --cpu -q ;;
    default) $CLC pack $2 -o $3 -q ;;
    named) $CLC pack $2 -o $3 --gpu-device $DEV -q ;;
    lead0) CLC_GPU_LEAD=0 $CLC pack $2 -o $3 --gpu-device $DEV -q ;;
    share6) CLC_GPU_LEAD=0 CLC_GPU_SHARE=6/16 $CLC pack $2 -o $3 --gpu-device $DEV -q ;;
    allgpu) CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $CLC pack $2 -o $3 --gpu-device $DEV -q ;;
  esac
}
export -f mode; export CLC DEV
trace() {  # trace NAME TREE
  rm -f $W/x.*
  echo "-- trace $1 $(basename $2)"
  case $1 in
    cpu) CLC_TRACE=1 $CLC pack $2 -o $W/x --cpu ;;
    named) CLC_TRACE=1 $CLC pack $2 -o $W/x --gpu-device $DEV ;;
    lead0) CLC_GPU_LEAD=0 CLC_TRACE=1 $CLC pack $2 -o $W/x --gpu-device $DEV ;;
  esac 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |GPU opened|GPU waited|frames shared|platforms listed|programs built|stream done|index written|^time|^frames" | head -30
}

echo "== 2. pack"
for tree in $TREES; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    for m in cpu default named lead0 allgpu; do
      rm -f $W/$m.*; echo "$n $m: $(sec bash -c "mode $m $tree $W/$m")"
    done
  done
  for m in cpu default named lead0 allgpu; do echo "$n size $m: $(cat $W/$m.* | wc -c)"; done
  $CLC info $W/lead0.001 --json | python3 -c "import json,sys; v=json.load(sys.stdin); print('$n lead0 frames', v['frames_per_codec'])"
  for m in cpu named lead0; do trace $m $tree; done
done

echo "== 3. big tree"
for i in $(seq 2); do
  for m in cpu lead0 share6; do rm -f $W/$m.*; echo "big $m: $(sec bash -c "mode $m $W/big $W/$m")"; done
done
for m in cpu lead0 share6; do echo "big size $m: $(cat $W/$m.* | wc -c)"; done
for m in cpu lead0; do trace $m $W/big; done
rm -f $W/cpu.* $W/lead0.* $W/share6.*

echo "== 4. determinism"
t=$W/t/rdoc
mode lead0 $t $W/d1; mode lead0 $t $W/d2
cmp $W/d1.001 $W/d2.001 && echo "two shared packs identical ($(stat -c %s $W/d1.001) bytes)"
$CLC verify $W/d1.001 -q && echo "shared archive verifies"
rm -rf $W/x; $CLC extract $W/d1.001 -o $W/x --cpu -q && diff -r $t $W/x >/dev/null && echo "shared archive extracts byte-exact"

echo "== table (medians)"
python3 "$R/scripts/gpu/medians.py" "$OUT/run.log" '\S+ \S+' 20
grep -E "^(nvcomp|gpu_bench|compress |clc cpu|gpu / cpu|compress kernel|two shared|shared archive)|size " $OUT/run.log
