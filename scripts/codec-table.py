#!/usr/bin/env python3
"""Condenses the output of scripts/bench-codec.sh (stdin) into two Markdown tables: the peers per tree
(pack time against mksquashfs -comp lz4, size against tar | zstd -3), and every lever's archive size
against tar | zstd -3 per tree, with its compress / decompress speed (one core, MB/s) on each tree."""
import re
import sys

trees, peers, levers, what = [], {}, {}, {}
tree = None
for line in sys.stdin:
    m = re.match(r"### (\S+): (\d+) MB in (\d+) files", line)
    if m:
        tree = m.group(1).rstrip(":").split("/")[-1]
        trees.append(tree)
        continue
    cells = [c.strip().replace("\x00", "\\|") for c in line.replace("\\|", "\x00").strip().strip("|").split("|")]
    if tree is None or len(cells) < 5 or cells[0] in ("tool", "variant") or cells[0].startswith("---"):
        continue
    if len(cells) == 8 and line.startswith("| "):
        peers.setdefault(tree, []).append(cells)
    elif len(cells) == 9:
        name = cells[0]
        what[name] = cells[1]
        levers.setdefault(name, {})[tree] = (cells[6], cells[7], cells[8])

print("| tool | " + " | ".join(f"{t}: pack s (× sqfs), CPU s (× sqfs); size MB (× zstd)" for t in trees) + " |")
print("|---|" + "---|" * len(trees))
for i, tool in enumerate(["clc pack --cpu (LZ_EXT3)", "tar \\| zstd -3 -T0", "mksquashfs -comp lz4"]):
    row = []
    for t in trees:
        c = peers[t][i]
        row.append(f"{c[1]} ({c[5]}), {c[6]} ({c[7]}); {c[2]} ({c[4]})")
    print(f"| {tool} | " + " | ".join(row) + " |")
print()
print("| variant | what | " + " | ".join(f"{t}" for t in trees) + " |")
print("|---|---|" + "---|" * len(trees))
for name, per in levers.items():
    row = []
    for t in trees:
        if t in per:
            x, c, d = per[t]
            row.append(f"{x} ({c} / {d})")
        else:
            row.append("—")
    print(f"| {name} | {what[name]} | " + " | ".join(row) + " |")
