#!/usr/bin/env python3
"""gen_big.py SRC_FILE DEST_DIR COPIES: writes COPIES files, each SRC_FILE with its bytes mapped through a
different permutation of the 256 byte values. Every copy compresses like the source (same structure) but
shares no chunk with the others, so a pack of N copies does N times the work: an input of any size for
the memory-scaling runs (docs/BENCHMARKS.md)."""
import os
import random
import sys

src, dest, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(src, "rb").read()
os.makedirs(dest, exist_ok=True)
for k in range(copies):
    perm = list(range(256))
    random.Random(k).shuffle(perm)
    sub = os.path.join(dest, f"part{k // 8:02d}")
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f"copy{k:03d}.tar"), "wb") as f:
        f.write(data.translate(bytes(perm)))
