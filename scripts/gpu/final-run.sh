#!/bin/bash
# The end-of-session figures on the lent machine (nvidia-h200-x2: two H200s, 32 cores), one call:
#   1. pack of the Rust-doc tree and of a mixed tree (the machine's /usr/share/doc, python3, /usr/include)
#      against tar|lz4 -1, tar|zstd -3 -T0 and (if bin/ has it) mksquashfs -comp lz4 -processors N: --cpu, the default, one GPU, both GPUs (named: the
#      shared split), every frame on one GPU (CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1), 3 runs interleaved;
#      and on both GPUs where there are two; every frame on one GPU with CLC_GPU_BACK=8 (lz_find also asks 8 older
#      segments' tables: the mixed tree's ratio lever of runs 48-49); sizes; the all-GPU archive verified and extracted byte-exact with --cpu;
#   2. extract (into EXTRACT_DIR, default /dev/shm/frx) and read-all through `clc mount` of the --cpu archive:
#      --cpu, default, one GPU, both GPUs;
#   3. scripts/gpu/mount-bench.sh (issue 20: extract vs read-all through the mount, one large file, fio);
#   4. the CPU codecs on both trees (issue 21): pack with the default codec, --codec zstd and --codec lz_ext3e
#      (all --cpu) against mksquashfs -comp lz4 -processors N and tar | zstd -3 -T0, and extract of each clc
#      archive, all in /dev/shm; sizes;
#   5. two pinned cores (`taskset`, two CPUs of different physical cores; issue 21's 2-core goals on a machine nobody else uses): pack with
#      clc-main (a build of main beside this one, if $D has it) and clc, default codec and --codec zstd,
#      against mksquashfs -comp lz4 -processors 2 and tar | zstd -3 -T2, on the Rust docs, the mixed tree
#      and the machine's python3 library alone, alternating; sizes.
# Here: cargo build --release; mkdir -p .dev-gpu-final/bin; copy target/release/clc (stripped), lz4 and
# zstd (/usr/bin) into bin/ and liblz4.so.1 into lib/, this script, scripts/gpu/timed.py and scripts/gpu/mount-bench.sh into .dev-gpu-final/;
# then run(command="bash .dev-gpu-final/final-run.sh", carry=[".dev-gpu-final", ".dev-gpu-shared"],
# kind="nvidia-h200-x2"). Logs under $OUT; a table last.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/final-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/final.log") 2>&1
export PATH=$D/bin:$PATH CLC_CACHE_DIR=/tmp/clc-cache LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
CLC=$D/clc; T="python3 $D/timed.py"; REPS=${REPS:-3}; SECTIONS=${SECTIONS:-1 2 3}
XD=${EXTRACT_DIR:-/dev/shm/frx}   # section 2's extracts: tmpfs by default, so that writeback is not what is timed
in_sections() { case " $SECTIONS " in *" $1 "*) return 0;; esac; return 1; }
W=/tmp/fr; rm -rf $W; mkdir -p $W/t $W/src $W/m
nproc; nvidia-smi -L; NG=$(nvidia-smi -L 2>/dev/null | wc -l)   # "all" = both GPUs only where there are two
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
if in_sections 1 || in_sections 4 || in_sections 5; then cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/; fi
for t in $W/t/rdoc $W/src; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
mkdir -p $W/one && cp -a $W/t/rdoc/*/process $W/one/ 2>/dev/null
$CLC pack $W/one -o $W/o --gpu-device NVIDIA -q; rm -f $W/o.*   # builds the kernel cache once
sec() { $T "$@" | cut -d' ' -f1; }

echo "== 1. pack"
in_sections 1 && for tree in $W/t/rdoc $W/src; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    echo "$n lz4: $(sec bash -c "tar cf - -C $tree . | lz4 -1 -q > $W/t.lz4")"
    echo "$n zstd: $(sec bash -c "tar cf - -C $tree . | zstd -3 -T0 -q > $W/t.zst")"
    command -v mksquashfs >/dev/null && { rm -f $W/t.sqfs; echo "$n sqfs: $(sec mksquashfs $tree $W/t.sqfs -comp lz4 -processors $(nproc) -noappend -quiet -no-progress)"; }
    rm -f $W/a.*; echo "$n cpu: $(sec $CLC pack $tree -o $W/a --cpu -q)"
    rm -f $W/d.*; echo "$n default: $(sec $CLC pack $tree -o $W/d -q)"
    rm -f $W/g.*; echo "$n gpu1: $(sec $CLC pack $tree -o $W/g --gpu-device NVIDIA -q)"
    [ $NG -ge 2 ] && { rm -f $W/h.*; echo "$n gpu2: $(sec $CLC pack $tree -o $W/h --gpu-device all -q)"; }
    rm -f $W/e.*; echo "$n allgpu: $(sec env CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $CLC pack $tree -o $W/e --gpu-device NVIDIA -q)"
    [ $NG -ge 2 ] && { rm -f $W/f.*; echo "$n allgpu2: $(sec env CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $CLC pack $tree -o $W/f --gpu-device all -q)"; }
    rm -f $W/b.*; echo "$n allgpuB8: $(sec env CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 CLC_GPU_BACK=8 $CLC pack $tree -o $W/b --gpu-device NVIDIA -q)"
  done
  echo "$n size lz4: $(stat -c %s $W/t.lz4)"; echo "$n size zstd: $(stat -c %s $W/t.zst)"
  [ -e $W/t.sqfs ] && echo "$n size sqfs: $(stat -c %s $W/t.sqfs)"
  for k in a:cpu d:default g:gpu1 h:gpu2 e:allgpu f:allgpu2 b:allgpuB8; do [ -e $W/${k%%:*}.001 ] || continue; echo "$n size ${k#*:}: $(cat $W/${k%%:*}.* | wc -c)"; done
  $CLC info $W/e.001 | grep -i "frames\|LZ_EXT3" | head -3
  $CLC verify $W/e.001 -q && echo "$n: all-GPU archive verifies"
  rm -rf $W/x; $CLC extract $W/e.001 -o $W/x --cpu -q && diff -r --no-dereference $tree $W/x >/dev/null && echo "$n: all-GPU archive extracts byte-exact"
  rm -f $W/x.*; CLC_TRACE=1 $CLC pack $tree -o $W/x --gpu-device NVIDIA 2>&1 | grep "trace: [A-Z]\|^time\|^frames" | head -12
  # Every frame on one GPU, then on both, traced: the GPU-bound stage's time with one and two devices.
  for g in NVIDIA all; do
    [ $g = all ] && [ $NG -lt 2 ] && continue
    rm -f $W/x.*; echo "$n traced all-GPU pack, --gpu-device $g:"
    CLC_TRACE=1 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $CLC pack $tree -o $W/x --gpu-device $g 2>&1 | grep "trace: [A-Z]\|GPU open\|^time\|^frames" | head -20
  done
  rm -f $W/a.* $W/b.* $W/d.* $W/e.* $W/f.* $W/g.* $W/h.* $W/x.*
done

echo "== 4. codecs"
in_sections 4 && for tree in $W/t/rdoc $W/src; do
  n=$(basename $tree)-c; C=/dev/shm/fr4; rm -rf $C; mkdir -p $C
  for i in $(seq $REPS); do
    command -v mksquashfs >/dev/null && { rm -f $C/t.sqfs; echo "$n sqfs: $(sec mksquashfs $tree $C/t.sqfs -comp lz4 -processors $(nproc) -noappend -quiet -no-progress)"; }
    echo "$n zstd: $(sec bash -c "tar cf - -C $tree . | zstd -3 -T0 -q > $C/t.zst")"
    for k in sb:lz_ext3 zs:zstd e:lz_ext3e; do
      rm -f $C/${k%%:*}.*; echo "$n pack-${k#*:}: $(sec $CLC pack $tree -o $C/${k%%:*} --cpu -q --codec ${k#*:})"
    done
    for k in sb:lz_ext3 zs:zstd e:lz_ext3e; do
      rm -rf $C/x; echo "$n extract-${k#*:}: $(sec $CLC extract $C/${k%%:*}.001 -o $C/x -q)"
    done
  done
  diff -r --no-dereference $tree $C/x >/dev/null && echo "$n: the last extract (lz_ext3e) is identical to the tree"
  rm -rf $C/x; $CLC extract $C/zs.001 -o $C/x -q && diff -r --no-dereference $tree $C/x >/dev/null && echo "$n: the zstd archive extracts identical"
  echo "$n size tar-zstd: $(stat -c %s $C/t.zst)"; [ -e $C/t.sqfs ] && echo "$n size sqfs: $(stat -c %s $C/t.sqfs)"
  for k in sb:lz_ext3 zs:zstd e:lz_ext3e; do echo "$n size ${k#*:}: $(cat $C/${k%%:*}.0* | wc -c)"; done
  rm -rf $C
done

echo "== 5. two pinned cores"
# PINS="2 all" (default 2): also every core, unpinned (main's build against this one there too).
in_sections 5 && for pin in ${PINS:-2}; do for tree in $W/t/rdoc $W/src $(ls -d $W/src/python3* 2>/dev/null | head -1); do
  # Two CPUs of different physical cores (not two threads of one).
  CPUS=$(lscpu -p=CPU,CORE 2>/dev/null | grep -v '^#' | awk -F, '!seen[$2]++ {print $1}' | head -2 | paste -sd,)
  n=$(basename $tree)-p$pin; C=/dev/shm/fr5; rm -rf $C; mkdir -p $C; P="taskset -c ${CPUS:-0,1}"; NP=2
  [ "$pin" = all ] && { P=""; NP=$(nproc); }
  BINS="clc"; [ -x $D/clc-main ] && BINS="clc-main clc"
  for i in $(seq $REPS); do
    command -v mksquashfs >/dev/null && { rm -f $C/t.sqfs; echo "$n sqfs: $(sec $P mksquashfs $tree $C/t.sqfs -comp lz4 -processors $NP -noappend -quiet -no-progress)"; }
    echo "$n tar-zstd: $(sec $P bash -c "tar cf - -C $tree . | zstd -3 -T$NP -q > $C/t.zst")"
    for b in $BINS; do for k in sb:lz_ext3 zs:zstd; do
      rm -f $C/$b-${k%%:*}.*; echo "$n $b-${k#*:}: $(sec $P $D/$b pack $tree -o $C/$b-${k%%:*} --cpu -q --codec ${k#*:})"
    done; done
  done
  echo "$n size tar-zstd: $(stat -c %s $C/t.zst)"; [ -e $C/t.sqfs ] && echo "$n size sqfs: $(stat -c %s $C/t.sqfs)"
  for b in $BINS; do for k in sb:lz_ext3 zs:zstd; do echo "$n size $b-${k#*:}: $(cat $C/$b-${k%%:*}.0* | wc -c)"; done; done
  rm -rf $C/x; $D/clc extract $C/clc-zs.001 -o $C/x -q && diff -r --no-dereference $tree $C/x >/dev/null && echo "$n: the zstd archive extracts identical"
  rm -rf $C
done; done

echo "== 2. extract and read-all (rdoc, an archive packed with --cpu)"
rm -f $W/r.*; $CLC pack $W/t/rdoc -o $W/r --cpu -q
in_sections 2 && {
MODES=("--cpu" "" "--gpu-device NVIDIA"); [ $NG -ge 2 ] && MODES+=("--gpu-device all")
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do
    rm -rf $XD; sync; echo "extract [$m]: $(sec timeout 60 $CLC extract $W/r.001 -o $XD -q $m)"
  done
done
diff -r $W/t/rdoc $XD >/dev/null && echo "last extract [${MODES[-1]}] identical to the tree"; rm -rf $XD
for i in $(seq $REPS); do
  for m in "${MODES[@]}"; do
    $CLC mount $W/r.001 $W/m $m || { echo "mount [$m] failed"; continue; }
    echo "read-all [$m]: $(sec timeout 60 bash -c "tar cf - -C $W/m . | cat >/dev/null")"
    $CLC umount $W/m
  done
done
rm -rf $W/x $W/src
}

echo "== 3. mount-bench.sh"
in_sections 3 && OUT=$OUT/mb REPS=${MB_REPS:-3} BIG_GB=${MB_GB:-2} timeout ${MB_TIMEOUT:-240} bash $D/mount-bench.sh $CLC "$R/.dev-gpu-shared" | tail -40

echo "== table (medians of $REPS)"
python3 "$R/scripts/gpu/medians.py" "$OUT/final.log" '\S+ \S+|extract \[.*?\]|read-all \[.*?\]' 32
grep " size " "$OUT/final.log"
