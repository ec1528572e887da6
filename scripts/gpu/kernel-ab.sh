#!/bin/bash
# Issue 17, the encoder's kernels beside nvCOMP LZ4 on the lent H200 (runs 48-49), one call (run 48 was this
# script with VARS="v0 read find parse all", no lhash13 row, PACK=0):
#   0. nvCOMP LZ4 compress on the same tars, device-resident (nvcomp_bench.py);
#   1. gpu_bench on the Rust-doc tar (rdoc.tar.xz, tar's own order) and a mixed tar (mixed.tar.xz: 32 MiB of
#      python3.11 sources, /usr/include and /usr/share/doc of the development machine, 8 frames of 4 MiB,
#      concatenated 8 times here: the same frames again, so the ratio is the unique part's), batch 32, best
#      of 3, once per kernel variant (var/*.cl through CLC_GPU_C_SRC: v0 = main's kernel, each lever alone,
#      prev = run 48's "all", all = this branch; "all lhash13" = CLC_GPU_LHASH_LOG=13) with one queue (CLC_GPU_QUEUES=1: each stage's time is its own), then v0 and the
#      branch's own kernel with two queues (the default); every variant's blocks cmp-equal to v0's (--dump);
#   2. PACK=1: clc pack of the Rust-doc tree, --cpu against every frame on the GPU (CLC_GPU_LEAD=0
#      CLC_GPU_SHARE=1/1) with main's kernel (gpu0: CLC_GPU_C_SRC=var/v0.cl), this branch's (gpu) and this
#      branch's with 8192 buckets (gpu13: CLC_GPU_LHASH_LOG=13), REPS runs interleaved.
# The variants are kept in kernel-ab-variants.tar.xz (run48/, run49/: unpack one as var/; v0 is main's
# kernel at 26ccd94, all the branch's at the run). Here: cargo build --release --bin clc --example gpu_bench;
# xz -9 the stripped binaries into the carry folder with this script, var/, nvcomp_bench.py, timed.py,
# mixed.tar.xz (made by: M=32 MiB; the first M/3 bytes of `tar c python3.11 --exclude=__pycache__` of /usr/lib,
# M/3 of `tar c include` of /usr, the rest of `tar c doc --exclude='*.gz'` of /usr/share; xz -9); then
# run(command="PACK=1 bash .dev-gpu-gpu-pack/kernel-ab.sh", carry=[".dev-gpu-gpu-pack", ".dev-gpu-shared/rdoc.tar.xz",
# ".dev-gpu-shared/whl"]). Locally on PoCL: DEV=pthread REP=1 COPIES=1 bash kernel-ab.sh (in the carry folder).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/kab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}; REP=${REP:-3}; COPIES=${COPIES:-8}; PACK=${PACK:-0}
REPS=${REPS:-3}; VARS=${VARS:-v0 prev u16 stream anchor lit build all}
W=/tmp/kab; rm -rf $W; mkdir -p $W/t
for b in gpu_bench clc; do
  if [ -f $D/$b.xz ]; then xz -dc $D/$b.xz > $W/$b; chmod +x $W/$b; elif [ -f $D/$b ]; then cp $D/$b $W/; fi
done
nproc; uptime; nvidia-smi -L 2>/dev/null
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,persistence_mode --format=csv 2>/dev/null
tar xJf "$SH/rdoc.tar.xz" -C $W/t
tar cf $W/rdoc.tar -C $W/t/rdoc .
xz -dc ${MX:-$D/mixed.tar.xz} > $W/m1.tar
for i in $(seq $COPIES); do cat $W/m1.tar; done > $W/mixed.tar; rm $W/m1.tar
ls -l $W/*.tar

echo "== 0. nvCOMP"
if nvidia-smi -L >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
     --target /tmp/site "$SH"/whl/*.whl; then
  for t in rdoc mixed; do echo "nvcomp $t"; PYTHONPATH=/tmp/site timeout 90 python3 $D/nvcomp_bench.py $W/$t.tar LZ4; done
fi

echo "== 1. gpu_bench"
bench() {  # bench TAR LABEL [env...]
  local tar=$1 label=$2; shift 2
  echo "-- $label $(basename $tar)"
  env "$@" timeout 120 $W/gpu_bench $tar --device $DEV --batch 32 --compress-only --repeat $REP --dump $W/cur.dump \
    | grep -E "^(input|compress|clc cpu|gpu / cpu|compress kernel)"
}
for t in rdoc mixed; do
  for v in $VARS; do
    bench $W/$t.tar "q1 $v" CLC_GPU_QUEUES=1 CLC_GPU_C_SRC=$D/var/$v.cl
    if [ $v = v0 ]; then mv $W/cur.dump $W/v0.dump; else cmp -s $W/v0.dump $W/cur.dump && echo "same bytes as v0: $v $t" || echo "DIFFERENT from v0: $v $t"; fi
  done
  bench $W/$t.tar "q1 all lhash13" CLC_GPU_QUEUES=1 CLC_GPU_LHASH_LOG=13
  bench $W/$t.tar "q2 v0" CLC_GPU_C_SRC=$D/var/v0.cl
  bench $W/$t.tar "q2 branch" CLC_GPU_QUEUES=2
  cmp -s $W/v0.dump $W/cur.dump && echo "same bytes as v0: branch $t" || echo "DIFFERENT from v0: branch $t"
done

if [ "$PACK" = 1 ] && [ -x $W/clc ]; then
  echo "== 2. pack"
  T="python3 $D/timed.py"; tree=$W/t/rdoc
  $W/clc pack $tree -o $W/warm --gpu-device $DEV -q; rm -f $W/warm.*
  mode() {
    case $1 in
      cpu) $W/clc pack $tree -o $W/$1 --cpu -q ;;
      gpu0) CLC_GPU_C_SRC=$D/var/v0.cl CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/$1 --gpu-device $DEV -q ;;
      gpu) CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/$1 --gpu-device $DEV -q ;;
      gpu13) CLC_GPU_LHASH_LOG=13 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/$1 --gpu-device $DEV -q ;;
    esac
  }
  export -f mode; export W tree DEV D
  for i in $(seq $REPS); do for m in cpu gpu0 gpu gpu13; do rm -f $W/$m.*; echo "pack $m: $($T bash -c "mode $m" | cut -d' ' -f1)"; done; done
  for m in cpu gpu0 gpu gpu13; do echo "pack size $m: $(cat $W/$m.* | wc -c)"; done
  cmp $W/gpu0.001 $W/gpu.001 && echo "gpu0 and gpu archives identical"
  rm -rf $W/x; $W/clc extract $W/gpu.001 -o $W/x --cpu -q && diff -r $tree $W/x >/dev/null && echo "gpu archive extracts byte-exact"
  CLC_TRACE=1 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/tr --gpu-device $DEV 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |GPU opened|stream done|^time|^frames" | head -20
fi

echo "== table"
sleep 1; cp $OUT/run.log $W/log  # not the file tee is still writing
grep -E "^(nvcomp|-- |compress |gpu / cpu|compress kernel|same bytes|DIFFERENT|pack |gpu0 and|gpu archive)" $W/log
