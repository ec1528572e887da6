#!/usr/bin/env python3
"""Changes PCT % of the regular files under ROOT, seeded (the same tree and seed give the same edit):
of the chosen files, 70 % are edited in place (a few lines changed or inserted near a random point),
15 % deleted, and as many new files as the other 15 % are added (a copy of a chosen file with a line
changed, under a new name beside it). Prints one line saying what it did.

Usage: scripts/mutate-tree.py ROOT PCT [SEED]
"""
import os
import random
import sys

root, pct = sys.argv[1], float(sys.argv[2])
rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2026)
files = []
for d, dirs, names in os.walk(root):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p):
            files.append(p)
chosen = rnd.sample(files, max(1, round(len(files) * pct / 100)))
edited = deleted = added = 0
changed_bytes = 0


def edit(data: bytes) -> bytes:
    at = rnd.randrange(len(data) + 1)
    piece = f"<!-- edited {rnd.getrandbits(64):016x} -->\n".encode()
    if rnd.random() < 0.5 or len(data) < 64:
        return data[:at] + piece + data[at:]
    end = min(len(data), at + rnd.randrange(16, 256))
    return data[:at] + piece + data[end:]


for i, p in enumerate(chosen):
    r = i / len(chosen)
    with open(p, "rb") as f:
        data = f.read()
    if r < 0.70:
        new = edit(data)
        with open(p, "wb") as f:
            f.write(new)
        edited += 1
        changed_bytes += len(new)
    elif r < 0.85:
        os.remove(p)
        deleted += 1
    else:
        q = p + f".new{i}"
        new = edit(data)
        with open(q, "wb") as f:
            f.write(new)
        added += 1
        changed_bytes += len(new)
print(f"mutate-tree: {len(files)} files, {edited} edited, {deleted} deleted, {added} added "
      f"({changed_bytes} bytes in edited and added files), seed fixed")
