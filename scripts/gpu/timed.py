#!/usr/bin/env python3
"""timed.py CMD...: runs CMD, prints "<wall s> s, peak RSS <MiB> MiB" (largest process of CMD's tree) and
exits with CMD's status. For machines without /usr/bin/time (the lent GPU machine)."""
import resource
import subprocess
import sys
import time

t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:]).returncode
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{wall:.3f} s, peak RSS {rss:.0f} MiB" + ("" if rc == 0 else f", exit {rc}"))
sys.exit(rc)
