#!/usr/bin/env bash
# Metadata walks through `clc mount` (one or more builds or settings) against squashfuse, same run
# (issue 20: `find`, `ls -lR`, `du -s`, `find | xargs stat` no slower than squashfuse). Each walk on a
# fresh mount, the archive and the image in the page cache, REPS times, the mounts interleaved;
# the table gives medians (seconds) and each clc variant's ratio to squashfuse.
#
#   scripts/bench-walks.sh ARCHIVE.001 IMAGE.sqfs [SUBSET...]     (as root)
#
# find     `find . | wc -l` over the whole tree
# lsR      `ls -lR SUBSET >/dev/null`
# du       `du -s SUBSET`
# xstat    `find SUBSET -print0 | xargs -0 stat >/dev/null`
# SUBSET: top-level names to walk for the three walks that stat (default: the whole tree, `.`).
# Environment: VARIANTS ("name=binary[:ENV=VALUE][@ARCHIVE.001]" separated by spaces, the archive
# ARCHIVE.001 unless one is named: e.g. two format versions of one tree; default "clc=$CLC"),
# CLC (default target/release/clc), REPS (3), WALKS (default "find lsR du xstat").
set -euo pipefail

AR=$(realpath "${1:?usage: $0 ARCHIVE.001 IMAGE.sqfs [SUBSET...]}")
IMG=$(realpath "${2:?usage: $0 ARCHIVE.001 IMAGE.sqfs [SUBSET...]}")
shift 2
SUBSET=("${@:-.}")
CLC=${CLC:-target/release/clc}
REPS=${REPS:-3}
WALKS=${WALKS:-find lsR du xstat}
VARIANTS=${VARIANTS:-clc=$CLC}
[ "$(id -u)" = 0 ] || { echo "run as root (mounts)" >&2; exit 2; }
MNT=$(mktemp -d /tmp/bench-walks.XXXXXX)
trap 'mountpoint -q "$MNT" && umount "$MNT"; rmdir "$MNT"' EXIT

declare -A BIN ENVS ARS R
NAMES=()
for v in $VARIANTS; do
    n=${v%%=*}
    rest=${v#*=}
    ARS[$n]=$AR
    if [ "$rest" != "${rest#*@}" ]; then
        ARS[$n]=$(realpath "${rest#*@}")
        rest=${rest%%@*}
    fi
    BIN[$n]=$(realpath "${rest%%:*}")
    ENVS[$n]=$([ "$rest" != "${rest#*:}" ] && echo "${rest#*:}" || true)
    NAMES+=("$n")
done
KINDS=("${NAMES[@]}" sqfs)

do_mount() { # kind
    if [ "$1" = sqfs ]; then squashfuse "$IMG" "$MNT"; else env ${ENVS[$1]} "${BIN[$1]}" mount "${ARS[$1]}" "$MNT"; fi
    ls "$MNT" >/dev/null
}
walk() { # name
    case $1 in
        find) find . | wc -l >/dev/null ;;
        lsR) ls -lR "${SUBSET[@]}" >/dev/null ;;
        du) du -s "${SUBSET[@]}" >/dev/null ;;
        xstat) find "${SUBSET[@]}" -print0 | xargs -0 stat >/dev/null ;;
    esac
}
now() { date +%s%N; }
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cat "$AR" "$IMG" "${ARS[@]}" >/dev/null
echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); subset: ${SUBSET[*]}"
for rep in $(seq "$REPS"); do
    for w in $WALKS; do
        for k in "${KINDS[@]}"; do
            do_mount "$k"
            t0=$(now); (cd "$MNT" && walk "$w"); t1=$(now)
            s=$(echo "($t1 - $t0) / 1000000000" | bc -l | xargs printf '%.3f')
            R[$k,$w]="${R[$k,$w]:-} $s"
            echo "sample: $k $w $s"
            umount "$MNT"
        done
    done
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n| walk (median of %s, s) |' "$REPS"
for k in "${KINDS[@]}"; do printf ' %s |' "$k"; done
for n in "${NAMES[@]}"; do printf ' %s / sqfs |' "$n"; done
printf '\n|---|'
for _ in "${KINDS[@]}" "${NAMES[@]}"; do printf -- '---|'; done
echo
for w in $WALKS; do
    printf '| %s |' "$w"
    s=$(echo "${R[sqfs,$w]}" | med)
    for k in "${KINDS[@]}"; do printf ' %s |' "$(echo "${R[$k,$w]}" | med)"; done
    for n in "${NAMES[@]}"; do printf ' %.2f |' "$(echo "$(echo "${R[$n,$w]}" | med) / $s" | bc -l)"; done
    echo
done
