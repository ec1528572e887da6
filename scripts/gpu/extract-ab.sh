#!/bin/bash
# Issue 16 on the lent machine: `clc extract` of the Rust-doc archive (packed with --cpu) with --cpu, the
# default, one named GPU and every GPU (`all`), each also with CLC_GPU_DECODE_MIN=0 (`min0`: the device
# opened even where it cannot pay), for two builds in one call (CARRY_DIR/clc and CARRY_DIR/clc-old, or
# the same names .xz), REPS runs interleaved, page cache kept (the archive is hot; each run's output is
# removed and synced first; the first run of each compared with the tree), into every destination of XS
# (default tmpfs, then the disk); one CLC_TRACE of each build with `all` (min0).
# Each build runs as a file named `clc` (/tmp/xab-bin/NAME/clc): only a binary of that name probes the
# OpenCL drivers (src/gpu/icd.rs), so a build run as `clc-old` never used the probe table (runs 32-33).
# Here: cargo build --release; strip target/release/clc into CARRY_DIR/ (the earlier build as clc-old,
# with scripts/gpu/timed.py and this script); run(command="bash CARRY_DIR/extract-ab.sh CARRY_DIR",
# carry=[CARRY_DIR, ".dev-gpu-shared/rdoc.tar.xz"], kind="nvidia-h200-x2"). Logs under $OUT; a table last.
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); [ -e "$R/.dev-gpu-shared" ] || R=$(cd "$(dirname "$0")/.." && pwd)
D=$(cd "${1:?usage: extract-ab.sh CARRY_DIR}" && pwd)
OUT=${OUT:-/tmp/extract-ab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; REPS=${REPS:-5}
W=/tmp/xab; XS=${XS:-/dev/shm/xab-x /tmp/xab/x}; rm -rf $W /tmp/xab-bin; mkdir -p $W/t
for b in clc clc-old; do
  mkdir -p /tmp/xab-bin/$b
  if [ -e $D/$b.xz ]; then xz -dc $D/$b.xz > /tmp/xab-bin/$b/clc; else cp $D/$b /tmp/xab-bin/$b/clc; fi
  chmod +x /tmp/xab-bin/$b/clc
done
C=/tmp/xab-bin/clc/clc
nproc; nvidia-smi -L; uptime
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
$C pack $W/t/rdoc -o $W/r --cpu -q
mkdir -p $W/one && cp -a $W/t/rdoc/*/process $W/one/ 2>/dev/null; $C pack $W/one -o $W/k --gpu-device all -q; rm -f $W/k.*   # kernel cache, probe table
sec() { $T "$@" | cut -d' ' -f1; }
MODES=("--cpu" "" "--gpu-device NVIDIA" "--gpu-device all" "min0 --gpu-device NVIDIA" "min0 --gpu-device all")
# NOMIN0=1 leaves out the min0 modes; SHUFFLE=1 runs the modes of each round in a random order (run 52 saw
# modes that run the same CPU path differ by 5 % in a fixed order).
[ "${NOMIN0:-0}" = 1 ] && MODES=("--cpu" "" "--gpu-device NVIDIA" "--gpu-device all")
for X in $XS; do
  where=$(case $X in /dev/shm*) echo shm;; *) echo disk;; esac)
  df -h $(dirname $X) | tail -1
  for i in $(seq $REPS); do
    for b in clc clc-old; do
      ORDER=("${MODES[@]}")
      [ "${SHUFFLE:-0}" = 1 ] && mapfile -t ORDER < <(printf '%s\n' "${MODES[@]}" | shuf)
      for m in "${ORDER[@]}"; do
        rm -rf $X; sync
        case $m in min0*) e="env CLC_GPU_DECODE_MIN=0"; a=${m#min0 };; *) e=""; a=$m;; esac
        echo "$b $where [$m]: $(sec timeout 60 $e /tmp/xab-bin/$b/clc extract $W/r.001 -o $X -q $a)"
        [ $i = 1 ] && { diff -r $W/t/rdoc $X >/dev/null || echo "$b $where [$m]: OUTPUT DIFFERS"; }
      done
    done
  done
done
X=/dev/shm/xab-x
for b in clc clc-old; do
  rm -rf $X; sync; echo "-- trace $b min0 all"
  CLC_GPU_DECODE_MIN=0 CLC_TRACE=1 /tmp/xab-bin/$b/clc extract $W/r.001 -o $X --gpu-device all 2>&1 | grep -E "GPU|decode|Decode|^time|extracted" | head -16
  rm -rf $X; echo "-- $b --gpu-device all"; /tmp/xab-bin/$b/clc extract $W/r.001 -o $X --gpu-device all 2>&1 | tail -3
  rm -rf $X; echo "-- $b --gpu-device nvidai (misspelled)"; /tmp/xab-bin/$b/clc extract $W/r.001 -o $X --gpu-device nvidai 2>&1 | tail -3
done
echo "== table (medians of $REPS)"
python3 "$R/scripts/gpu/medians.py" "$OUT/run.log" '\S+ \S+ \[.*?\]' 36
grep -c DIFFERS "$OUT/run.log" | sed 's/^/outputs that differ: /'
rm -rf $X /tmp/xab/x
