#!/bin/bash
# Issues 17 and 21, branch stream (one H200 machine, 16 cores; only the CPU is used): the pack's stream
# (several segments of a large file read at a time, reused read buffers, a read-ahead bounded in bytes)
# against main's binary, `--cpu`, on the Rust-doc tree, a mixed tree (/usr/share/doc, /usr/lib/python3*,
# /usr/include of that machine) and a tree of large files (gen_big.py: BIG permuted copies of the Rust-doc
# tar); beside tar | zstd -3 -T0, tar | lz4 -1 and mksquashfs -comp lz4 -processors $(nproc). Interleaved
# runs, medians; the two binaries' archives compared (cuts and layout must not change); one traced pack
# (CLC_TRACE=1) per tree and binary.
# Here: the stripped release clc of this branch as clc, main's as clc-main (and, optionally, an
# intermediate build as clc-mid, for a lever measured alone in the same run), this script, timed.py
# and medians.py in .dev-gpu-stream/ (the trees come from scripts/gpu/trees.sh), with bin/ (lz4, zstd, mksquashfs) and lib/ (their libraries);
# run(command="bash .dev-gpu-stream/stream-run.sh", carry=[".dev-gpu-stream",
# ".dev-gpu-shared/rdoc.tar.xz"]). Locally: BIG=2 MIXED=0 REPS=1.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
OUT=${OUT:-/tmp/stream-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/run.log") 2>&1
export SOURCE_DATE_EPOCH=1700000000
T="python3 $D/timed.py"; REPS=${REPS:-3}; SH=${SH:-$R/.dev-gpu-shared}
BIG=${BIG:-10}; MIXED=${MIXED:-1}; P=$(nproc)
export PATH="$D/bin:$PATH" LD_LIBRARY_PATH="$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
W=/tmp/sr; rm -rf $W; mkdir -p $W/t $W/src
echo "cores $P"; uptime; grep -m1 'model name' /proc/cpuinfo
. "$R/scripts/gpu/trees.sh"; make_trees
sec() { $T "$@" | cut -d' ' -f1; }
PEERS=""
command -v zstd >/dev/null && PEERS="$PEERS zstd"
command -v lz4 >/dev/null && PEERS="$PEERS lz4"
mksquashfs -version >/dev/null 2>&1 && PEERS="$PEERS sqfs"
CLCS="main"; [ -x $D/clc-mid ] && CLCS="$CLCS mid"; CLCS="$CLCS new"
mode() {  # mode NAME TREE OUT
  case $1 in
    main) $D/clc-main pack $2 -o $3 --cpu -q ;;
    mid) $D/clc-mid pack $2 -o $3 --cpu -q ;;
    new) $D/clc pack $2 -o $3 --cpu -q ;;
    zstd) tar cf - -C $2 . | zstd -3 -T0 -q > $3.zst ;;
    lz4) tar cf - -C $2 . | lz4 -1 -q > $3.lz4 ;;
    sqfs) mksquashfs $2 $3.sqfs -comp lz4 -processors $P -noappend -quiet -no-progress >/dev/null ;;
  esac
}
export -f mode; export D P
for tree in $TREES; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    for m in $CLCS $PEERS; do rm -f $W/$m.*; echo "$n $m: $(sec bash -c "mode $m $tree $W/$m")"; done
  done
  for m in $CLCS $PEERS; do echo "$n size $m: $(cat $W/$m.* | wc -c)"; done
  for m in $CLCS; do [ $m = main ] || { cmp -s $W/main.001 $W/$m.001 && echo "$n: main and $m archives identical"; }; done
  rm -rf $W/x; $D/clc extract $W/new.001 -o $W/x --cpu -q && diff -r $tree $W/x >/dev/null && echo "$n: new archive extracts byte-exact"
  rm -rf $W/x
  for b in $CLCS; do
    rm -f $W/x.*; echo "-- trace $b $n"
    B=$D/clc; [ $b = main ] && B=$D/clc-main; [ $b = mid ] && B=$D/clc-mid
    CLC_TRACE=1 $T $B pack $tree -o $W/x --cpu 2>&1 | grep -E "trace: +[A-Z][A-Za-z]+ |scan done|dedup done|seeded|stream done|entries built|index written|peak RSS" | head -26
  done
  rm -f $W/*.0* $W/*.zst $W/*.lz4 $W/*.sqfs
done
echo "== table (medians)"
python3 "$D/medians.py" "$OUT/run.log" '\S+ \S+' 16
grep -E "size |identical|byte-exact" $OUT/run.log
