#!/usr/bin/env python3
"""Writes large test files for the mount benchmarks, deterministic for a given seed.

    scripts/gen-large.py OUT MIB KIND [SEED]

KIND:
  text    words drawn from a fixed vocabulary with a skewed distribution, in lines of varying
          length (compresses about 3:1 with LZ4-class codecs, no long repeats to deduplicate)
  log     log lines with timestamps, counters, hex ids and a few message templates (about 8:1)
  random  incompressible bytes
  mixed   1 MiB of text, 1 MiB of random bytes, in turn
A tree of a few 100 MB files (part compressible, part not): one file of each kind.
"""
import random
import sys

MIB = 1 << 20


def vocabulary(rng):
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [26 - i for i in range(26)]
    words = set()
    while len(words) < 4096:
        n = rng.choice((2, 3, 3, 4, 4, 5, 5, 6, 7, 8, 9, 11))
        words.add("".join(rng.choices(letters, weights, k=n)))
    return sorted(words)


def text_block(rng, words, size):
    # Zipf-like: earlier words more often.
    cum = []
    total = 0.0
    for i in range(len(words)):
        total += 1.0 / (i + 1)
        cum.append(total)
    out = []
    n = 0
    while n < size:
        line = " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(4, 18)))
        line = line.capitalize() + ".\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def log_block(rng, start, size):
    msgs = [
        "GET /api/v2/items/{} 200 {}ms",
        "POST /api/v2/orders {} 201 {}ms",
        "cache miss key=user:{} took {}us",
        "worker {} finished batch of {} jobs",
        "connection from 10.0.{}.{} closed",
    ]
    out = []
    n = 0
    t = start
    while n < size:
        t += rng.randint(1, 900)
        m = rng.choice(msgs).format(rng.randint(1, 99999), rng.randint(1, 999))
        line = "2026-11-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z INFO [{:08x}] {}\n".format(
            1 + (t // 86_400_000) % 28,
            (t // 3_600_000) % 24,
            (t // 60_000) % 60,
            (t // 1000) % 60,
            t % 1000,
            rng.getrandbits(32),
            m,
        )
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size], t


def main():
    out, mib, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rng = random.Random(seed)
    words = vocabulary(rng)
    t = 0
    with open(out, "wb") as f:
        for i in range(mib):
            if kind == "random" or (kind == "mixed" and i % 2 == 1):
                f.write(rng.randbytes(MIB))
            elif kind in ("text", "mixed"):
                f.write(text_block(rng, words, MIB))
            elif kind == "log":
                b, t = log_block(rng, t, MIB)
                f.write(b)
            else:
                sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
