#!/usr/bin/env bash
# Mount of an archive of many entries against squashfuse, same run (issue 20's "1 million entries"
# goal). Generates the tree with the seeded scripts/gen-many.py (on tmpfs), packs it with clc and
# `mksquashfs -comp lz4`, then, REPS times and interleaved, for each filesystem:
#   ready     wall time of the mount command plus a first `ls` of the root, page cache warm (ms)
#   rss       VmRSS of the serving process right after that `ls` (KiB), and after the walks below
#   read1     `cat` of one file right after that (ms): for clc's paged mount (format version 5) this is
#             when the archive's index is first read whole
#   rss_read  VmRSS after that read (KiB)
#   find      `find . | wc -l` (s), page cache warm (archive cached, mount fresh)
#   lsR       `ls -lR >/dev/null` (s), on the same mount after `find`
#   trace     clc only: the `CLC_TRACE=1` steps of one more mount (where the ready time goes)
#
#   scripts/bench-million.sh [ENTRIES]        (as root; default 1000000; REPS=3)
# Environment: CLC (default target/release/clc), WORK (default /dev/shm/bench-million: the tree, the
# archive and the image stay there between runs; delete it when done), REPS.
set -euo pipefail

N=${1:-1000000}
CLC=$(realpath "${CLC:-target/release/clc}")
REPS=${REPS:-3}
WORK=${WORK:-/dev/shm/bench-million}
HERE=$(dirname "$(realpath "$0")")
[ "$(id -u)" = 0 ] || { echo "run as root (mounts)" >&2; exit 2; }
mkdir -p "$WORK"
MNT=$WORK/mnt
mkdir -p "$MNT"
trap 'mountpoint -q "$MNT" && umount "$MNT" 2>/dev/null || true' EXIT

if [ ! -e "$WORK/tree.done" ] || [ "$(cat "$WORK/tree.done")" != "$N" ]; then
    rm -rf "$WORK/tree" "$WORK"/ar.* "$WORK/x.sqfs"
    python3 "$HERE/gen-many.py" "$WORK/tree" "$N"
    echo "$N" >"$WORK/tree.done"
fi
[ -e "$WORK/ar.001" ] || "$CLC" pack "$WORK/tree" -o "$WORK/ar" -q --cpu
[ -e "$WORK/x.sqfs" ] || mksquashfs "$WORK/tree" "$WORK/x.sqfs" -comp lz4 -quiet -no-progress >/dev/null
echo "== $(find "$WORK/tree" | wc -l) entries; clc archive $(du -cb "$WORK"/ar.0* | tail -1 | cut -f1) bytes," \
    "squashfs $(stat -c %s "$WORK/x.sqfs") bytes; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s%N; }
do_mount() { # kind
    case $1 in
        sqfs) squashfuse "$WORK/x.sqfs" "$MNT" ;;
        clc) "$CLC" mount "$WORK/ar.001" "$MNT" ;;
    esac
}
server_pid() { # kind
    case $1 in
        sqfs) pgrep -n -f -- "squashfuse $WORK/x.sqfs $MNT" ;;
        clc) pgrep -n -f -- "mount $WORK/ar.001 $MNT" ;;
    esac
}
rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }

declare -A R
add() { R[$2,$1]="${R[$2,$1]:-} $3"; echo "sample: $2 $1 $3"; } # metric kind value
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cat "$WORK"/ar.* "$WORK/x.sqfs" >/dev/null # warm
ONE=$(cd "$WORK/tree" && find . -type f -size +0 -print -quit)
for rep in $(seq "$REPS"); do
    for kind in clc sqfs; do
        mountpoint -q "$MNT" && umount "$MNT"
        t0=$(now); do_mount $kind; ls "$MNT" >/dev/null; t1=$(now)
        add ready $kind "$(echo "($t1 - $t0) / 1000000" | bc -l | xargs printf '%.1f')"
        pid=$(server_pid $kind)
        add rss $kind "$(rss "$pid")"
        t0=$(now); cat "$MNT/$ONE" >/dev/null; t1=$(now)
        add read1 $kind "$(echo "($t1 - $t0) / 1000000" | bc -l | xargs printf '%.1f')"
        add rss_read $kind "$(rss "$pid")"
        t0=$(now); n=$(cd "$MNT" && find . | wc -l); t1=$(now)
        add find $kind "$(echo "($t1 - $t0) / 1000000000" | bc -l | xargs printf '%.3f')"
        t0=$(now); (cd "$MNT" && ls -lR >/dev/null); t1=$(now)
        add lsR $kind "$(echo "($t1 - $t0) / 1000000000" | bc -l | xargs printf '%.3f')"
        add rss_walked $kind "$(rss "$pid")"
        echo "   ($kind: find saw $n names)"
        umount "$MNT"
    done
done
echo "== trace of one more clc mount"
CLC_TRACE=1 "$CLC" mount "$WORK/ar.001" "$MNT" 2>&1 | sed 's/^/   /'
umount "$MNT"

printf '\n| metric (median of %s) | clc | squashfuse | clc / sqfs |\n|---|---|---|---|\n' "$REPS"
for m in "ready:mount + ls, warm (ms)" "rss:idle RSS after ls (KiB)" "read1:first read of one file (ms)" \
    "rss_read:RSS after that read (KiB)" "find:find . | wc -l (s)" \
    "lsR:ls -lR (s)" "rss_walked:RSS after the walks (KiB)"; do
    k=${m%%:*}
    c=$(echo "${R[clc,$k]}" | med)
    s=$(echo "${R[sqfs,$k]}" | med)
    printf '| %s | %s | %s | %.2f |\n' "${m#*:}" "$c" "$s" "$(echo "$c / $s" | bc -l)"
done
