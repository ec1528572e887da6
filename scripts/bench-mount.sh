#!/usr/bin/env bash
# Compares `clc mount` (one or more builds/option sets) with squashfuse over `mksquashfs DIR x.sqfs
# -comp lz4` on one directory.
#
#   scripts/bench-mount.sh DIR            (as root: drops the page cache between runs)
#
# Each metric on a fresh mount with a cold page cache (dropped after mounting, so the archive and the
# image are read from disk), REPS times, the filesystems interleaved; the table gives medians.
#   mount       wall time of the mount command plus a first `ls` of the root (the mount is ready), with
#               the page cache dropped first, and again warm (binary and archive cached)
#   idle RSS    VmRSS of the serving process after that `ls`
#   extract     `clc extract` of the archive (clc only; the goal compares the mount's read-all with it)
#   read-all    `tar cf - . | cat >/dev/null` over the whole tree; also the CPU time (user + system) the
#               serving process spent in it, which a loaded machine disturbs less than the wall time
#   stat        `find . -print0 | xargs -0 stat`,  `ls -lR`,  `du -s`
#   seq         the largest file: `dd bs=1M` (MB/s); fio sequential 1 MiB O_DIRECT reads, 1 job over the
#               file and 8 jobs over an eighth each (MB/s, so every read reaches the filesystem)
#   rand-4k     fio: 4 KiB random reads (O_DIRECT) over the 64 largest files, 4 jobs; IOPS
# Environment:
#   VARIANTS    clc builds/options to compare, `name=binary` separated by spaces; ARGS_<name> are the
#               mount flags of variant <name> (e.g. ARGS_nora="-o read_ahead_kb=128"). Default:
#               "clc=$CLC" with CLC_MOUNT_ARGS. squashfuse always runs.
#   CLC         default target/release/clc (built if missing); CLC_PACK_ARGS extra pack flags
#   REPS (3), METRICS (default "mount extract read stat seq rand"), FIO_RUNTIME (rand-4k seconds, 5)
set -euo pipefail

DIR=${1:?usage: $0 DIR}
DIR=$(realpath "$DIR")
CLC=${CLC:-target/release/clc}
RUNTIME=${FIO_RUNTIME:-5}
REPS=${REPS:-3}
METRICS=" ${METRICS:-mount extract read stat seq rand} "
[ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, mounts)" >&2; exit 2; }

for tool in mksquashfs:squashfs-tools squashfuse:squashfuse fio:fio; do
    command -v "${tool%%:*}" >/dev/null || apt-get install -y "${tool#*:}" >/dev/null
done
[ -x "$CLC" ] || cargo build --release
CLC=$(realpath "$CLC")
VARIANTS=${VARIANTS:-clc=$CLC}
declare -A BIN ARGS
NAMES=()
for v in $VARIANTS; do
    n=${v%%=*}
    BIN[$n]=$(realpath "${v#*=}")
    a=ARGS_$n
    ARGS[$n]=${!a:-${CLC_MOUNT_ARGS:-}}
    NAMES+=("$n")
done
KINDS=("${NAMES[@]}" sqfs)

WORK=$(mktemp -d /tmp/bench-mount.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
cleanup() {
    mountpoint -q "$MNT" && umount "$MNT" 2>/dev/null || true
    mountpoint -q "$MNT" && umount -l "$MNT" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }

echo "== packing $DIR ($(du -sh "$DIR" | cut -f1), $(find "$DIR" | wc -l) entries)"
t0=$(now); "$CLC" pack "$DIR" -o "$WORK/ar" -q --cpu ${CLC_PACK_ARGS:-}; t1=$(now)
echo "clc pack: $(secs "$t0" "$t1") s, $(du -cb "$WORK"/ar.* | tail -1 | cut -f1) bytes"
t0=$(now); mksquashfs "$DIR" "$WORK/x.sqfs" -comp lz4 -quiet -no-progress >/dev/null; t1=$(now)
echo "mksquashfs -comp lz4: $(secs "$t0" "$t1") s, $(stat -c %s "$WORK/x.sqfs") bytes"

# The 64 largest files, relative paths without ':' (fio's separator) or spaces; the largest one.
FILES=$(cd "$DIR" && find . -type f -printf '%s %P\n' | awk 'NF==2 && $2 !~ /:/' \
    | sort -rn | awk 'NR<=64 {print $2}' | paste -sd:)
BIG=${FILES%%:*}
BIGSIZE=$(stat -c %s "$DIR/$BIG")
echo "largest file: $BIG ($BIGSIZE bytes)"

do_mount() { # kind
    case $1 in
        sqfs) squashfuse "$WORK/x.sqfs" "$MNT" ;;
        *) "${BIN[$1]}" mount "$WORK/ar.001" "$MNT" ${ARGS[$1]} ;;
    esac
}
server_pid() { # kind
    case $1 in
        sqfs) pgrep -n -f -- "squashfuse $WORK/x.sqfs $MNT" ;;
        *) pgrep -n -f -- "mount $WORK/ar.001 $MNT" ;;
    esac
}
cpu_of() { # pid: its user + system CPU seconds so far
    awk -v t="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / t}' /proc/"$1"/stat
}
fresh() { # kind: a new mount, then a cold page cache
    mountpoint -q "$MNT" && umount "$MNT"
    do_mount "$1"
    cold
}

declare -A R # "kind,metric" -> space-separated values
add() { R[$2,$1]="${R[$2,$1]:-} $3"; echo "sample: $2 $1 $3"; } # metric kind value
timed() { # metric kind command...: runs the command in the mount, records its time
    local m=$1 k=$2; shift 2
    local t0 t1; t0=$(now); (cd "$MNT" && "$@"); t1=$(now)
    add "$m" "$k" "$(secs "$t0" "$t1")"
}
tar_all() { tar cf - . | cat >/dev/null; }
stat_all() { find . -print0 | xargs -0 stat >/dev/null; }
ls_all() { ls -lR >/dev/null; }
du_all() { du -s >/dev/null; }
fio_seq() { # jobs: aggregate MB/s of sequential 1 MiB O_DIRECT reads of the largest file
    # Each job its own 1 MiB-aligned part; a file smaller than a MiB per job is read whole by every job
    # (parts of 0 bytes and offsets past the end made fio read nothing: 0 MB/s, and a ratio of 0).
    local part=$((BIGSIZE / $1 / 1048576 * 1048576)) step
    step=$part
    [ "$part" -gt 0 ] || { part=$BIGSIZE; step=0; }
    (cd "$MNT" && fio --name=seq --filename="$BIG" --rw=read --bs=1M --direct=1 --ioengine=psync \
        --numjobs="$1" --size="$part" --offset_increment="$step" --readonly --group_reporting \
        --output-format=terse | awk -F';' '{printf "%.0f\n", $7 * 1024 / 1e6}')
}

for rep in $(seq "$REPS"); do
    for kind in "${KINDS[@]}"; do # interleaved, so background load hits all alike
        if [[ $METRICS == *" mount "* ]]; then
            mountpoint -q "$MNT" && umount "$MNT"
            cold
            t0=$(now); do_mount $kind; ls "$MNT" >/dev/null; t1=$(now)
            add mount_cold $kind "$(secs "$t0" "$t1")"
            umount "$MNT"
            t0=$(now); do_mount $kind; ls "$MNT" >/dev/null; t1=$(now)
            add mount_warm $kind "$(secs "$t0" "$t1")"
            add rss $kind "$(awk '/VmRSS/ {print $2}' /proc/"$(server_pid $kind)"/status)"
        fi
        if [[ $METRICS == *" extract "* && $kind != sqfs ]]; then
            rm -rf "$WORK/x"
            cold
            t0=$(now); "${BIN[$kind]}" extract "$WORK/ar.001" -o "$WORK/x" -q; sync; t1=$(now)
            add extract $kind "$(secs "$t0" "$t1")"
            rm -rf "$WORK/x"
        fi
        if [[ $METRICS == *" read "* ]]; then
            fresh $kind
            c0=$(cpu_of "$(server_pid $kind)")
            timed read $kind tar_all
            add readcpu $kind "$(echo "$(cpu_of "$(server_pid $kind)") - $c0" | bc -l)"
        fi
        if [[ $METRICS == *" stat "* ]]; then
            fresh $kind
            timed stat $kind stat_all
            fresh $kind
            timed lsR $kind ls_all
            fresh $kind
            timed du $kind du_all
        fi
        if [[ $METRICS == *" seq "* ]]; then
            fresh $kind
            t0=$(now); dd if="$MNT/$BIG" of=/dev/null bs=1M status=none; t1=$(now)
            add dd $kind "$(echo "$BIGSIZE / $(secs "$t0" "$t1") / 1000000" | bc)"
            fresh $kind
            add fio1 $kind "$(fio_seq 1)"
            fresh $kind
            add fio8 $kind "$(fio_seq 8)"
        fi
        if [[ $METRICS == *" rand "* ]]; then
            fresh $kind
            iops=$(cd "$MNT" && fio --name=rand --filename="$FILES" --rw=randread --bs=4k \
                --direct=1 --ioengine=psync --numjobs=4 --runtime="$RUNTIME" --time_based \
                --file_service_type=random --readonly --group_reporting --output-format=terse \
                | awk -F';' '{print $8}')
            add iops $kind "$iops"
        fi
        mountpoint -q "$MNT" && umount "$MNT"
    done
done

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
med() { echo "${R[$1,$2]:-}" | median; } # kind metric
ratio() { # a / b, or - when either is missing or b is 0
    if [ -n "$1" ] && [ -n "$2" ] && awk -v b="$2" 'BEGIN {exit !(b != 0)}'; then echo "scale=2; $1 / $2" | bc -l; else echo -; fi
}

echo
echo "== $DIR on $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); medians of $REPS"
for n in "${NAMES[@]}"; do echo "   $n: ${BIN[$n]} ${ARGS[$n]:-}"; done
printf '%-26s' metric
for k in "${KINDS[@]}"; do printf ' %12s' "$k"; done
for n in "${NAMES[@]}"; do printf ' %11s' "$n/sqfs"; done
echo
row() { # label metric format
    local vals=() k v
    for k in "${KINDS[@]}"; do vals+=("$(med "$k" "$2")"); done
    [ -n "${vals[0]}" ] || return 0
    printf '%-26s' "$1"
    for v in "${vals[@]}"; do [ -n "$v" ] && printf " %12.$3f" "$v" || printf ' %12s' -; done
    for n in "${NAMES[@]}"; do printf ' %11s' "$(ratio "$(med "$n" "$2")" "$(med sqfs "$2")")"; done
    echo
}
row "mount+ls, cold (s)" mount_cold 4
row "mount+ls, warm (s)" mount_warm 4
row "idle RSS (KiB)" rss 0
row "clc extract, cold (s)" extract 3
row "read-all tar, cold (s)" read 3
row "  server CPU in it (s)" readcpu 2
row "find|xargs stat, cold (s)" stat 3
row "ls -lR, cold (s)" lsR 3
row "du -s, cold (s)" du 3
row "dd bs=1M largest (MB/s)" dd 0
row "fio seq 1 job (MB/s)" fio1 0
row "fio seq 8 jobs (MB/s)" fio8 0
row "random 4 KiB (IOPS)" iops 0
echo "(times: lower is better; MB/s and IOPS: higher; clc pack flags: ${CLC_PACK_ARGS:-none})"
