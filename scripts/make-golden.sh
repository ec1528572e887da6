#!/usr/bin/env bash
# Recreates tests/data/golden-vN.* for the format version this clc writes (N = 3 now: a versioned archive
# of three snapshots made with --append, LZ_EXT3_SB frames of 64 KiB in sub-blocks of 16 KiB, 64 KiB
# volumes; the third snapshot stores an edited file against its earlier version, a frame with a
# dictionary): a small archive that every later clc must keep reading (tests/golden.rs). Older versions'
# files (golden-v1.*, golden-v2.*, written by format versions 1 and 2: one plain pack of the tree below,
# without docs/numbers.txt) are kept as they are. Run only when deliberately replacing the current one;
# the committed files are the reference. `scripts/make-golden.sh 4` writes golden-v4.* instead: one plain
# pack of the first tree with `--codec lz_ext3e` (LZ_EXT3E frames, FORMAT.md 2.4; format version 4; this
# clc writes 5 now, so golden-v4.* stays as its version-4 build wrote it). `scripts/make-golden.sh 5`
# writes golden-v5.*: one plain pack of the first tree with the default codec (format version 5: the
# paged tree, FORMAT.md 12); `scripts/make-golden.sh 6` golden-v6.*, the same pack by format version 6
# (LZ_EXT3_SB frames with mid-points, FORMAT.md 2.2); `scripts/make-golden.sh 7` golden-v7.*: the same with
# `--codec zstd` (ZSTD frames, FORMAT.md 2.5; format version 7); `scripts/make-golden.sh 8` golden-v8.*: the
# pack of 5 and 6 by format version 8 (LZ4 tree pages, FORMAT.md 12.1).
set -euo pipefail
cd "$(dirname "$0")/.."
CLC=${CLC:-target/release/clc}   # CLC=target/debug/clc: any build of this commit writes the same bytes
[ "$CLC" != target/release/clc ] || cargo build --release --quiet
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
S=$T/golden
mkdir -p "$S/docs/nested" "$S/empty-dir" "$S/bin"
python3 - "$S" <<'PY'
import sys, random
root = sys.argv[1]
rnd = random.Random(7)
words = ["archive", "frame", "volume", "chunk", "dedup", "window", "offset", "literal"]
text = " ".join(rnd.choice(words) for _ in range(40000)).encode()
open(f"{root}/docs/long.txt", "wb").write(text)
open(f"{root}/docs/copy-of-long.txt", "wb").write(text)
open(f"{root}/docs/nested/small.txt", "wb").write(b"hello, golden\n")
open(f"{root}/bin/random.bin", "wb").write(bytes(rnd.getrandbits(8) for _ in range(80000)))
open(f"{root}/docs/empty", "wb").write(b"")
# Version 3: lines of numbers, which an edit leaves mostly alike (a frame with a dictionary pays).
open(f"{root}/docs/numbers.txt", "wb").write(b"".join(b"%08d %d\n" % (i, rnd.getrandbits(60)) for i in range(12000)))
PY
ln "$S/docs/nested/small.txt" "$S/docs/hardlink.txt"
ln -s nested/small.txt "$S/docs/symlink"
chmod 0750 "$S/bin"; chmod 0600 "$S/bin/random.bin"
python3 -c "import os,sys; os.setxattr(sys.argv[1], 'user.golden', b'yes')" "$S/docs/long.txt"
find "$S" -exec touch -h -d '2024-01-02 03:04:05.123456789 UTC' {} +
chown -hR 1000:1000 "$S"
V=${1:-3}
case $V in 3 | 4 | 5 | 6 | 7 | 8) ;; *) echo "make-golden.sh: version 3, 4, 5, 6, 7 or 8" >&2; exit 2 ;; esac
printf 'SUBBLOCK_SIZE = 16K\n' > "$T/config.txt"
rm -f tests/data/golden-v$V.*
if [ "$V" -ge 4 ]; then
    codec=$(case $V in 4) echo lz_ext3e ;; 7) echo zstd ;; *) echo lz_ext3 ;; esac)
    "$CLC" pack "$S" -o tests/data/golden-v$V --frame-size 64K --volume-size 64K --cpu -q --codec $codec \
        --config "$T/config.txt"
    "$CLC" list tests/data/golden-v$V.001 > tests/data/golden-v$V.list
    (cd "$S" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > tests/data/golden-v$V.sha256
    ls -l tests/data/golden-v$V.*
    exit 0
fi
pack() {
    "$CLC" pack "$S" -o tests/data/golden-v$V --append --frame-size 64K --volume-size 64K --cpu -q \
        --config "$T/config.txt" "$@"
}
pack --name first
# Second snapshot: a file edited (with its hardlink), one added, one removed.
printf 'hello again\n' >> "$S/docs/nested/small.txt"
printf 'new in the second snapshot\n' > "$S/docs/new.txt"
rm "$S/docs/empty"
find "$S" -exec touch -h -d '2024-02-03 04:05:06 UTC' {} +
pack --name second
# Third snapshot: numbers.txt edited in three places, stored against its earlier version.
python3 - "$S/docs/numbers.txt" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for at in (150000, 90000, 20000):
    b[at:at + 4] = b"EDIT"
open(p, "wb").write(bytes(b))
PY
find "$S" -exec touch -h -d '2024-03-04 05:06:07 UTC' {} +
pack --name third
"$CLC" list tests/data/golden-v$V.001 > tests/data/golden-v$V.list
(cd "$S" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > tests/data/golden-v$V.sha256
"$CLC" snapshots tests/data/golden-v$V.001 --json > tests/data/golden-v$V.snapshots.json
ls -l tests/data/golden-v$V.*
