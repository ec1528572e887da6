#!/usr/bin/env bash
# Archives in object storage (issue 19) against local volumes, in one run on one tree, with a local
# S3 server (SeaweedFS `weed mini` on loopback, scripts/s3-server.sh; started on a free port with fresh
# data unless CLC_S3_PORT names a running one):
#   1. pack to the bucket vs pack to a local directory (medians of REPS, alternating);
#   2. read every file through `clc mount` from the bucket vs from local volumes (cold mount each time,
#      `tar cf - | wc -c` of the tree; medians of REPS);
#   3. NREAD random 4 KiB reads (random file, random 4 KiB-aligned offset) through a fresh mount whose
#      cache holds one or two frames (--cache-size $RND_CACHE, default 8M; an archive with 16 MiB frames needs 17M), so nearly every read misses it, from the bucket and from
#      local volumes (those in the page cache: the cost of clc, not of a disk): median and p90 latency;
#   4. bytes fetched from the bucket per byte read, sequential (2) and random (3), from CLC_TRACE's
#      ReadFrames bytes (every ranged GET's body, counted by volumes::remote).
# Needs root and /dev/fuse (the mount). Timings on a shared machine are noisy: compare the ratios.
#
#   scripts/bench-s3.sh SRC [WORKDIR]      (CLC=target/release/clc REPS=3 NREAD=200)
set -euo pipefail
SRC=$(realpath "${1:?usage: $0 SRC [WORKDIR]}")
W=${2:-$(mktemp -d)}
CLC=$(realpath "${CLC:-target/release/clc}")
REPS=${REPS:-3}
NREAD=${NREAD:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W"
if [ -z "${CLC_S3_PORT:-}" ]; then
    export CLC_S3_PORT=$("$HERE/s3-server.sh" free-port)
    export CLC_S3_DIR="$W/s3data"
    trap 'CLC_S3_GRACE=1 "$HERE/s3-server.sh" stop || true; rm -rf "$CLC_S3_DIR"' EXIT
    "$HERE/s3-server.sh" start
fi
eval "$("$HERE/s3-server.sh" env)"
B="s3://$CLC_S3_TEST_BUCKET/bench-$$"
MNT="$W/mnt"
mkdir -p "$MNT"
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f\n", b-a}'; }
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
raw=$(du -sb --apparent-size "$SRC" | cut -f1)
echo "tree: $SRC, $raw bytes, $(find "$SRC" -type f | wc -l) files; REPS=$REPS"

# 1. pack
rm -f "$W"/pk.*
for i in $(seq "$REPS"); do
    rm -f "$W"/loc.*
    t "$CLC" pack "$SRC" -o "$W/loc" -q --cpu >> "$W/pk.local"
    t "$CLC" pack "$SRC" -o "$B/arch" -q --cpu --force >> "$W/pk.s3"
done
stored=$(du -cb "$W"/loc.* | tail -1 | cut -f1)
pl=$(med < "$W/pk.local"); ps=$(med < "$W/pk.s3")
echo "pack to local disk: $pl s; pack to the bucket: $ps s; bucket/local = $(awk -v a="$ps" -v b="$pl" 'BEGIN{printf "%.2f", a/b}') (goal <= 1.2); archive $stored bytes"

# TRACE_PACK=1: one more pack each way with CLC_TRACE (stages and every S3 request with its start and
# duration); ONLY_PACK=1: stop after the pack figures.
if [ "${TRACE_PACK:-0}" = 1 ]; then
    rm -f "$W"/loc.*
    echo "-- traced pack to local disk"; CLC_TRACE=1 "$CLC" pack "$SRC" -o "$W/loc" -q --cpu 2>&1 | grep "trace:" | tail -25
    echo "-- traced pack to the bucket"; CLC_TRACE=1 "$CLC" pack "$SRC" -o "$B/arch" -q --cpu --force 2>&1 | grep "trace:" | tail -60
fi
[ "${ONLY_PACK:-0}" = 1 ] && exit 0

mounted() { "$CLC" mount "$1" "$MNT" --log "$2" --cpu ${3:+--cache-size "$3"}; }
# 2. every file through the mount, cold
for i in $(seq "$REPS"); do
    for where in local s3; do
        a="$W/loc.001"; [ "$where" = s3 ] && a="$B/arch.001"
        CLC_TRACE=1 mounted "$a" "$W/seq-$where.log"
        t sh -c "tar cf - -C '$MNT' . | wc -c" >> "$W/rd.$where"
        "$CLC" umount "$MNT"
    done
done
rl=$(med < "$W/rd.local"); rs=$(med < "$W/rd.s3")
echo "read every file through the mount: local $rl s ($(awk -v r="$raw" -v s="$rl" 'BEGIN{printf "%.0f", r/s/1048576}') MiB/s), bucket $rs s ($(awk -v r="$raw" -v s="$rs" 'BEGIN{printf "%.0f", r/s/1048576}') MiB/s); bucket/local throughput = $(awk -v a="$rl" -v b="$rs" 'BEGIN{printf "%.2f", a/b}') (goal >= 0.8)"
sleep 1
fetched=$(grep 'trace: ReadFrames' "$W/seq-s3.log" | tail -1 | awk '{print $(NF-1)}')
echo "sequential: bytes fetched per byte read = $(awk -v f="$fetched" -v r="$raw" 'BEGIN{printf "%.3f", f/r}') ($fetched fetched for $raw read; the archive is $stored)"

# 3. random 4 KiB reads, cold
find "$SRC" -type f -size +4k -printf '%P\n' | sort > "$W/files"
rnd() {
    python3 - "$MNT" "$W/files" "$NREAD" <<'PY'
import os, random, sys, time
mnt, lst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = [l.rstrip("\n") for l in open(lst)]
rng = random.Random(42)
lat = []
for _ in range(n):
    f = os.path.join(mnt, rng.choice(files))
    size = os.path.getsize(f)
    off = rng.randrange(0, max(1, size - 4096)) & ~4095
    fd = os.open(f, os.O_RDONLY)
    t = time.perf_counter()
    b = os.pread(fd, 4096, off)
    lat.append(time.perf_counter() - t)
    os.close(fd)
lat.sort()
print(f"{lat[len(lat)//2]*1e3:.2f} {lat[int(len(lat)*0.9)]*1e3:.2f} {n}")
PY
}
for where in local s3; do
    a="$W/loc.001"; [ "$where" = s3 ] && a="$B/arch.001"
    CLC_TRACE=1 mounted "$a" "$W/rnd-$where.log" "${RND_CACHE:-8M}"
    read -r m p n < <(rnd)
    "$CLC" umount "$MNT"
    echo "random 4 KiB reads, cold cache, $where: median $m ms, p90 $p ms ($n reads)"
done
sleep 1
fetched=$(grep 'trace: ReadFrames' "$W/rnd-s3.log" | tail -1 | awk '{print $(NF-1)}')
echo "random: bytes fetched per byte read = $(awk -v f="$fetched" -v n="$NREAD" 'BEGIN{printf "%.0f", f/(n*4096)}') ($fetched fetched for $NREAD x 4096)"
rm -rf "$W"/loc.* "$W"/pk.* "$W"/rd.* "$W/files"
