#!/bin/bash
# Issue 17, the encoder's kernels beside nvCOMP LZ4 on the lent H200 (runs 77-78), one call (kernel-ab3.sh of
# runs 65-66, with the kernels' wall over overlapping launches and main's clc beside the branch's):
#   0. nvCOMP LZ4 compress on the same tars, device-resident (nvcomp_bench.py);
#   1. gpu_bench on the Rust-doc tar (rdoc.tar.xz, tar's own order) and the mixed tar (mixed.tar.xz of
#      runs 48-49, concatenated COPIES times here), batch 32, best of REP, one queue (CLC_GPU_QUEUES=1:
#      each stage's time is its own): main's binary (gpu_bench-main.xz: its own kernel and host) first,
#      then every kernel variant of VARS (var/NAME.cl through CLC_GPU_C_SRC with this branch's binary;
#      `branch` = the binary's own kernel; NVONLY variants are skipped off NVIDIA), each one's blocks
#      cmp-checked against main's binary's; then the ROWS, each "LABEL:ENV=V,ENV=V" (BATCH=N as --batch,
#      C_SRC=NAME as the kernel); then Q2ROWS the same way with two queues (the default), whose kernel
#      wall (gpu_bench's "compress kernel wall", overlapping launches counted once) is the one to read;
#      then ptxas -v (registers, shared memory, spills) of every cached NVIDIA program binary (PTX);
#   2. PACK=1: clc pack of the Rust-doc tree, --cpu, and each row of PACKROWS ("LABEL:ENV=V,..."; C_SRC=NAME
#      as the kernel, BIN=clc-main for main's clc where it was carried) with every frame on the GPU (CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1), REPS runs interleaved, archives compared, then
#      the branch's trace (CLC_TRACE=1, CLC_TRACE_EVENTS to $OUT/events.txt).
# Here: cargo build --release --bin clc --example gpu_bench (and main's, as clc-main / gpu_bench-main); the
# stripped binaries into the carry folder as bins.tar.xz (tar | xz -9e: main's and the branch's share most bytes) with this script, var/, nvcomp_bench.py, timed.py and mixed.tar.xz
# (kernel-ab.sh's header has its recipe); then run(command="bash .dev-gpu-gpu-pack/kernel-ab4.sh",
# carry=[".dev-gpu-gpu-pack", ".dev-gpu-shared/rdoc.tar.xz", ".dev-gpu-shared/whl"]). Locally on PoCL:
# DEV=pthread REP=1 COPIES=1 RDOC=small.tar bash kernel-ab4.sh (in the carry folder).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/kab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}; REP=${REP:-3}; COPIES=${COPIES:-8}; PACK=${PACK:-1}
REPS=${REPS:-3}; VARS=${VARS:-main m8 pre buildl branch}; NVONLY=${NVONLY:-}
ROWS=${ROWS:-branch72:BATCH=72}
Q2ROWS=${Q2ROWS:-q2main:C_SRC=main q2branch: q2branch72:BATCH=72}
W=/tmp/kab; rm -rf $W; mkdir -p $W/t
[ -f $D/bins.tar.xz ] && tar xJf $D/bins.tar.xz -C $W  # the binaries in one xz (they share most bytes)
for b in gpu_bench clc gpu_bench-main clc-main; do
  if [ -f $D/$b.xz ]; then xz -dc $D/$b.xz > $W/$b; chmod +x $W/$b; elif [ -f $D/$b ]; then cp $D/$b $W/; fi
done
export PATH=$PATH:/usr/local/cuda/bin
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
bench() {  # bench TAR LABEL BATCH [env...]  (BIN=gpu_bench-main: main's binary)
  local tar=$1 label=$2 batch=$3; shift 3
  echo "-- $label $(basename $tar)"
  env "$@" timeout 120 $W/${BIN:-gpu_bench} $tar --device $DEV --batch $batch --compress-only --repeat $REP --dump $W/cur.dump \
    | grep -E "^(input|compress|clc cpu|gpu / cpu|compress kernel|  [a-z]+ +[0-9])"; true
}
src() { [ "$1" = branch ] || echo "CLC_GPU_C_SRC=$D/var/$1.cl"; }  # branch: the binary's own kernel
for t in rdoc mixed; do
  BIN=gpu_bench-main bench $W/$t.tar "q1 mainbin" 32 CLC_GPU_QUEUES=1
  mv $W/cur.dump $W/mainbin.dump
  for v in $VARS; do
    case " $NVONLY " in *" $v "*) [ "$DEV" = NVIDIA ] || continue ;; esac
    bench $W/$t.tar "q1 $v" 32 CLC_GPU_QUEUES=1 $(src $v)
    if [ -f $W/mainbin.dump ]; then cmp -s $W/mainbin.dump $W/cur.dump && echo "same bytes as main: $v $t" || echo "DIFFERENT from main: $v $t"; fi
    [ $v = branch ] && mv $W/cur.dump $W/branch.dump
  done
  for row in $ROWS $Q2ROWS; do
    label=${row%%:*}; envs=(CLC_GPU_QUEUES=1); batch=32
    case " $Q2ROWS " in *" $row "*) envs=(CLC_GPU_QUEUES=2) ;; esac
    for kv in $(echo ${row#*:} | tr , ' '); do
      case $kv in BATCH=*) batch=${kv#BATCH=} ;; C_SRC=*) envs+=($(src ${kv#C_SRC=})) ;; *) envs+=($kv) ;; esac
    done
    bench $W/$t.tar "$label" $batch "${envs[@]}"
    [ -f $W/mainbin.dump ] && { cmp -s $W/mainbin.dump $W/cur.dump && echo "same bytes as main: $label $t" || echo "DIFFERENT from main: $label $t"; }
    [ -f $W/branch.dump ] && { cmp -s $W/branch.dump $W/cur.dump && echo "same bytes as branch: $label $t" || echo "DIFFERENT from branch: $label $t"; }
  done
done
if command -v ptxas >/dev/null; then
  echo "== ptxas -v (sm_90) of the cached program binaries"
  for b in $(ls -tr $CLC_CACHE_DIR/kernels/*.bin); do  # in the order built: main's, then VARS' (run 82)
    grep -q "lz_find" $b 2>/dev/null || continue
    tail -c +17 $b | tr -d '\000' > $W/k.ptx  # the cache file's 16-byte header off
    echo "-- $(basename $b) $(grep -m1 '^.target' $W/k.ptx)"
    ptxas -v --gpu-name sm_90 $W/k.ptx -o /dev/null 2>&1 | grep -A3 -E "Compiling entry function '(lz_find|lz_parse|lz_parse_w|lz_build4|lz_build_l)'" | grep -E "entry|Used|spill"
  done
fi

if [ "$PACK" = 1 ] && [ -x $W/clc ]; then
  echo "== 2. pack"
  T="python3 $D/timed.py"; tree=$W/t/rdoc
  $W/clc pack $tree -o $W/warm --gpu-device $DEV -q; rm -f $W/warm.*
  # PACKROWS: "LABEL:ENV=V,ENV=V" (C_SRC=NAME as the kernel), each an all-GPU pack with the binary's clc.
  PACKROWS=${PACKROWS:-gpumain:C_SRC=main gpubranch:}
  penv() { for row in $PACKROWS; do [ "${row%%:*}" = "$1" ] || continue
    for kv in $(echo ${row#*:} | tr , ' '); do case $kv in C_SRC=*) src ${kv#C_SRC=} ;; BIN=*) ;; *) echo $kv ;; esac; done; done; }
  pbin() { for row in $PACKROWS; do [ "${row%%:*}" = "$1" ] || continue
    for kv in $(echo ${row#*:} | tr , ' '); do case $kv in BIN=*) echo ${kv#BIN=}; return ;; esac; done; done; echo clc; }
  mode() {  # mode cpu | mode LABEL of PACKROWS
    case $1 in
      cpu) $W/clc pack $tree -o $W/$1 --cpu -q ;;
      *) env $(penv $1) CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/$(pbin $1) pack $tree -o $W/$1 --gpu-device $DEV -q ;;
    esac
  }
  export -f mode src penv pbin; export W tree DEV D PACKROWS
  modes="cpu"; for row in $PACKROWS; do m=${row%%:*}; modes="$modes $m"; mode $m; done  # each kernel built once
  for i in $(seq $REPS); do for m in $modes; do rm -f $W/$m.*; echo "pack $m: $($T bash -c "mode $m" | cut -d' ' -f1)"; done; done
  for m in $modes; do echo "pack size $m: $(cat $W/$m.* | wc -c)"; done
  first=$(echo $modes | cut -d' ' -f2)
  for m in $modes; do [ $m = cpu ] || [ $m = $first ] || { cmp -s $W/$first.001 $W/$m.001 && echo "pack $first and $m archives identical" || echo "pack $first and $m archives differ"; }; done
  rm -rf $W/x; $W/clc extract $W/$m.001 -o $W/x --cpu -q && diff -r $tree $W/x >/dev/null && echo "pack $m archive extracts byte-exact"
  m=gpubranch; env $(penv $m) CLC_TRACE=1 CLC_TRACE_EVENTS=$OUT/events.txt CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $W/clc pack $tree -o $W/tr --gpu-device $DEV 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |GPU opened|stream done|^time|^frames" | head -24
fi

echo "== table"
sleep 1; cp $OUT/run.log $W/log  # not the file tee is still writing
grep -E "^(nvcomp|-- |compress |gpu / cpu|compress kernel|same bytes|DIFFERENT|pack |clc: trace: +([A-Z][a-z]+ |.*GPU opened|.*stream done))" $W/log | grep -v "^compress kernel time"
grep -E "^(-- |compress kernel time)" $W/log > $OUT/stages.txt
