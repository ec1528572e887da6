#!/usr/bin/env python3
"""Writes a tree of many small entries for the mount-time benchmark, deterministic.

    scripts/gen-many.py OUT ENTRIES

About ENTRIES entries: directories of up to 1,000 names, two levels deep (d0000/s00/…), names of 6 to 20
characters; one file in 8 holds 1 to 4,000 bytes of text, the others are empty, and one entry in 64 is a
symlink. Write it to tmpfs (/dev/shm): a million files on disk take minutes to create and delete.
"""
import os
import random
import sys


def main():
    out, total = sys.argv[1], int(sys.argv[2])
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-."
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz ", k=40)) for _ in range(256)]
    made = 0
    top = 0
    while made < total:
        d1 = os.path.join(out, "d%04d" % top)
        os.makedirs(d1, exist_ok=True)
        made += 1
        top += 1
        for s in range(10):
            if made >= total:
                break
            d2 = os.path.join(d1, "s%02d" % s)
            os.mkdir(d2)
            made += 1
            names = set()
            for _ in range(min(999, total - made)):
                name = "".join(rng.choices(alphabet, k=rng.randint(6, 20)))
                if name in names or name.startswith("."):
                    continue
                names.add(name)
                p = os.path.join(d2, name)
                r = rng.randrange(64)
                if r == 0:
                    os.symlink("../" + name, p)
                elif r < 8:
                    n = rng.randint(1, 4000)
                    body = (" ".join(rng.choices(words, k=n // 40 + 1))).encode()[:n]
                    with open(p, "wb") as f:
                        f.write(body)
                else:
                    open(p, "wb").close()
                made += 1


if __name__ == "__main__":
    main()
