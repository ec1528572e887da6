#!/usr/bin/env python3
"""traced.py CMD...: runs CMD (stdout discarded) and prints "wall_ms cpu_ms maxrss_MiB minflt trace_ms": its
wall time from outside, CPU, peak RSS and minor faults (its own rusage, from wait4), and the time of its
CLC_TRACE line "index written, volumes in place" (0 when it printed none). For the lent GPU machine, which
has no /usr/bin/time, perf or strace (docs/GPU.md runs 104-106)."""
import os
import subprocess
import sys
import time

t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
err = p.stderr.read()
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t0
last = [l for l in err.splitlines() if "volumes in place" in l]
trace = float(last[-1].split()[2]) * 1000 if last else 0.0
print(f"{wall * 1000:.1f} {(ru.ru_utime + ru.ru_stime) * 1000:.0f} {ru.ru_maxrss / 1024:.0f} {ru.ru_minflt} {trace:.1f}")
sys.exit(os.waitstatus_to_exitcode(status))
