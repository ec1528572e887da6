#!/bin/bash
# Issue 17, the encoder's kernels beside nvCOMP LZ4 on the lent H200 (runs 56-57), one call:
#   0. nvCOMP LZ4 compress on the same tars, device-resident (nvcomp_bench.py);
#   1. gpu_bench on the Rust-doc tar (rdoc.tar.xz, tar's own order) and the mixed tar (mixed.tar.xz of
#      runs 48-49, concatenated COPIES times here), batch 32, best of REP, one queue (CLC_GPU_QUEUES=1:
#      each stage's time is its own): every kernel variant of VARS (var/NAME.cl through CLC_GPU_C_SRC;
#      `branch` = the binary's own kernel; runs 56-57's variants are in kernel-ab2-variants.tar.xz), each
#      one's blocks cmp-checked against var/main.cl's (main's kernel, 48bfe61); then
#      the ROWS, each "LABEL:ENV=V,ENV=V" run with the binary's own kernel (and BATCH=N as --batch);
#      then the kernels of Q2VARS with two queues (the default), for end to end;
#   2. PACK=1: clc pack of the Rust-doc tree, --cpu against every frame on the GPU (CLC_GPU_LEAD=0
#      CLC_GPU_SHARE=1/1) with each kernel of PACKVARS (gpu-NAME), REPS runs interleaved, then the last
#      one's trace.
# Run 56 was `bash kernel-ab2.sh` with var/ = run56/ of kernel-ab2-variants.tar.xz less branch.cl (the binaries'
# own kernel, from 93e3443), in this script's earlier form (its pack rows named gpumain and gpu); run 57 the
# command in docs/GPU.md with var/ = run57/.
# Here: cargo build --release --bin clc --example gpu_bench; xz -9 the stripped binaries into the carry
# folder with this script, var/, nvcomp_bench.py, timed.py and mixed.tar.xz (kernel-ab.sh's header has its
# recipe); then run(command="bash .dev-gpu-gpu-pack/kernel-ab2.sh", carry=[".dev-gpu-gpu-pack",
# ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"]). Locally on PoCL:
# DEV=pthread REP=1 COPIES=1 RDOC=small.tar bash kernel-ab2.sh (in the carry folder).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/kab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}; REP=${REP:-3}; COPIES=${COPIES:-8}; PACK=${PACK:-1}
REPS=${REPS:-3}; VARS=${VARS:-main common ilp all3 branch ilp2}; PACKVARS=${PACKVARS:-main branch}; Q2VARS=${Q2VARS:-main branch}
ROWS=${ROWS:-mainB0:CLC_GPU_BACK=0,C_SRC=main branchB0:CLC_GPU_BACK=0 psub11:CLC_GPU_PSUB_LOG=11 batch72:BATCH=72}
W=/tmp/kab; rm -rf $W; mkdir -p $W/t
for b in gpu_bench clc; do
  if [ -f $D/$b.xz ]; then xz -dc $D/$b.xz > $W/$b; chmod +x $W/$b; elif [ -f $D/$b ]; then cp $D/$b $W/; fi
done
nproc; uptime; nvidia-smi -L 2>/dev/null
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,persistence_mode --format=csv 2>/dev/null
if [ -n "${RDOC:-}" ]; then cp "$RDOC" $W/rdoc.tar; PACK=0; else
  tar xJf "$SH/rdoc.tar.xz" -C $W/t; tar cf $W/rdoc.tar -C $W/t/rdoc .; fi
xz -dc ${MX:-$D/mixed.tar.xz} > $W/m1.tar
for i in $(seq $COPIES); do cat $W/m1.tar; done > $W/mixed.tar; rm $W/m1.tar
ls -l $W/*.tar

echo "== 0. nvCOMP"
if nvidia-smi -L >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
     --target /tmp/site "$SH"/whl/*.whl; then
  for t in rdoc mixed; do echo "nvcomp $t"; PYTHONPATH=/tmp/site timeout 90 python3 $D/nvcomp_bench.py $W/$t.tar LZ4; done
fi

echo "== 1. gpu_bench"
bench() {  # bench TAR LABEL BATCH [env...]
  local tar=$1 label=$2 batch=$3; shift 3
  echo "-- $label $(basename $tar)"
  env "$@" timeout 120 $W/gpu_bench $tar --device $DEV --batch $batch --compress-only --repeat $REP --dump $W/cur.dump \
    | grep -E "^(input|compress|clc cpu|gpu / cpu|compress kernel|  [a-z]+ +[0-9])"
}
src() { [ "$1" = branch ] || echo "CLC_GPU_C_SRC=$D/var/$1.cl"; }  # branch: the binary's own kernel
for t in rdoc mixed; do
  for v in $VARS; do
    bench $W/$t.tar "q1 $v" 32 CLC_GPU_QUEUES=1 $(src $v)
    if [ $v = main ]; then mv $W/cur.dump $W/main.dump; else cmp -s $W/main.dump $W/cur.dump && echo "same bytes as main: $v $t" || echo "DIFFERENT from main: $v $t"; fi
  done
  for row in $ROWS; do
    label=${row%%:*}; envs=(CLC_GPU_QUEUES=1); batch=32
    for kv in $(echo ${row#*:} | tr , ' '); do
      case $kv in BATCH=*) batch=${kv#BATCH=} ;; C_SRC=*) envs+=($(src ${kv#C_SRC=})) ;; *) envs+=($kv) ;; esac
    done
    bench $W/$t.tar "q1 $label" $batch "${envs[@]}"
    case $label in mainB0) mv $W/cur.dump $W/b0.dump ;;
      branchB0) cmp -s $W/b0.dump $W/cur.dump && echo "same bytes as mainB0: $label $t" || echo "DIFFERENT from mainB0: $label $t" ;;
      *72) cmp -s $W/main.dump $W/cur.dump && echo "same bytes as main: $label $t" || echo "DIFFERENT from main: $label $t" ;; esac
  done
  for v in $Q2VARS; do bench $W/$t.tar "q2 $v" 32 $(src $v); done
done

if [ "$PACK" = 1 ] && [ -x $W/clc ]; then
  echo "== 2. pack"
  T="python3 $D/timed.py"; tree=$W/t/rdoc
  $W/clc pack $tree -o $W/warm --gpu-device $DEV -q; rm -f $W/warm.*
  mode() {  # mode cpu | mode gpu-VARIANT
    case $1 in
      cpu) $W/clc pack $tree -o $W/$1 --cpu -q ;;
      gpu-*) env $(src ${1#gpu-}) CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/$1 --gpu-device $DEV -q ;;
    esac
  }
  export -f mode src; export W tree DEV D
  modes="cpu"; for v in $PACKVARS; do modes="$modes gpu-$v"; mode gpu-$v; done  # each kernel built once
  for i in $(seq $REPS); do for m in $modes; do rm -f $W/$m.*; echo "pack $m: $($T bash -c "mode $m" | cut -d' ' -f1)"; done; done
  for m in $modes; do echo "pack size $m: $(cat $W/$m.* | wc -c)"; done
  for m in $modes; do [ $m = cpu ] || { cmp -s $W/gpu-main.001 $W/$m.001 && echo "pack gpu-main and $m archives identical"; }; done
  rm -rf $W/x; $W/clc extract $W/$m.001 -o $W/x --cpu -q && diff -r $tree $W/x >/dev/null && echo "$m archive extracts byte-exact"
  env $(src ${m#gpu-}) CLC_TRACE=1 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/tr --gpu-device $DEV 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |GPU opened|stream done|^time|^frames" | head -24
fi

echo "== table"
sleep 1; cp $OUT/run.log $W/log  # not the file tee is still writing
grep -E "^(nvcomp|-- |compress |gpu / cpu|compress kernel|same bytes|DIFFERENT|pack |gpu-.* archive)" $W/log
