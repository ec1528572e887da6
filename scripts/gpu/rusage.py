#!/usr/bin/env python3
"""rusage.py CMD...: runs CMD and prints "wall user sys minflt maxrss_MiB" of CMD (its own rusage, from
wait4), then exits with CMD's status. For machines without /usr/bin/time (the lent GPU machine)."""
import os
import sys
import time

t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(f"{wall:.3f} {ru.ru_utime:.3f} {ru.ru_stime:.3f} {ru.ru_minflt} {ru.ru_maxrss / 1024:.0f}")
sys.exit(os.waitstatus_to_exitcode(status))
