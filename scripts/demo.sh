#!/usr/bin/env bash
# The main job on a sample directory: build, pack, list, info, verify, mount, read, unmount, extract, compare.
# Usage: scripts/demo.sh [DIR]   (default: /usr/share/doc)
# It may install packages with apt-get (scripts/deps.sh: fuse3, PoCL, the OpenCL ICD loader, clinfo, xz-utils,
# util-linux) when they are missing, and builds clc in release mode first: 4 to 10 minutes on 2 cores from a
# fresh clone (about 4 minutes of CPU; 10 when other work shares the machine), seconds once built. The
# mount step runs as root, or without root through fusermount3 (fuse3) when /dev/fuse is usable; otherwise
# it is skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-/usr/share/doc}
say() { echo "== $*"; }
say "checking the packages clc needs (installs fuse3, PoCL, ocl-icd, clinfo, xz-utils, util-linux with apt-get if missing)"
scripts/deps.sh
if [ -x target/release/clc ]; then
    say "building clc (release; up to date, or only what changed)"
else
    say "building clc (release): 4 to 12 minutes on 2 cores the first time"
fi
cargo build --release --quiet
CLC=$PWD/target/release/clc
WORK=$(mktemp -d /tmp/clc-demo.XXXXXX)
MNT=$WORK/mnt
cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null; then "$CLC" umount "$MNT" || umount -l "$MNT" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

say "pack $SRC (volumes of 64 MiB)"
"$CLC" pack "$SRC" -o "$WORK/demo" --volume-size 64M
ls -l "$WORK"/demo.*
say "list (first 10 entries)"
"$CLC" list "$WORK/demo.001" | head -n 10 || true
say "info"
"$CLC" info "$WORK/demo.001" | head -n 13 || true
say "verify"
"$CLC" verify "$WORK/demo.001"
# Mounting needs /dev/fuse, and either root (mount(2)) or fusermount3 from fuse3 (without root).
why=""
if [ ! -e /dev/fuse ]; then
    why="no /dev/fuse"
elif [ "$(id -u)" -ne 0 ]; then
    if ! command -v fusermount3 >/dev/null 2>&1; then
        why="not root and no fusermount3 (apt-get install fuse3)"
    elif [ ! -r /dev/fuse ] || [ ! -w /dev/fuse ]; then
        why="not root and /dev/fuse is not readable and writable by $(id -un)"
    fi
fi
if [ -z "$why" ]; then
    how="as root"
    [ "$(id -u)" -ne 0 ] && how="without root, through fusermount3"
    say "mount ($how), read, compare, unmount"
    mkdir -p "$MNT"
    "$CLC" mount "$WORK/demo.001" "$MNT"
    ls "$MNT" | head -n 5 || true
    diff -r --no-dereference "$SRC" "$MNT" && echo "mounted tree is identical to $SRC"
    "$CLC" umount "$MNT"
else
    say "mount skipped: $why"
fi
say "extract and compare"
"$CLC" extract "$WORK/demo.001" -o "$WORK/restored"
diff -r --no-dereference "$SRC" "$WORK/restored" && echo "restored tree is identical to $SRC"
