#!/bin/bash
# Issue 16 on the lent machine: `clc extract` of the Rust-doc archive (packed with --cpu) with --cpu, the
# default, one named GPU and every GPU (`all`), for two builds in one call (CARRY_DIR/clc and
# CARRY_DIR/clc-old), REPS runs interleaved, page cache kept (the archive is hot; each run's output is
# removed and synced first); one CLC_TRACE of each build with `all`; every output compared with the tree.
# X = where the output goes (default /dev/shm/xab-x: on the disk, writeback of the previous run's 280 MB
# spread --cpu's runs from 0.3 to 2.1 s in run 31).
# Here: cargo build --release; strip target/release/clc into CARRY_DIR/ (the earlier build as clc-old,
# with timed.py); run(command="bash scripts/gpu/extract-ab.sh CARRY_DIR", carry=[CARRY_DIR,
# ".dev-gpu-shared/rdoc.tar.xz"], kind="nvidia-h200-x2"). Logs under $OUT; a table last.
set -u
R=$(cd "$(dirname "$0")/../.." && pwd)
D=$(cd "${1:?usage: extract-ab.sh CARRY_DIR}" && pwd)
OUT=${OUT:-/tmp/extract-ab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; REPS=${REPS:-5}
W=/tmp/xab; X=${X:-/dev/shm/xab-x}; rm -rf $W $X; mkdir -p $W/t
nproc; nvidia-smi -L
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
$D/clc pack $W/t/rdoc -o $W/r --cpu -q
mkdir -p $W/one && cp -a $W/t/rdoc/*/process $W/one/ 2>/dev/null; $D/clc pack $W/one -o $W/k --gpu-device all -q; rm -f $W/k.*   # kernel cache
sec() { $T "$@" | cut -d' ' -f1; }
for i in $(seq $REPS); do
  for b in clc clc-old; do
    for m in "--cpu" "" "--gpu-device NVIDIA" "--gpu-device all"; do
      rm -rf $X; sync
      echo "$b [$m]: $(sec timeout 60 $D/$b extract $W/r.001 -o $X -q $m)"
      diff -r $W/t/rdoc $X >/dev/null || echo "$b [$m]: OUTPUT DIFFERS"
    done
  done
done
for b in clc clc-old; do
  rm -rf $X; sync; echo "-- trace $b all"
  CLC_TRACE=1 $D/$b extract $W/r.001 -o $X --gpu-device all 2>&1 | grep -E "GPU|decode|Decode|^time|extracted" | head -16
done
echo "== table (medians of $REPS)"
python3 "$R/scripts/gpu/medians.py" "$OUT/run.log" '\S+ \[.*?\]' 28
grep -c DIFFERS "$OUT/run.log" | sed 's/^/outputs that differ: /'
rm -rf $X
