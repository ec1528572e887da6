#!/usr/bin/env bash
# The main job on a sample directory: build, pack, list, info, verify, mount, read, unmount, extract, compare.
# Usage: scripts/demo.sh [DIR]   (default: /usr/share/doc)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${1:-/usr/share/doc}
scripts/deps.sh
cargo build --release --quiet
CLC=$PWD/target/release/clc
WORK=$(mktemp -d /tmp/clc-demo.XXXXXX)
MNT=$WORK/mnt
cleanup() {
    if mountpoint -q "$MNT" 2>/dev/null; then "$CLC" umount "$MNT" || umount -l "$MNT" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== pack $SRC (volumes of 64 MiB)"
"$CLC" pack "$SRC" -o "$WORK/demo" --volume-size 64M
ls -l "$WORK"/demo.*
echo "== list (first 10 entries)"
"$CLC" list "$WORK/demo.001" | head -n 10 || true
echo "== info"
"$CLC" info "$WORK/demo.001" | head -n 12 || true
echo "== verify"
"$CLC" verify "$WORK/demo.001"
if "$CLC" mount --help >/dev/null 2>&1 && [ -e /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
    echo "== mount, read, compare, unmount"
    mkdir -p "$MNT"
    "$CLC" mount "$WORK/demo.001" "$MNT"
    ls "$MNT" | head -n 5 || true
    diff -r --no-dereference "$SRC" "$MNT" && echo "mounted tree is identical to $SRC"
    "$CLC" umount "$MNT"
else
    echo "== mount skipped (needs root, /dev/fuse and a clc with mount)"
fi
echo "== extract and compare"
"$CLC" extract "$WORK/demo.001" -o "$WORK/restored"
diff -r --no-dereference "$SRC" "$WORK/restored" && echo "restored tree is identical to $SRC"
