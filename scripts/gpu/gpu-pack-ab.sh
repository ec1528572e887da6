#!/bin/bash
# Two or more clc builds' packs with the GPU, side by side on the lent machine: for each round and tree, each
# build in turn (the order rotating round by round) packs with every frame on the GPU (`CLC_GPU_LEAD=0
# CLC_GPU_SHARE=1/1 --gpu-device NVIDIA`), with the named GPU's share (`--gpu-device NVIDIA`) and with `--cpu`,
# every archive into /dev/shm; wall, user + sys and minor faults of each (rusage.py), medians. Then one traced
# all-GPU pack per build (CLC_TRACE=1: the Verify stage is the CPU's check of every GPU frame), whether the
# builds' archives are identical mode by mode, and whether the all-GPU archive extracts byte-exact.
#
#   scripts/gpu/gpu-pack-ab.sh DIR RDOC.tar.xz BUILD…     DIR holds the builds, rusage.py; ROUNDS (5), OUT
set -uo pipefail
D=$(realpath "${1:?usage: $0 DIR RDOC.tar.xz BUILD...}")
RDOC=$(realpath "${2:?usage: $0 DIR RDOC.tar.xz BUILD...}")
shift 2
BUILDS=("$@")
OUT=${OUT:-/tmp/gab-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-pack-ab.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache SOURCE_DATE_EPOCH=1700000000
ROUNDS=${ROUNDS:-5}
W=/dev/shm/gab; rm -rf $W; mkdir -p $W/t $W/mixed $W/o
trap 'rm -rf $W' EXIT
xz -dc "$RDOC" | tar xf - -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
declare -A R
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
mode_args() { case $1 in all | named) echo "--gpu-device NVIDIA";; cpu) echo "--cpu";; esac; }
mode_env() { case $1 in all) echo "CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1";; *) echo "CLC_NONE=0";; esac; }
echo "== $(nproc) cores; $(nvidia-smi -L 2>/dev/null | head -1); builds: ${BUILDS[*]}"
mkdir -p $W/one && cp -a $W/t/rdoc/*/process $W/one/ 2>/dev/null
for b in "${BUILDS[@]}"; do "$D/$b" pack $W/one -o $W/o/k --gpu-device NVIDIA -q; rm -f $W/o/k.*; done   # kernel caches
for tree in $W/t/rdoc $W/mixed; do
    t=$(basename $tree); tar cf - -C $tree . >/dev/null
    echo "tree $t: $(du -sb --apparent-size $tree | cut -f1) bytes"
    for r in $(seq "$ROUNDS"); do
        k=$(( (r - 1) % ${#BUILDS[@]} ))
        for m in all named cpu; do
            for b in "${BUILDS[@]:$k}" "${BUILDS[@]:0:$k}"; do
                rm -f $W/o/$b-$m.*
                # shellcheck disable=SC2046
                s=$(env $(mode_env $m) python3 "$D/rusage.py" "$D/$b" pack $tree -o $W/o/$b-$m $(mode_args $m) -q)
                echo "   sample $t $m $b: $s"
                read -r wall user sys flt _ <<< "$s"
                R[$t,$m,$b,wall]+=" $wall"; R[$t,$m,$b,cpu]+=" $(awk -v u="$user" -v s="$sys" 'BEGIN {print u + s}')"
                R[$t,$m,$b,flt]+=" $flt"
            done
        done
    done
    for m in all named cpu; do
        for b in "${BUILDS[@]}"; do
            cmp <(cat $W/o/"${BUILDS[0]}"-$m.*) <(cat $W/o/$b-$m.*) >/dev/null || echo "$t $m: $b's archive differs from ${BUILDS[0]}'s"
            echo "$t $m $b: $(cat $W/o/$b-$m.* | wc -c) bytes"
        done
    done
    for b in "${BUILDS[@]}"; do
        rm -rf $W/x; "$D/$b" extract $W/o/$b-all.001 -o $W/x --cpu -q && diff -r --no-dereference $tree $W/x >/dev/null \
            && echo "$t: $b's all-GPU archive extracts byte-exact" || echo "$t: $b's all-GPU archive FAILS to extract byte-exact"
        rm -rf $W/x $W/o/x.*
        echo "$t: $b, traced all-GPU pack:"
        CLC_TRACE=1 CLC_GPU_LEAD=0 CLC_GPU_SHARE=1/1 "$D/$b" pack $tree -o $W/o/x --gpu-device NVIDIA 2>&1 \
            | grep "trace: [A-Z]\|GPU open\|^time\|^frames" | head -22
    done
    rm -f $W/o/*
done
echo
echo "== medians of $ROUNDS: wall s / CPU s (user + sys) / minor faults"
printf '| tree | mode |'; for b in "${BUILDS[@]}"; do printf ' %s |' "$b"; done; printf ' wall, CPU × %s |\n' "${BUILDS[0]}"
printf '|---|---|'; for _ in "${BUILDS[@]}"; do printf -- '---|'; done; echo '---|'
for t in rdoc mixed; do
    for m in all named cpu; do
        printf '| %s | %s |' $t $m
        for b in "${BUILDS[@]}"; do
            printf ' %s / %s / %s |' "$(echo "${R[$t,$m,$b,wall]}" | median)" "$(echo "${R[$t,$m,$b,cpu]}" | median)" "$(echo "${R[$t,$m,$b,flt]}" | median)"
        done
        b0=${BUILDS[0]}; bl=${BUILDS[-1]}
        printf ' %s, %s |\n' \
            "$(awk -v a="$(echo "${R[$t,$m,$bl,wall]}" | median)" -v b="$(echo "${R[$t,$m,$b0,wall]}" | median)" 'BEGIN {printf "%.3f", a / b}')" \
            "$(awk -v a="$(echo "${R[$t,$m,$bl,cpu]}" | median)" -v b="$(echo "${R[$t,$m,$b0,cpu]}" | median)" 'BEGIN {printf "%.3f", a / b}')"
    done
done
