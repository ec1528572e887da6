#!/bin/bash
# Issue 20 on the lent machine (root, no network, no cargo): `clc extract` against read-all through
# `clc mount` on the Rust-doc tree, and one large file read sequentially through the mount, all --cpu.
#
#   scripts/gpu/mount-bench.sh CLC DATA      CLC: a stripped release clc; DATA: a folder holding rdoc.tar.xz
#                                            (which contains rdoc/)
# Here: cargo build --release; copy target/release/clc (stripped) and this script into
# /work/main/.dev-gpu-mountperf/; then run(command="bash .dev-gpu-mountperf/mount-bench.sh
# .dev-gpu-mountperf/clc .dev-gpu-shared", carry=[".dev-gpu-mountperf", ".dev-gpu-shared"]).
# Prints SKIP and exits 0 without /dev/fuse. Cold reads: the page cache is dropped where allowed,
# otherwise each read gets a fresh mount (so the mount's frame cache is cold, the archive's pages not);
# the table says which. Logs under $OUT (default /tmp/mount-bench-out); the table comes last.
# Every read has its own timeout (READ_TIMEOUT, 60 s); a reader that fails or times out is counted and
# named in the table, so one stuck reader no longer hides the rest. read-all runs twice: as shipped and
# with CLC_MOUNT_OPEN=1 (FUSE_OPEN answered, one handle per open: the round trips the default avoids).
# Env: REPS (3; medians), BIG_GB (2: size of the large file, the doc tar repeated), SCRATCH (/tmp/mb),
# DISK_SCRATCH (unset: a folder on another filesystem, e.g. the disk when SCRATCH is tmpfs, where the
# extract is also timed, its `sync` included).
set -uo pipefail
CLC=$(realpath "${1:?usage: $0 CLC DATA}")
DATA=$(realpath "${2:?usage: $0 CLC DATA}")
OUT=${OUT:-/tmp/mount-bench-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/mount-bench.log") 2>&1
REPS=${REPS:-3}
BIG_GB=${BIG_GB:-2}
TO=${READ_TIMEOUT:-60}
FAILS=""
W=${SCRATCH:-/tmp/mb}
MNT=$W/mnt

if [ ! -c /dev/fuse ]; then
    echo "SKIP: no /dev/fuse on this machine"
    exit 0
fi
cleanup() {
    mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
    rm -rf "$W"
}
trap cleanup EXIT
cleanup
mkdir -p "$MNT" "$W/tree" "$W/big"

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print "-"}'; }
if sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    COLD="page cache dropped"
    cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
else
    COLD="fresh mount, page cache of the archive warm (drop_caches not allowed)"
    cold() { :; }
fi
mnt() { # archive [env...]: a fresh mount, then cold caches
    mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
    env "${@:2}" "$CLC" mount "$1" "$MNT" --cpu || { echo "FAIL: clc mount $1"; exit 1; }
    cold
}
declare -A R
add() { R[$1]="${R[$1]:-} $2"; echo "   sample $1: $2"; }

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); clc $("$CLC" --version)"
echo "   cold reads: $COLD"
T0=$(now)
xz -dc "$DATA/rdoc.tar.xz" > "$W/rdoc.tar" && tar xf "$W/rdoc.tar" -C "$W/tree" || { echo "FAIL: unpacking"; exit 1; }
TREE=$W/tree/rdoc
BYTES=$(du -sb "$TREE" | cut -f1)
echo "tree: $BYTES bytes, $(find "$TREE" -type f | wc -l) files (unpacked in $(secs "$T0" "$(now)") s)"
t0=$(now); "$CLC" pack "$TREE" -o "$W/doc" --cpu -q || { echo "FAIL: pack"; exit 1; }
echo "pack --cpu: $(secs "$t0" "$(now)") s, $(du -cb "$W"/doc.* | tail -1 | cut -f1) bytes"
# The large file: the doc tar repeated (compressible like real data, not a run of one byte).
n=$(( (BIG_GB << 30) / $(stat -c %s "$W/rdoc.tar") + 1 ))
for _ in $(seq "$n"); do cat "$W/rdoc.tar"; done | head -c $((BIG_GB << 30)) > "$W/big/big.bin"
rm -f "$W/rdoc.tar"
BIGSIZE=$(stat -c %s "$W/big/big.bin")
t0=$(now); "$CLC" pack "$W/big" -o "$W/big" --cpu -q || { echo "FAIL: pack big"; exit 1; }
echo "big file: $BIGSIZE bytes, packed in $(secs "$t0" "$(now)") s"
rm -f "$W/big/big.bin"

for rep in $(seq "$REPS"); do
    rm -rf "$W/x"; cold
    t0=$(now); "$CLC" extract "$W/doc.001" -o "$W/x" --cpu -q; t1=$(now)
    add extract "$(secs "$t0" "$t1")"
    rm -rf "$W/x"
    if [ -n "${DISK_SCRATCH:-}" ]; then
        rm -rf "$DISK_SCRATCH/x"; mkdir -p "$DISK_SCRATCH"; cold
        t0=$(now); "$CLC" extract "$W/doc.001" -o "$DISK_SCRATCH/x" --cpu -q; sync; t1=$(now)
        add extract_disk "$(secs "$t0" "$t1")"
        rm -rf "$DISK_SCRATCH/x"; sync
    fi
    for v in readall:CLC_MOUNT_OPEN=0 readall_open:CLC_MOUNT_OPEN=1; do
        mnt "$W/doc.001" "${v#*:}"
        t0=$(now); (cd "$MNT" && timeout "$TO" tar cf - . | cat >/dev/null) || FAILS="$FAILS ${v%%:*}"; t1=$(now)
        add "${v%%:*}" "$(secs "$t0" "$t1")"
    done
    mnt "$W/big.001"
    t0=$(now); timeout "$TO" dd if="$MNT/big.bin" of=/dev/null bs=1M status=none || FAILS="$FAILS dd"; t1=$(now)
    add dd "$(awk -v s="$BIGSIZE" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", s / (b - a) / 1e9}')"
    for jobs in 1 8 16; do
        mnt "$W/big.001"
        part=$((BIGSIZE / jobs / 1048576 * 1048576))
        if command -v fio >/dev/null; then
            how="fio --rw=read --bs=1M --direct=1, each job over its 1/N"
            gbs=$(cd "$MNT" && timeout "$TO" fio --name=seq --filename=big.bin --rw=read --bs=1M --direct=1 \
                --ioengine=psync --numjobs=$jobs --size=$part --offset_increment=$part --readonly \
                --group_reporting --output-format=terse | awk -F';' '{printf "%.2f", $7 * 1024 / 1e9}')
            [ -n "$gbs" ] || FAILS="$FAILS fio$jobs"
        else
            how="parallel dd bs=1M iflag=direct, each over its 1/N, each with a ${TO}-s timeout"
            t0=$(now)
            pids=()
            for j in $(seq 0 $((jobs - 1))); do
                timeout "$TO" dd if="$MNT/big.bin" of=/dev/null bs=1M iflag=direct skip=$((j * part >> 20)) \
                    count=$((part >> 20)) status=none &
                pids+=($!)
            done
            bad=0
            for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
            t1=$(now)
            [ "$bad" = 0 ] || FAILS="$FAILS seq$jobs:$bad-of-$jobs-readers"
            gbs=$(awk -v s=$((part * jobs)) -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", s / (b - a) / 1e9}')
        fi
        echo "   $jobs readers: $(secs "$T0" "$(now)") s into the script"
        add "seq$jobs" "$gbs"
    done
    mountpoint -q "$MNT" && umount "$MNT"
done
for k in extract extract_disk readall readall_open dd seq1 seq8 seq16; do echo "$k: ${R[$k]}" >> "$OUT/raw.txt"; done
cat "$OUT/raw.txt"

ex=$(echo "${R[extract]}" | median); ra=$(echo "${R[readall]}" | median)
echo
echo "== issue 20 on $(nproc) cores, --cpu, medians of $REPS ($COLD); whole script $(secs "$T0" "$(now)") s"
printf '%-44s %10s\n' "clc extract doc tree (s)" "$ex"
printf '%-44s %10s\n' "mount read-all doc tree, tar|cat (s)" "$ra"
printf '%-44s %10s\n' "  read-all / extract" "$(awk -v a="$ra" -v b="$ex" 'BEGIN {printf "%.2f", a / b}')"
if [ -n "${DISK_SCRATCH:-}" ]; then
    ed=$(echo "${R[extract_disk]}" | median)
    printf '%-44s %10s\n' "clc extract onto $DISK_SCRATCH, with sync (s)" "$ed"
    printf '%-44s %10s\n' "  read-all / that extract" "$(awk -v a="$ra" -v b="$ed" 'BEGIN {printf "%.2f", a / b}')"
fi
printf '%-44s %10s\n' "  read-all throughput (GB/s)" "$(awk -v a="$ra" -v s="$BYTES" 'BEGIN {printf "%.2f", s / a / 1e9}')"
printf '%-44s %10s\n' "  with CLC_MOUNT_OPEN=1 (s)" "$(echo "${R[readall_open]}" | median)"
printf '%-44s %10s\n' "large file dd bs=1M (GB/s)" "$(echo "${R[dd]}" | median)"
printf '%-44s %10s\n' "large file 1 reader (GB/s)" "$(echo "${R[seq1]}" | median)"
printf '%-44s %10s\n' "large file 8 readers (GB/s)" "$(echo "${R[seq8]}" | median)"
printf '%-44s %10s\n' "large file 16 readers (GB/s)" "$(echo "${R[seq16]}" | median)"
echo "failed or timed out (${TO} s each):${FAILS:- none}"
echo "(readers: $how; large file $BIGSIZE bytes)"
