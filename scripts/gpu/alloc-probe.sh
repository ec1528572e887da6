#!/bin/bash
# What fresh memory and the allocator cost a --cpu pack on the lent machine (issues 21 and 17): the Rust
# docs, the mixed tree and python3, packed on all cores and on two pinned CPUs (taskset -c 2,3) by each
# variant in $VARIANTS (name=binary[,ENV=VALUE...]), beside mksquashfs -comp lz4 -processors N, into
# /dev/shm; per run: wall, user, sys, minor faults, peak RSS (scripts/gpu/rusage.py), medians of REPS.
# Then one CLC_TRACE=1 pack per variant and tree on all cores.
# Carry: .dev-gpu-lead4 (the binaries, bin/mksquashfs, lib/, this script, rusage.py), .dev-gpu-shared/rdoc.tar.xz.
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd); OUT=${OUT:-/tmp/alloc-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/probe.log") 2>&1
export PATH=$D/bin:$PATH LD_LIBRARY_PATH=$D/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
RU="python3 $D/rusage.py"; REPS=${REPS:-3}; N=$(nproc); CODEC=${CODEC:---codec zstd}
VARIANTS=${VARIANTS:-"main=clc-main"}
W=/tmp/ap; rm -rf $W; mkdir -p $W/t $W/src $W/py
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/src/doc; cp -a /usr/lib/python3* $W/src/ 2>/dev/null; cp -a /usr/include $W/src/
cp -a /usr/lib/python3.* $W/py/ 2>/dev/null
for t in $W/t/rdoc $W/src $W/py; do echo "tree $t: $(du -sb --apparent-size $t | cut -f1) bytes, $(find $t -type f | wc -l) files"; tar cf - -C $t . >/dev/null; done
echo "cores $N; THP $(cat /sys/kernel/mm/transparent_hugepage/enabled) defrag $(cat /sys/kernel/mm/transparent_hugepage/defrag); $(grep -m1 'model name' /proc/cpuinfo)"
run() { # tag cores-prefix env-and-command...
  local tag=$1; shift; echo "$tag: $($RU "$@" 2>/dev/null | tail -1)"; }
for tree in $W/t/rdoc $W/src $W/py; do
  n=$(basename $tree)
  for i in $(seq $REPS); do
    for c in all two; do
      P=""; NP=$N; [ $c = two ] && { P="taskset -c 2,3"; NP=2; }
      rm -f /dev/shm/s.sqfs; run "$n $c sqfs" $P mksquashfs $tree /dev/shm/s.sqfs -comp lz4 -processors $NP -noappend -quiet -no-progress
      for v in $VARIANTS; do
        name=${v%%=*}; spec=${v#*=}; bin=${spec%%,*}; envs=""; [ "$spec" != "$bin" ] && envs=$(echo ${spec#*,} | tr ',' ' ')
        rm -f /dev/shm/a.*; run "$n $c $name" $P env $envs $D/$bin pack $tree -o /dev/shm/a --cpu -q $CODEC
      done
    done
  done
  for v in $VARIANTS; do
    name=${v%%=*}; spec=${v#*=}; bin=${spec%%,*}; envs=""; [ "$spec" != "$bin" ] && envs=$(echo ${spec#*,} | tr ',' ' ')
    rm -f /dev/shm/a.*; env $envs CLC_TRACE=1 $D/$bin pack $tree -o /dev/shm/a --cpu $CODEC 2>&1 | grep -E "trace: (Scan|Dedup|Read|Chunk|CutGroup|Sequence|Gather|Blocked|Checksum|CpuEncode|Write|Finish) |^time" | sed "s/^/$n $name: /"
  done
  rm -f /dev/shm/a.* /dev/shm/s.sqfs
done
echo "== table: medians of $REPS (wall s, user s, sys s, minflt, peak RSS MiB)"
python3 - "$OUT/probe.log" <<'PY'
import sys, re, statistics, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    m = re.match(r"^(\S+ \S+ \S+): ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9]+) ([0-9]+)$", l.strip())
    if m: d[m[1]].append([float(m[i]) for i in range(2, 7)])
for k, v in sorted(d.items()):
    med = [statistics.median(x[i] for x in v) for i in range(5)]
    print(f"{k:22} {med[0]:.3f} {med[1]:.3f} {med[2]:.3f} {med[3]:8.0f} {med[4]:5.0f}  ({len(v)})")
PY
