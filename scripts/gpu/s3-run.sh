#!/bin/bash
# Issue 19's figures on the lent machine (16 or 32 cores: the S3 server gets cores of its own, which the
# 2-core development machine cannot give it), then, optionally, the end-of-session table of final-run.sh.
#   1. scripts/bench-s3.sh (pack to the bucket vs to local disk, read-all through the mount from the
#      bucket vs local, random 4 KiB reads, bytes fetched per byte read) on the Rust-doc tree, the mixed
#      tree (this machine's /usr/share/doc + /usr/include + /usr/lib/python3.X, copied) and the
#      machine's /usr/share/doc, against a SeaweedFS `weed mini` on loopback; a table last;
#   2. with FINAL=1: final-run.sh (SECTIONS, REPS) from the same folder.
# AB="clc-main clc" adds a pack-only comparison of binaries (bench-s3-pack.sh, FLOOR=1); a binary NAME
# may be carried as NAME.xz. The scripts may be carried too (a copy of scripts/ under the carry folder,
# run as .dev-gpu-X/scripts/gpu/s3-run.sh .dev-gpu-X with RDOC=.dev-gpu-shared/rdoc.tar.xz), since the
# machine gets /work/main's tree.
# Here: cargo build --release; make a folder .dev-gpu-X with clc (stripped), weed.xz (`xz -9` of the weed
# binary that scripts/s3-server.sh installs under ~/.cache/clc-s3/venv/bin), and what final-run.sh needs
# (bin/lz4, bin/zstd, lib/liblz4.so.1, timed.py, final-run.sh, mount-bench.sh); then
# run(command="REPS_S3=5 bash scripts/gpu/s3-run.sh .dev-gpu-X", carry=[".dev-gpu-X",
# ".dev-gpu-shared/rdoc.tar.xz"]) (final-run.sh and its tools are needed only with FINAL=1).
# Logs under $OUT; tables last. Three trees at most 170 s each (the call limit is 600 s).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd)
D=$(cd "${1:?usage: s3-run.sh CARRY_DIR}" && pwd)
OUT=${OUT:-/tmp/s3-run-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/s3-run.log") 2>&1
nproc; uptime
export CLC_S3_HOME=/tmp/clc-s3-home
mkdir -p $CLC_S3_HOME/venv/bin
xz -dc "$D/weed.xz" > $CLC_S3_HOME/venv/bin/weed && chmod +x $CLC_S3_HOME/venv/bin/weed
W=/tmp/s3r; rm -rf $W; mkdir -p $W/t $W/bin
tar xJf "${RDOC:-$R/.dev-gpu-shared/rdoc.tar.xz}" -C $W/t
# clc binaries: NAME or NAME.xz in the carry folder (xz keeps several under the carry limit).
for f in "$D"/clc*; do
  case "$f" in
    *.xz) n=$(basename "$f" .xz); xz -dc "$f" > $W/bin/$n ;;
    *) n=$(basename "$f"); cp "$f" $W/bin/$n ;;
  esac
  chmod +x $W/bin/$n
done
CLC_BIN=$W/bin/clc
# PARTS="8:4 5:8": upload settings to compare (CLC_S3_PART_MIB:CLC_S3_PARTS_IN_FLIGHT), each a run of
# bench-s3 on the Rust-doc tree only; without it, the defaults on both trees.
if [ -n "${PARTS:-}" ]; then
  for p in $PARTS; do
    echo "== bench-s3 rdoc parts $p"
    CLC_S3_PART_MIB=${p%%:*} CLC_S3_PARTS_IN_FLIGHT=${p#*:} CLC=$CLC_BIN REPS=${REPS_S3:-5} NREAD=20 RND_CACHE=17M \
      timeout 100 bash "$R/scripts/bench-s3.sh" $W/t/rdoc $W/b-rdoc > "$OUT/bench-s3-parts-${p/:/-}.log" 2>&1
    echo "rc $?"; grep -E "^pack to|^read every" "$OUT/bench-s3-parts-${p/:/-}.log"
  done
else
# The mixed tree of docs/BENCHMARKS.md 11.1, from this machine's own directories (copied: /tmp may be
# another file system).
# TREES: which of rdoc, mixed, doc (default all three).
TREES=${TREES:-rdoc mixed doc}
case " $TREES " in *" mixed "*)
mkdir -p $W/t/mixed
for d in /usr/share/doc /usr/include $(ls -d /usr/lib/python3* 2>/dev/null | head -1); do
  [ -d "$d" ] && cp -a "$d" "$W/t/mixed/$(echo "$d" | tr / _)" 2>/dev/null
done ;;
esac
for tree in $(for n in $TREES; do case $n in rdoc|mixed) echo $W/t/$n ;; doc) echo /usr/share/doc ;; esac; done); do
  n=$(basename $tree)
  echo "== bench-s3 $n"
  CLC=$CLC_BIN REPS=${REPS_S3:-5} NREAD=${NREAD:-100} RND_CACHE=17M timeout 170 bash "$R/scripts/bench-s3.sh" $tree $W/b-$n > "$OUT/bench-s3-$n.log" 2>&1
  echo "rc $?"
  grep -v "trace:" "$OUT/bench-s3-$n.log" | tail -8
done
fi
# AB="clc-main clc": pack only, those binaries of the carry folder alternating (scripts/bench-s3-pack.sh,
# REPS_AB, with FLOOR=1: the server's time for plain PUTs of what a pack uploads after its stream), on
# the Rust-doc tree and this machine's /usr/share/doc.
if [ -n "${AB:-}" ]; then
  echo "== bench-s3-pack $AB"
  CLCS=$(for b in $AB; do printf '%s ' $W/bin/$b; done) REPS=${REPS_AB:-7} FLOOR=1 \
    timeout ${AB_LIMIT:-120} bash "$R/scripts/bench-s3-pack.sh" $W/t/rdoc /usr/share/doc > "$OUT/bench-s3-pack.log" 2>&1
  echo "rc $?"; cat "$OUT/bench-s3-pack.log"
fi
if [ "${FINAL:-0}" = 1 ]; then
  SECTIONS=${SECTIONS:-1 2} REPS=${REPS:-3} timeout 250 bash "$D/final-run.sh" | tail -40
fi
if [ -z "${PARTS:-}" ]; then
  echo "== s3 table (medians of REPS_S3=${REPS_S3:-5}; pack goal bucket/local <= 1.2, read-all goal >= 0.8)"
  echo "| tree | bytes, files | pack local s | pack bucket s | bucket / local | read-all local / bucket MiB/s | bucket / local |"
  echo "|---|---|---|---|---|---|---|"
  for n in rdoc mixed doc; do
    f="$OUT/bench-s3-$n.log"
    [ -f "$f" ] || continue
    grep -v "trace:" "$f" | awk -v n="$n" '
      /^tree:/ { bytes=$3; files=$5 }
      /^pack to local disk/ { pl=$5; pb=$11; pr=$15 }
      /^read every file/ { rl=$10; rb=$15; sub(/\(/, "", rl); sub(/\(/, "", rb); for (i=1;i<=NF;i++) if ($i=="=") rr=$(i+1) }
      END { printf "| %s | %s B, %s files | %s | %s | %s | %s / %s | %s |\n", n, bytes, files, pl, pb, pr, rl, rb, rr }'
  done
fi
