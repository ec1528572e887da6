#!/bin/bash
# Issue 17: can a GPU's share make a pack faster where the CPU's encoder is the cap? Earlier shares were
# measured on trees whose stream is capped by reading and cutting (the Rust docs, permuted copies of them:
# runs 20-21), never on a large tree that is costly to encode. This one packs the lent machine's own
# Python environment (site-packages: torch, the CUDA libraries; several GB of shared objects, each file
# once), `--cpu` against `--gpu-device NVIDIA` with the default split and with a shorter lead and larger
# shares, interleaved, REPS rounds; then one traced pack per variant (stage busy times, frames shared) and
# the determinism and soundness checks (two shared packs `cmp`-equal with SOURCE_DATE_EPOCH fixed; the
# shared archive verified). Prints a table last; logs and traces under $OUT.
# A variant is NAME=LIST, LIST of pack arguments and CLC_* settings joined by commas; BIN=NAME in it runs
# .dev-gpu-m/NAME instead of .dev-gpu-m/clc. Each pack's line ends with its archive's bytes and digest.
# SHIFTED=N SHIFTED_TAR=F packs N letter-rotated copies of the tree in F instead (cheap to encode); SMALL=''
# leaves out the small tree's ends.
# Carry: .dev-gpu-m (clc, stripped);
# run(command="OUT=$OUT bash scripts/gpu/bigshare-run.sh", carry=[".dev-gpu-m"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/bigshare-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/bigshare.log") 2>&1
REPS=${REPS:-3}; LIMIT_GB=${LIMIT_GB:-6}
VARIANTS=${VARIANTS:-"cpu=--cpu named=--gpu-device,NVIDIA lead1=--gpu-device,NVIDIA,CLC_GPU_LEAD=1000000000 lead1s6=--gpu-device,NVIDIA,CLC_GPU_LEAD=1000000000,CLC_GPU_SHARE=6/16 allgpu=--gpu-device,NVIDIA,CLC_GPU_LEAD=0,CLC_GPU_SHARE=1/1"}
export SOURCE_DATE_EPOCH=1700000000
echo "cores $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
T=/dev/shm/bigtree; rm -rf $T; mkdir -p $T
if [ -n "${SHIFTED:-}" ]; then
    # A tree as costly to read and cut but cheap to encode: SHIFTED copies of a carried tree (a .tar.xz:
    # the Rust docs), each with its letters rotated by a different amount, so that no chunk of one copy
    # is a duplicate of another's and every copy compresses as the original does.
    mkdir -p /dev/shm/orig && tar xJf "$SHIFTED_TAR" -C /dev/shm/orig
    python3 - /dev/shm/orig $T "$SHIFTED" <<'PY'
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lo, up = bytes(range(97, 123)), bytes(range(65, 91))
for k in range(n):
    tab = bytes.maketrans(lo + up, lo[k:] + lo[:k] + up[k:] + up[:k])
    for root, dirs, files in os.walk(src):
        out = os.path.join(dst, f"c{k}", os.path.relpath(root, src))
        os.makedirs(out, exist_ok=True)
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as i, open(os.path.join(out, f), "wb") as o:
                    o.write(i.read().translate(tab))
PY
    rm -rf /dev/shm/orig
    echo "tree $T: $(du -sb --apparent-size $T | cut -f1) bytes, $(find $T -type f | wc -l) files: $SHIFTED rotated copies of $SHIFTED_TAR"
else
SP=$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))' 2>/dev/null)
[ -d "$SP" ] || { echo "no site-packages found"; exit 1; }
# The tree: site-packages' largest top-level directories that fit in LIMIT_GB, copied into one folder in
# tmpfs (keeps the disk out of the timings).
du -sb "$SP"/*/ 2>/dev/null | sort -rn > $OUT/site-packages-du.txt
tot=0
while read -r sz dir; do
    [ $((tot + sz)) -gt $((LIMIT_GB * 1000000000)) ] && continue
    cp -a "$dir" $T/ && tot=$((tot + sz))
done < $OUT/site-packages-du.txt
echo "tree $T: $(du -sb --apparent-size $T | cut -f1) bytes, $(find $T -type f | wc -l) files, from $SP: $(ls $T | tr '\n' ' ')"
fi
# The kernel built into the cache once, outside the timings.
mkdir -p /tmp/warm; head -c 50000000 /dev/urandom > /tmp/warm/r
CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 $D/clc pack /tmp/warm -o /dev/shm/w --gpu-device NVIDIA -q; rm -f /dev/shm/w.*
one() { # name args-and-envs out-prefix [trace]
    local name=$1 list=$2 o=$3 args=() envs=() bin=clc
    IFS=, read -ra parts <<< "$list"
    for p in "${parts[@]}"; do case $p in BIN=*) bin=${p#BIN=};; CLC_*=*) envs+=("$p");; *) args+=("$p");; esac; done
    rm -f $o.*
    env "${envs[@]}" ${4:+CLC_TRACE=1} python3 $R/scripts/gpu/rusage.py $D/$bin pack $T -o $o -q "${args[@]}"
}
# The end of a traced pack: when the stream, the index, the pack's return and the call to exit came (trace
# clock), then the process's wall, faults and peak RSS (rusage.py's last line) and the gap after `exit`.
tail_line() { # name trace-file
    local at=() k
    for k in "stream done" "index written" "pack returned" "exit"; do
        at+=("$(grep -E "^clc: trace: +[0-9.]+ s  $k" "$2" | tail -1 | awk '{print $3}')")
    done
    echo "-- end $1: stream ${at[0]:--} index ${at[1]:--} returned ${at[2]:--} exit ${at[3]:--} | wall faults rss: $(tail -1 "$2" | awk '{print $1, $4, $5}')"
}
# A small tree's end, with the GPU and without (the driver's own teardown, apart from a large heap's).
for v in ${SMALL-cpu=--cpu gpu=--gpu-device,NVIDIA,CLC_GPU_LEAD=0,CLC_GPU_SHARE=1/1}; do
    for i in 1 2 3; do
        IFS=, read -ra parts <<< "${v#*=}"; args=(); envs=()
        for p in "${parts[@]}"; do case $p in CLC_*=*) envs+=("$p");; *) args+=("$p");; esac; done
        rm -f /dev/shm/w.*
        env "${envs[@]}" CLC_TRACE=1 python3 $R/scripts/gpu/rusage.py $D/clc pack /tmp/warm -o /dev/shm/w -q "${args[@]}" > $OUT/small-${v%%=*}-$i.txt 2>&1
        tail_line small-${v%%=*}-$i $OUT/small-${v%%=*}-$i.txt
    done
done
rm -f /dev/shm/w.*
for i in $(seq $REPS); do
    for v in $VARIANTS; do name=${v%%=*}
        r=$(one $name "${v#*=}" /dev/shm/a 2>/dev/null | tail -1)
        echo "== $name $i: $r $(cat /dev/shm/a.* | wc -c) $(cat /dev/shm/a.* | md5sum | cut -c1-12)"
    done
done
for v in $VARIANTS; do name=${v%%=*}
    one $name "${v#*=}" /dev/shm/tr-$name 1 > $OUT/trace-$name.txt 2>&1
    echo "-- trace $name: $(grep -E 'frames shared|GPU opened|GPU waited|GPU_DEVICE = auto' $OUT/trace-$name.txt | sed 's/clc: trace: //' | tr '\n' ';')"
    grep -E "^clc: trace: (Read|Chunk|CpuEncode|Checksum|Verify|GpuBatch|GpuKernel|GpuCopy|Gather) " $OUT/trace-$name.txt | sed 's/clc: trace: /   /'
    tail_line $name $OUT/trace-$name.txt
    [ "$name" = cpu ] || rm -f /dev/shm/tr-$name.*
done
# Determinism and soundness of the shared pack with the largest share.
one lead1s6 "--gpu-device,NVIDIA,CLC_GPU_LEAD=1000000000,CLC_GPU_SHARE=6/16" /dev/shm/d1 >/dev/null 2>&1
one lead1s6 "--gpu-device,NVIDIA,CLC_GPU_LEAD=1000000000,CLC_GPU_SHARE=6/16" /dev/shm/d2 >/dev/null 2>&1
same=yes; for f in /dev/shm/d1.*; do cmp -s $f /dev/shm/d2.${f##*.} || same=no; done
echo "two shared packs identical: $same; verify: $($D/clc verify /dev/shm/d1.001 -q >/dev/null 2>&1 && echo ok || echo FAILED)"
rm -rf /dev/shm/d1.* /dev/shm/d2.* /dev/shm/tr-* /dev/shm/a.* /tmp/warm
echo "== table: medians of $REPS (wall s, CPU s = user + sys, archive bytes)"
python3 - "$OUT/bigshare.log" <<'PY'
import sys, re, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    m = re.match(r"== ([\w-]+) \d+: ([\d.]+) ([\d.]+) ([\d.]+) \d+ \d+ (\d+) ?(\w*)", l)
    if m:
        d[m[1]].append((float(m[2]), float(m[3]) + float(m[4]), int(m[5]), m[6]))
base = st.median(x[0] for x in d.get("cpu", [(1, 0, 0, "")]))
print("variant wall_s cpu_s bytes wall_x_cpu digests")
for k, v in d.items():
    w = st.median(x[0] for x in v)
    print(k, f"{w:.3f}", f"{st.median(x[1] for x in v):.2f}", int(st.median(x[2] for x in v)), f"{w / base:.3f}",
          ",".join(sorted({x[3] for x in v})))
PY
rm -rf $T
