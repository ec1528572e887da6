#!/usr/bin/env bash
# Pack to a bucket against pack to a local directory (issue 19's goal: bucket <= 1.2 x local), for one or
# more clc binaries in the same run, alternating, with the S3 server's own CPU per bucket pack (utime +
# stime of the `weed` process from /proc/PID/stat, before and after each pack). A local S3 server
# (SeaweedFS `weed mini` on loopback, scripts/s3-server.sh) is started on a free port with fresh data.
#
#   scripts/bench-s3-pack.sh SRC...        (CLCS="target/release/clc" REPS=7 FLOOR=0)
#
# Per tree and binary: medians of REPS of `clc pack SRC -o DIR/loc -q --cpu` (after removing the last
# one) and `clc pack SRC -o s3://clc-test/bench/NAME -q --cpu --force`, their ratio and difference, and
# the server's CPU per bucket pack; with FLOOR=1 the server's time for plain PUTs of the bytes a pack
# uploads after its stream (scripts/s3-put.py; with TRACE=1 also of its largest frame); with TRACE=1 one
# more traced bucket pack per binary: the client's start, the lock, the scan's end, each frame written
# (volume, bytes), each upload begun, the stream's end and every S3 request (CLC_TRACE: end time, kind,
# bytes, duration), the time until the command returned, and the local pack's end beside it.
# Timings on a shared machine are noisy: compare within one run.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 SRC..." >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
REPS=${REPS:-7}
CLCS=${CLCS:-target/release/clc}
W=$(mktemp -d)
export CLC_S3_PORT=$("$HERE/s3-server.sh" free-port)
export CLC_S3_DIR="$W/s3data"
trap 'CLC_S3_GRACE=1 "$HERE/s3-server.sh" stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
"$HERE/s3-server.sh" start >/dev/null
eval "$("$HERE/s3-server.sh" env)"
HOME_DIR=${CLC_S3_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/clc-s3}
WP=$(cat "$HOME_DIR/weed-$CLC_S3_PORT.pid")
ticks() { awk '{print $14 + $15}' "/proc/$WP/stat"; }
ms() { local s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uptime)"
for src in "$@"; do
    n=$(basename "$src")
    echo "tree: $src, $(du -sb --apparent-size "$src" | cut -f1) bytes, $(find "$src" -type f | wc -l) files; REPS=$REPS"
    for i in $(seq "$REPS"); do
        k=0
        for c in $CLCS; do
            k=$((k + 1))
            rm -f "$W"/loc.*
            ms "$c" pack "$src" -o "$W/loc" -q --cpu >> "$W/$n.$k.local"
            a=$(ticks)
            ms "$c" pack "$src" -o "s3://$CLC_S3_TEST_BUCKET/bench/$n" -q --cpu --force >> "$W/$n.$k.s3"
            sleep 0.3
            echo $(( ($(ticks) - a) * 1000 / hz )) >> "$W/$n.$k.cpu"
        done
    done
    k=0
    for c in $CLCS; do
        k=$((k + 1))
        l=$(med < "$W/$n.$k.local"); s=$(med < "$W/$n.$k.s3"); u=$(med < "$W/$n.$k.cpu")
        echo "  $c: local $l ms, bucket $s ms, bucket/local $(awk -v a="$s" -v b="$l" 'BEGIN{printf "%.2f", a/b}') (goal <= 1.2), bucket - local $((s - l)) ms, server CPU per bucket pack $u ms"
    done
    if [ "${TRACE:-0}" = 1 ]; then
        for c in $CLCS; do
            echo "  traced bucket pack, $c:"
            t0=$(date +%s%N)
            CLC_TRACE=1 "$c" pack "$src" -o "s3://$CLC_S3_TEST_BUCKET/bench/$n" -q --cpu --force 2> "$W/trace"
            t1=$(date +%s%N)
            grep "trace:" "$W/trace" | grep -E ' s3 |S3 client|lock|scan done|frame [0-9]+ written|upload begun|stream done|index written| Finish ' |
                sed 's/^clc: trace: */    /'
            # From the command's start to its return, against the trace's last line (what the
            # process does after its last request: the runtime's shutdown, the exit).
            echo "    command returned after $(( (t1 - t0) / 1000000 )) ms"
            # The same for the local pack (its Finish stage and its return).
            rm -f "$W"/loc.*
            t0=$(date +%s%N)
            CLC_TRACE=1 "$c" pack "$src" -o "$W/loc" -q --cpu 2> "$W/trace"
            t1=$(date +%s%N)
            grep "trace:" "$W/trace" | grep -E 'stream done|index written| Finish ' | sed 's/^clc: trace: */    local: /'
            echo "    local: command returned after $(( (t1 - t0) / 1000000 )) ms"
        done
    fi
    # FLOOR=1: the server's own time for what a pack uploads after its stream, as plain PUTs from
    # scripts/s3-put.py (one request, UNSIGNED-PAYLOAD): the first volume whole (an archive under
    # 5 MiB is that one PUT) and its last part's bytes (its size past the last whole 5 MiB part).
    if [ "${FLOOR:-0}" = 1 ]; then
        v=$(stat -c %s "$W/loc.001")
        tail=$(( v % (5 << 20) ))
        read -r b m lo < <(python3 "$HERE/s3-put.py" "$W/loc.001" 9)
        echo "  plain PUT of the volume's $b bytes: median $m ms (min $lo)"
        if [ "$tail" -gt 0 ] && [ "$tail" -lt "$v" ]; then
            read -r b m lo < <(python3 "$HERE/s3-put.py" "$W/loc.001" 9 "$tail")
            echo "  plain PUT of its last part's $b bytes: median $m ms (min $lo)"
        fi
        # With TRACE=1: the largest stored frame (a volume of its own at worst: what is left after
        # the stream when it is written last).
        f=$(grep -o 'written: volume [0-9]*, [0-9]* bytes' "$W/trace" 2>/dev/null | awk '{print $4}' | sort -n | tail -1)
        if [ -n "$f" ] && [ "$f" -lt "$v" ]; then
            read -r b m lo < <(python3 "$HERE/s3-put.py" "$W/loc.001" 9 "$f")
            echo "  plain PUT of the largest frame's $b bytes: median $m ms (min $lo)"
        fi
    fi
    rm -f "$W"/loc.*
done
echo "after: $(uptime)"
