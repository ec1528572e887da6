#!/bin/bash
# Issue 17's "never slower by default" on the lent machine: `clc pack` with the default device choice against
# `clc pack --cpu`, in ABBA order (--cpu, default, default, --cpu) so that neither always runs first after the
# other's output was written, every archive into /dev/shm (no disk write-back timed), on the Rust-doc tree and
# on a mixed tree (the machine's /usr/share/doc, python3 library and /usr/include, copied), and on a small tree
# (one directory of the Rust docs, about 1 MB: issue 17's start-up goal). Beside them, once
# per round: `--gpu-device NVIDIA` (one named GPU) and `tar | zstd -3 -T0`. Sizes, and which device the
# default picked (CLC_TRACE's device lines).
#
#   scripts/gpu/default-ab.sh DIR RDOC.tar.xz       DIR holds clc, timed.py and bin/zstd; ROUNDS (7), OUT
set -uo pipefail
D=$(realpath "${1:?usage: $0 DIR RDOC.tar.xz}")
RDOC=$(realpath "${2:?usage: $0 DIR RDOC.tar.xz}")
OUT=${OUT:-/tmp/dab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/default-ab.log") 2>&1
export PATH=$D/bin:$PATH CLC_CACHE_DIR=/tmp/clc-cache
CLC=$D/clc; ROUNDS=${ROUNDS:-7}
W=/dev/shm/dab; rm -rf $W; mkdir -p $W/t $W/mixed $W/o
trap 'rm -rf $W' EXIT
xz -dc "$RDOC" | tar xf - -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
sec() { python3 "$D/timed.py" "$@" | cut -d' ' -f1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
declare -A R
add() { R[$1]="${R[$1]:-} $2"; echo "   sample $1: $2"; }
echo "== $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -2 | tr '\n' ' ')"
"$CLC" info --devices 2>&1 | head -12
mkdir -p $W/one && cp -a $W/t/rdoc/*/process $W/one/ 2>/dev/null
"$CLC" pack $W/one -o $W/o/k --gpu-device NVIDIA -q; rm -f $W/o/k.*   # the kernel cache, once
for tree in $W/t/rdoc $W/mixed $W/one; do
    n=$(basename $tree); tar cf - -C $tree . >/dev/null
    echo "tree $n: $(du -sb --apparent-size $tree | cut -f1) bytes, $(find $tree -type f | wc -l) files"
    for r in $(seq "$ROUNDS"); do
        for m in cpu default default cpu; do
            rm -f $W/o/$m.*
            if [ $m = cpu ]; then add "$n,cpu" "$(sec "$CLC" pack $tree -o $W/o/$m --cpu -q)"
            else add "$n,default" "$(sec "$CLC" pack $tree -o $W/o/$m -q)"; fi
        done
        rm -f $W/o/g.*; add "$n,gpu" "$(sec "$CLC" pack $tree -o $W/o/g --gpu-device NVIDIA -q)"
        add "$n,zstd" "$(sec bash -c "tar cf - -C $tree . | zstd -3 -T0 -q > $W/o/t.zst")"
    done
    for m in cpu default g; do echo "$n size $m: $(cat $W/o/$m.* | wc -c)"; done
    echo "$n size zstd: $(stat -c %s $W/o/t.zst)"
    cmp <(cat $W/o/cpu.*) <(cat $W/o/default.*) >/dev/null && echo "$n: default archive identical to --cpu's" \
        || echo "$n: default archive differs from --cpu's"
    rm -f $W/o/x.*; CLC_TRACE=1 "$CLC" pack $tree -o $W/o/x 2>&1 | grep -i "device\|gpu\|^time\|trace: [A-Z]" | head -14
    rm -f $W/o/*
done
echo
echo "== pack into /dev/shm, medians of $((2 * ROUNDS)) (cpu, default; ABBA) and $ROUNDS (one GPU, zstd), s"
echo "| tree | --cpu | default | default / --cpu | --gpu-device NVIDIA | tar \\| zstd -3 -T0 |"
echo "|---|---|---|---|---|---|"
for n in rdoc mixed one; do
    c=$(echo "${R[$n,cpu]}" | median); d=$(echo "${R[$n,default]}" | median)
    echo "| $n | $c | $d | $(awk -v c="$c" -v d="$d" 'BEGIN {printf "%.3f", d / c}') | $(echo "${R[$n,gpu]}" | median) | $(echo "${R[$n,zstd]}" | median) |"
done
