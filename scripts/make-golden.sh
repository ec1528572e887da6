#!/usr/bin/env bash
# Recreates tests/data/golden-vN.* for the format version this clc writes (N = 2 now: LZ_EXT3_SB frames
# of 64 KiB in sub-blocks of 16 KiB): a small archive that every later clc must keep reading
# (tests/golden.rs). Older versions' files (golden-v1.*, written by format version 1) are kept as they
# are. Run only when deliberately replacing the current one; the committed files are the reference.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
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
PY
ln "$S/docs/nested/small.txt" "$S/docs/hardlink.txt"
ln -s nested/small.txt "$S/docs/symlink"
chmod 0750 "$S/bin"; chmod 0600 "$S/bin/random.bin"
python3 -c "import os,sys; os.setxattr(sys.argv[1], 'user.golden', b'yes')" "$S/docs/long.txt"
find "$S" -exec touch -h -d '2024-01-02 03:04:05.123456789 UTC' {} +
chown -hR 1000:1000 "$S"
V=2
printf 'SUBBLOCK_SIZE = 16K\n' > "$T/config.txt"
rm -f tests/data/golden-v$V.*
target/release/clc pack "$S" -o tests/data/golden-v$V --frame-size 64K --volume-size 64K --cpu -q \
    --config "$T/config.txt"
target/release/clc list tests/data/golden-v$V.001 > tests/data/golden-v$V.list
(cd "$S" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > tests/data/golden-v$V.sha256
ls -l tests/data/golden-v$V.*
