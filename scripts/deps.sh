#!/usr/bin/env bash
# Installs what clc's tests, demo and benchmarks need on a fresh Debian/Ubuntu machine, if missing:
# fuse3 (fusermount3), PoCL (a CPU OpenCL device) with the ICD loader and clinfo, xz (seed archives),
# util-linux and bsdutils (`script`, which gives tests/tty.rs a terminal).
# Usage: scripts/deps.sh [bench]   -- "bench" also installs the peers measured by scripts/bench*.sh.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in fuse3 pocl-opencl-icd ocl-icd-libopencl1 clinfo xz-utils util-linux bsdutils; do
    have "$p" || need+=("$p")
done
if [ "${1:-}" = bench ]; then
    for p in lz4 zstd squashfs-tools squashfuse fio par2 time bc borgbackup restic; do have "$p" || need+=("$p"); done
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "scripts/deps.sh: installing ${need[*]}" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
