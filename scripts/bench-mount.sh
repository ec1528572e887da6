#!/usr/bin/env bash
# Compares `clc mount` with squashfuse over `mksquashfs DIR x.sqfs -comp lz4` on one directory.
#
#   scripts/bench-mount.sh DIR            (as root: drops the page cache between runs)
#
# Measures, for each filesystem, on a fresh mount with a cold page cache each time:
#   mount       wall time of the mount command (both return once the mount is live), with the page
#               cache dropped first (binary and archive read from disk) and again warm
#   read-all    `tar cf - . | cat >/dev/null` over the whole tree; then a second pass (page cache warm)
#   stat-all    `find . -type f -exec stat -c %s {} +`
#   rand-4k     fio: 4 KiB random reads (O_DIRECT, so every read reaches the filesystem) over the 64
#               largest files, 4 jobs; IOPS
#   peak RSS    VmHWM of the serving process over all of the above
# REPS times, clc and squashfuse interleaved; keeps the best of each, and prints a table with
# clc/squashfuse ratios (times: lower is better for clc; IOPS: higher is better).
# Environment: CLC (default target/release/clc, built if missing), CLC_PACK_ARGS (extra pack flags,
# e.g. "--codec lz4"), CLC_MOUNT_ARGS (extra mount flags, e.g. "--cache-size 32M"), REPS (3),
# FIO_RUNTIME (seconds per fio run, 5).
set -euo pipefail

DIR=${1:?usage: $0 DIR}
DIR=$(realpath "$DIR")
CLC=${CLC:-target/release/clc}
RUNTIME=${FIO_RUNTIME:-5}
REPS=${REPS:-3}
[ "$(id -u)" = 0 ] || { echo "run as root (drop_caches, mounts)" >&2; exit 2; }

for tool in mksquashfs:squashfs-tools squashfuse:squashfuse fio:fio; do
    command -v "${tool%%:*}" >/dev/null || apt-get install -y "${tool#*:}" >/dev/null
done
[ -x "$CLC" ] || cargo build --release
CLC=$(realpath "$CLC")

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

echo "== packing $DIR ($(du -sh "$DIR" | cut -f1), $(find "$DIR" -type f | wc -l) files)"
t0=$(now); "$CLC" pack "$DIR" -o "$WORK/ar" -q --cpu ${CLC_PACK_ARGS:-}; t1=$(now)
echo "clc pack: $(secs "$t0" "$t1") s, $(du -cb "$WORK"/ar.* | tail -1 | cut -f1) bytes"
t0=$(now); mksquashfs "$DIR" "$WORK/x.sqfs" -comp lz4 -quiet -no-progress >/dev/null; t1=$(now)
echo "mksquashfs -comp lz4: $(secs "$t0" "$t1") s, $(stat -c %s "$WORK/x.sqfs") bytes"

# The 64 largest files, relative paths without ':' (fio's separator) or spaces.
FILES=$(cd "$DIR" && find . -type f -printf '%s %P\n' | awk 'NF==2 && $2 !~ /:/' \
    | sort -rn | awk 'NR<=64 {print $2}' | paste -sd:)

do_mount() { # kind
    case $1 in
        clc) "$CLC" mount "$WORK/ar.001" "$MNT" ${CLC_MOUNT_ARGS:-} ;;
        sqfs) squashfuse "$WORK/x.sqfs" "$MNT" ;;
    esac
}
server_pid() { # kind
    case $1 in
        clc) pgrep -n -f -- "mount $WORK/ar.001 $MNT" ;;
        sqfs) pgrep -n -f -- "squashfuse $WORK/x.sqfs $MNT" ;;
    esac
}
fresh() { # kind: a new mount with cold caches
    mountpoint -q "$MNT" && umount "$MNT"
    cold
    do_mount "$1"
}

hwm() { # pid: peak RSS so far, KiB
    awk '/VmHWM/ {print $2}' /proc/"$1"/status
}
max() { [ "$1" -gt "$2" ] && echo "$1" || echo "$2"; }

best() { # metric kind value: keep the smallest time (or the largest for iops, rss)
    local k=$2,$1 v=$3
    case $1 in
        iops|rss) [ -z "${R[$k]:-}" ] || [ "$(echo "$v > ${R[$k]}" | bc)" = 1 ] && R[$k]=$v ;;
        *) [ -z "${R[$k]:-}" ] || [ "$(echo "$v < ${R[$k]}" | bc)" = 1 ] && R[$k]=$v ;;
    esac
    return 0
}
timed() { # metric kind command...: runs the command in the mount, keeps its best time
    local m=$1 k=$2; shift 2
    local t0 t1; t0=$(now); (cd "$MNT" && "$@"); t1=$(now)
    best "$m" "$k" "$(secs "$t0" "$t1")"
}
tar_all() { tar cf - . | cat >/dev/null; }
stat_all() { find . -type f -exec stat -c %s {} + >/dev/null; }

declare -A R
for rep in $(seq "$REPS"); do
    for kind in clc sqfs; do # interleaved, so background load hits both alike
        mountpoint -q "$MNT" && umount "$MNT"
        cold
        t0=$(now); do_mount $kind; t1=$(now)
        best mount_cold $kind "$(secs "$t0" "$t1")"
        rss=$(hwm "$(server_pid $kind)")
        umount "$MNT"
        t0=$(now); do_mount $kind; t1=$(now)
        best mount_warm $kind "$(secs "$t0" "$t1")"

        fresh $kind; pid=$(server_pid $kind)
        timed read $kind tar_all
        rss=$(max "$rss" "$(hwm "$pid")")
        timed read_warm $kind tar_all

        fresh $kind; pid=$(server_pid $kind)
        timed stat $kind stat_all
        rss=$(max "$rss" "$(hwm "$pid")")

        fresh $kind; pid=$(server_pid $kind)
        iops=$(cd "$MNT" && fio --name=rand --filename="$FILES" --rw=randread --bs=4k \
            --direct=1 --ioengine=psync --numjobs=4 --runtime="$RUNTIME" --time_based \
            --file_service_type=random --readonly --group_reporting --output-format=terse \
            | awk -F';' '{print $8}')
        best iops $kind "$iops"
        best rss $kind "$(max "$rss" "$(hwm "$pid")")"
        umount "$MNT"
    done
done

ratio() { echo "scale=2; $1 / $2" | bc -l; }
echo
echo "== $DIR on $(nproc) cores, $(uname -r); clc $("$CLC" --version | cut -d' ' -f2)"
printf '%-30s %14s %14s %10s\n' metric clc squashfuse clc/sqfs
row() { printf '%-30s %14s %14s %10s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
row "mount, cold caches (s)" "$(printf %.4f "${R[clc,mount_cold]}")" "$(printf %.4f "${R[sqfs,mount_cold]}")"
row "mount, warm (s)" "$(printf %.4f "${R[clc,mount_warm]}")" "$(printf %.4f "${R[sqfs,mount_warm]}")"
row "read-all, cold (s)" "$(printf %.3f "${R[clc,read]}")" "$(printf %.3f "${R[sqfs,read]}")"
row "read-all, page cache warm (s)" "$(printf %.3f "${R[clc,read_warm]}")" "$(printf %.3f "${R[sqfs,read_warm]}")"
row "find -exec stat, cold (s)" "$(printf %.3f "${R[clc,stat]}")" "$(printf %.3f "${R[sqfs,stat]}")"
row "random 4 KiB reads (IOPS)" "${R[clc,iops]}" "${R[sqfs,iops]}"
row "peak RSS (KiB)" "${R[clc,rss]}" "${R[sqfs,rss]}"
echo "(best of $REPS interleaved runs; clc pack flags: ${CLC_PACK_ARGS:-none}; mount flags: ${CLC_MOUNT_ARGS:-none})"
