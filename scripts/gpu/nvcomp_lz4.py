# nvCOMP LZ4 on the same tar, device-resident, timed with CUDA events (scripts/gpu/nvcomp_bench.py, LZ4 only).
import sys
import cupy as cp
from nvidia import nvcomp
data = open(sys.argv[1], "rb").read()
n = len(data)
src = cp.asarray(bytearray(data), dtype=cp.uint8)
arr = nvcomp.as_array(src)
def timed(f, reps=5):
    f(); cp.cuda.Device().synchronize()
    best = 1e9; out = None
    for _ in range(reps):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record(); out = f(); e.record(); e.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(s, e) / 1e3)
    return best, out
for algo in sys.argv[2:] or ["LZ4"]:
    try:
        codec = nvcomp.Codec(algorithm=algo)
        tc, comp = timed(lambda: codec.encode(arr))
        size = comp.buffer_size if hasattr(comp, "buffer_size") else cp.asarray(comp).nbytes
        td, dec = timed(lambda: codec.decode(comp))
        ok = bool((cp.asarray(dec).view(cp.uint8)[:n] == src).all())
        print(f"nvcomp {algo:8s} compress {n/tc/1e9:7.2f} GB/s  decompress {n/td/1e9:7.2f} GB/s  ratio {size/n:.4f}  roundtrip_ok={ok}")
    except Exception as ex:
        print(f"nvcomp {algo}: error {type(ex).__name__}: {ex}")
