# nvCOMP on the same bytes as clc's benchmarks: the file is copied to the device once, then each codec
# compresses and decompresses it device-resident, timed with CUDA events (best of 5 after a warm-up), and
# the round trip is checked. The one nvCOMP script of scripts/gpu/ (nvcomp_lz4.py, its LZ4-only copy, is
# folded in here: `nvcomp_bench.py FILE LZ4`).
#   python3 nvcomp_bench.py FILE [ALGO[,ALGO...] ...]   (default LZ4,Snappy,Zstd,Deflate)
# Needs cupy (on the lent machines' image) and the nvidia-nvcomp-cu13 + nvidia-libnvcomp-cu13 wheels:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .dev-gpu-shared/whl/*.whl
#   PYTHONPATH=/tmp/site python3 nvcomp_bench.py /tmp/rdoc.tar LZ4
import sys
import cupy as cp
from nvidia import nvcomp


def timed(f, reps=5):
    f()
    cp.cuda.Device().synchronize()
    best, out = 1e9, None
    for _ in range(reps):
        s, e = cp.cuda.Event(), cp.cuda.Event()
        s.record()
        out = f()
        e.record()
        e.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(s, e) / 1e3)
    return best, out


def main():
    data = open(sys.argv[1], "rb").read()
    n = len(data)
    src = cp.asarray(bytearray(data), dtype=cp.uint8)
    arr = nvcomp.as_array(src)
    algos = [a for arg in sys.argv[2:] for a in arg.split(",") if a] or ["LZ4", "Snappy", "Zstd", "Deflate"]
    for algo in algos:
        try:
            codec = nvcomp.Codec(algorithm=algo)
            tc, comp = timed(lambda: codec.encode(arr))
            size = comp.buffer_size if hasattr(comp, "buffer_size") else cp.asarray(comp).nbytes
            td, dec = timed(lambda: codec.decode(comp))
            ok = bool((cp.asarray(dec).view(cp.uint8)[:n] == src).all())
            print(f"nvcomp {algo:8s} compress {n/tc/1e9:7.2f} GB/s  decompress {n/td/1e9:7.2f} GB/s  "
                  f"ratio {size/n:.4f}  roundtrip_ok={ok}")
        except Exception as ex:
            print(f"nvcomp {algo}: error {type(ex).__name__}: {ex}")


main()
