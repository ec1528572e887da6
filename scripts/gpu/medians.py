#!/usr/bin/env python3
"""The table the lent-machine scripts print last: for every line `KEY: NUMBER` of LOG whose KEY matches
KEY_REGEX (default: two words), the median and the runs, in the order the keys first appear.
Usage: medians.py LOG [KEY_REGEX] [WIDTH]"""
import re
import statistics as st
import sys

log = sys.argv[1]
key = sys.argv[2] if len(sys.argv) > 2 else r"\S+ \S+"
width = int(sys.argv[3]) if len(sys.argv) > 3 else 20
rows = {}
for line in open(log):
    m = re.match(rf"^({key}): ([0-9.]+)$", line.strip())
    if m:
        rows.setdefault(m.group(1), []).append(float(m.group(2)))


def show(x):
    return f"{x:.0f}" if x == int(x) and x >= 1000 else f"{x:.3f}"


for k, v in rows.items():
    print(f"{k:{width}s} median {show(st.median(v)):>12s}  runs {' '.join(show(x) for x in v)}")
