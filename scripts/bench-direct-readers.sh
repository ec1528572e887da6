#!/usr/bin/env bash
# N parallel direct readers of one file through a fresh `clc mount` (issue 20: parallel readers scale):
# `dd bs=1M iflag=direct`, each over its 1/N of FILE, each with its own timeout, page cache dropped first.
#
#   scripts/bench-direct-readers.sh CLC ARCHIVE.001 FILE N [TIMEOUT_S]     (as root)
#
# FILE is the path inside the archive; MOUNT_ARGS adds mount flags (e.g. "--threads 16").
# Prints one line: readers, how many failed or timed out, seconds, aggregate MB/s.
set -uo pipefail
CLC=${1:?usage: $0 CLC ARCHIVE FILE N [TIMEOUT_S]}; AR=${2:?}; FILE=${3:?}; N=${4:?}; TO=${5:-120}
M=$(mktemp -d /tmp/direct-readers.XXXXXX)
trap 'mountpoint -q "$M" && { umount "$M" || umount -l "$M"; }; rmdir "$M"' EXIT
# shellcheck disable=SC2086
"$CLC" mount "$AR" "$M" ${MOUNT_ARGS:-} || exit 1
sync; echo 3 >/proc/sys/vm/drop_caches
part=$(($(stat -c %s "$M/$FILE") / N / 1048576))
t0=$(date +%s.%N)
pids=()
for j in $(seq 0 $((N - 1))); do
    timeout "$TO" dd if="$M/$FILE" of=/dev/null bs=1M iflag=direct skip=$((j * part)) count=$part status=none &
    pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
t1=$(date +%s.%N)
awk -v n="$N" -v b="$bad" -v a="$t0" -v z="$t1" -v p="$part" \
    'BEGIN {printf "readers=%d failed/timed-out=%d time=%.2f s MB/s=%.0f\n", n, b, z - a, p * n * 1.048576 / (z - a)}'
