#!/bin/bash
# Issue 20 on the lent machine: `clc mount` (several builds) against squashfuse over `mksquashfs -comp lz4`
# in the same run, on two pinned CPUs (`taskset`; nobody else uses them, unlike the shared 2-core machine)
# and on all cores:
#   ready    warm mount + first `ls` (scripts/bench-ready.c's timer: the mount command, then `ls`), pinned
#            and unpinned, REPS_READY interleaved
#   readall  `tar cf - . | cat` of the Rust-doc tree and of four 100 MiB files (scripts/gen-large.py:
#            text, log, random, mixed), page cache dropped after mounting, server and reader on the same
#            two CPUs; also the server's CPU time and page faults (minflt, the whole mount's life);
#            REPS interleaved
#   extract  all cores: `clc extract` of the doc archive into tmpfs against the read-all (issue 20: within 1.2 ×)
#
#   scripts/gpu/mount-2core.sh DIR RDOC.tar.xz
# DIR holds the clc builds (BUILDS, default "clc-main clc"; a build named NAME@ENV=VALUE runs clc NAME with
# that variable set), squashfuse and mksquashfs with their libraries in DIR/lib, gen-large.py, and
# bench-ready (scripts/bench-ready.c built with `gcc -O2 -static`). Env: READY_BUILDS (the builds timed
# for ready, default BUILDS), CPUS (2,3), REPS (5), REPS_READY (31; 0: no ready), OUT (logs; the tables
# come last).
set -uo pipefail
D=$(realpath "${1:?usage: $0 DIR RDOC.tar.xz}")
RDOC=$(realpath "${2:?usage: $0 DIR RDOC.tar.xz}")
OUT=${OUT:-/tmp/m2-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
BUILDS=${BUILDS:-clc-main clc}
READY_BUILDS=${READY_BUILDS:-$BUILDS}
CPUS=${CPUS:-2,3}
REPS=${REPS:-5}
REPS_READY=${REPS_READY:-31}
W=/dev/shm/m2
MNT=$W/mnt
LIB="env LD_LIBRARY_PATH=$D/lib"
[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse"; exit 0; }
cleanup() { mountpoint -q "$MNT" && umount "$MNT"; rm -rf "$W"; }
trap cleanup EXIT
cleanup
mkdir -p "$MNT" "$W/large"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
declare -A R
add() { R[$1]="${R[$1]:-} $2"; echo "   sample $1: $2"; }
bin() { echo "$D/${1%%@*}"; }
envof() { case $1 in *@*) echo "${1#*@}" ;; *) echo "CLC_NONE=0" ;; esac; }

T0=$(now)
echo "== $(nproc) cores, $(uname -r); pinned to CPUs $CPUS; builds: $BUILDS"
xz -dc "$RDOC" | tar xf - -C "$W" || { echo "FAIL: unpacking"; exit 1; }
gens=()
for k in text log random mixed; do python3 "$D/gen-large.py" "$W/large/$k.bin" "${LARGE_MIB:-100}" $k & gens+=($!); done
wait "${gens[@]}" # not a bare `wait`: that would also wait for the `tee` above
echo "trees ready at $(secs "$T0" "$(now)") s: doc $(du -sb "$W/rdoc" | cut -f1) bytes, large $(du -sb "$W/large" | cut -f1)"
C=$(bin "${BUILDS##* }")
for t in rdoc large; do
    "$C" pack "$W/$t" -o "$W/$t" --cpu -q || { echo "FAIL: pack $t"; exit 1; }
    $LIB "$D/mksquashfs" "$W/$t" "$W/$t.sqfs" -comp lz4 -quiet -no-progress >/dev/null || { echo "FAIL: mksquashfs"; exit 1; }
    echo "$t: clc $(stat -c %s "$W/$t.001") bytes, squashfs $(stat -c %s "$W/$t.sqfs") bytes"
done
echo "packed at $(secs "$T0" "$(now)") s"

# Ready: warm (binaries, archive and image read once).
cat "$W/rdoc.001" "$W/rdoc.sqfs" "$D"/clc* "$D/squashfuse" "$D"/lib/* >/dev/null
args=()
for b in $READY_BUILDS; do args+=("$b=env $(envof "$b") $(bin "$b") mount $W/rdoc.001"); done
args+=("sqfs=env LD_LIBRARY_PATH=$D/lib $D/squashfuse $W/rdoc.sqfs")
if [ "$REPS_READY" != 0 ]; then
    echo "== ready, pinned to $CPUS, REPS=$REPS_READY"
    REPS=$REPS_READY taskset -c "$CPUS" "$D/bench-ready" "$MNT" "${args[@]}" | tee "$OUT/ready-pinned.md"
    echo "== ready, all cores, REPS=$REPS_READY"
    REPS=$REPS_READY "$D/bench-ready" "$MNT" "${args[@]}" | tee "$OUT/ready-all.md"
    echo "ready done at $(secs "$T0" "$(now)") s"
fi

# Read-all on two pinned CPUs.
for rep in $(seq "$REPS"); do
    for t in rdoc large; do
        for b in $BUILDS sqfs; do
            if [ $b = sqfs ]; then
                taskset -c "$CPUS" $LIB "$D/squashfuse" "$W/$t.sqfs" "$MNT"; pid=$(pgrep -n -f "squashfuse $W/$t.sqfs")
            else
                taskset -c "$CPUS" env "$(envof "$b")" "$(bin "$b")" mount "$W/$t.001" "$MNT" --cpu; pid=$(pgrep -n -f "mount $W/$t.001")
            fi
            cold
            t0=$(now); (cd "$MNT" && timeout 60 taskset -c "$CPUS" tar cf - . | taskset -c "$CPUS" cat >/dev/null); t1=$(now)
            add "$t,$b" "$(secs "$t0" "$t1")"
            add "cpu,$t,$b" "$(awk '{printf "%.2f", ($14 + $15) / 100}' /proc/"$pid"/stat)"
            add "flt,$t,$b" "$(awk '{print $10}' /proc/"$pid"/stat)"
            umount "$MNT"
        done
    done
done
echo "read-all done at $(secs "$T0" "$(now)") s"

# All cores: extract into tmpfs against read-all (issue 20's "within 1.2 × of clc extract").
for rep in $(seq "$REPS"); do
    for b in $BUILDS; do
        rm -rf "$W/x"; cold
        t0=$(now); env "$(envof "$b")" "$(bin "$b")" extract "$W/rdoc.001" -o "$W/x" --cpu -q; t1=$(now)
        add "extract,$b" "$(secs "$t0" "$t1")"
        rm -rf "$W/x"
        env "$(envof "$b")" "$(bin "$b")" mount "$W/rdoc.001" "$MNT" --cpu; cold
        t0=$(now); (cd "$MNT" && timeout 60 tar cf - . | cat >/dev/null); t1=$(now)
        add "all,$b" "$(secs "$t0" "$t1")"
        umount "$MNT"
    done
done
echo "whole script $(secs "$T0" "$(now)") s"
echo
echo "== read-all on CPUs $CPUS, medians of $REPS (s; server CPU s; server page faults); page cache dropped after mounting"
printf '| tree |'; for b in $BUILDS sqfs; do printf ' %s |' "$b"; done; for b in $BUILDS; do printf ' %s: sqfs / it |' "$b"; done; echo
for t in rdoc large; do
    s=$(echo "${R[$t,sqfs]}" | median)
    printf '| %s |' $t
    for b in $BUILDS sqfs; do printf ' %s (%s; %s) |' "$(echo "${R[$t,$b]}" | median)" "$(echo "${R[cpu,$t,$b]}" | median)" "$(echo "${R[flt,$t,$b]}" | median)"; done
    for b in $BUILDS; do printf ' %s |' "$(awk -v s="$s" -v c="$(echo "${R[$t,$b]}" | median)" 'BEGIN {printf "%.2f", s / c}')"; done
    echo
done
echo "== all $(nproc) cores, medians of $REPS: extract into tmpfs / read-all of the doc tree (s)"
for b in $BUILDS; do
    e=$(echo "${R[extract,$b]}" | median); a=$(echo "${R[all,$b]}" | median)
    echo "$b: extract $e, read-all $a, read-all / extract $(awk -v a="$a" -v e="$e" 'BEGIN {printf "%.2f", a / e}')"
done
if [ "$REPS_READY" != 0 ]; then
    echo "== ready (ms), pinned to $CPUS"; cat "$OUT/ready-pinned.md"
    echo "== ready (ms), all cores"; cat "$OUT/ready-all.md"
fi
