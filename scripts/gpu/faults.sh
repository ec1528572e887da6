#!/bin/bash
# Page-fault cost on this machine: dd with one 1 GiB buffer (262,144 first touches) against a reused
# 1 MiB buffer (the same bytes, no faults); then torch filling a fresh 2 GiB tensor on 1 and 16 threads
# (first touches from several threads of one process) against refilling it.
for i in 1 2 3; do
  echo "dd 1G buffer: $(dd if=/dev/zero of=/dev/null bs=1G count=1 2>&1 | tail -1)"
  echo "dd 1M buffer: $(dd if=/dev/zero of=/dev/null bs=1M count=1024 2>&1 | tail -1)"
done
python3 - <<'PY'
import time, torch
for th in (1, 4, 16):
    torch.set_num_threads(th)
    for rep in range(2):
        t=time.perf_counter(); x=torch.empty(2**31, dtype=torch.uint8); x.fill_(1); t1=time.perf_counter()-t
        t=time.perf_counter(); x.fill_(2); t2=time.perf_counter()-t
        del x
        print(f"torch {th:2d} threads: fresh 2 GiB fill {t1*1e3:7.1f} ms, refill {t2*1e3:6.1f} ms, per fault {(t1-t2)/524288*1e6:5.2f} us")
PY
