#!/usr/bin/env bash
# Warm mount readiness: `clc mount` (one or more builds, each with its own archive) against squashfuse,
# interleaved, REPS times: the wall time of the mount command plus a first `ls` of the root (page cache
# warm: the binaries, archives and image are read once first), and the serving process's VmRSS then.
# Medians, min and max. Used for issue 20's "ready" goals (docs/BENCHMARKS.md 5.5).
#
#   scripts/bench-ready.sh IMAGE.sqfs NAME=CLC_BINARY:ARCHIVE.001 [NAME=…]      (as root; REPS=11)
set -euo pipefail
SQFS=$(realpath "${1:?usage: $0 IMAGE.sqfs NAME=CLC:ARCHIVE.001 ...}")
shift
REPS=${REPS:-11}
[ "$(id -u)" = 0 ] || { echo "run as root (mounts)" >&2; exit 2; }
MNT=$(mktemp -d /tmp/bench-ready.XXXXXX)
trap 'mountpoint -q "$MNT" && umount "$MNT"; rmdir "$MNT"' EXIT
declare -A BIN AR T RSS
NAMES=()
for v in "$@"; do
    n=${v%%=*}; spec=${v#*=}
    BIN[$n]=$(realpath "${spec%%:*}"); AR[$n]=$(realpath "${spec#*:}")
    NAMES+=("$n")
    cat "${BIN[$n]}" "$(dirname "${AR[$n]}")"/"$(basename "${AR[$n]}" .001)".* >/dev/null
done
cat "$SQFS" "$(command -v squashfuse)" >/dev/null
echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS"
for rep in $(seq "$REPS"); do
    for n in "${NAMES[@]}" sqfs; do
        t0=$(date +%s%N)
        if [ "$n" = sqfs ]; then squashfuse "$SQFS" "$MNT"; else "${BIN[$n]}" mount "${AR[$n]}" "$MNT"; fi
        ls "$MNT" >/dev/null
        t1=$(date +%s%N)
        if [ "$n" = sqfs ]; then pid=$(pgrep -n -f -- "squashfuse $SQFS $MNT"); else pid=$(pgrep -n -f -- "mount ${AR[$n]} $MNT"); fi
        T[$n]="${T[$n]:-} $(echo "($t1 - $t0) / 1000000" | bc -l | xargs printf '%.1f')"
        RSS[$n]="${RSS[$n]:-} $(awk '/VmRSS/ {print $2}' /proc/"$pid"/status)"
        umount "$MNT"
    done
done
stats() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {printf "%s (%s-%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
printf '\n| mount | ready: mount + ls, warm (ms): median (min-max) | idle RSS (KiB): median (min-max) |\n|---|---|---|\n'
for n in "${NAMES[@]}" sqfs; do
    printf '| %s | %s | %s |\n' "$n" "$(echo "${T[$n]}" | stats)" "$(echo "${RSS[$n]}" | stats)"
done
