#!/bin/bash
# gpu-enc's H200 run (issue 17 / format v2): the GPU encoder writing LZ_EXT3_SB frames. Kernel GB/s
# (gpu_bench, SUBBLOCK_SIZE 64 KiB and 0) beside nvCOMP LZ4 on the same tar; `clc pack` of the Rust-doc
# tree with --cpu and on the GPU (sizes, times); the GPU-made archive extracted with --cpu and with the
# GPU decoder, compared byte-exact. Carried: .dev-gpu-gpu-enc (clc, gpu_bench, timed.py, nvcomp_bench.py,
# this file) and .dev-gpu-shared (rdoc.tar.xz, nvCOMP wheels). Log: $OUT/run.log.
# Copy it into the carried folder as run.sh. To try it on PoCL first: OUT=DIR DEV=pthread SH=DIR_WITH_A_SMALL_rdoc.tar.xz
# (SBS="" leaves the gpu_bench rows out).
set -u
D=$(cd "$(dirname "$0")" && pwd); R=$(cd "$D/.." && pwd)
exec > >(tee "$OUT/run.log") 2>&1
export CLC_CACHE_DIR=/tmp/clc-cache
T="python3 $D/timed.py"; CLC=$D/clc; DEV=${DEV:-NVIDIA}; SH=${SH:-$R/.dev-gpu-shared}
nproc; nvidia-smi -L 2>/dev/null; nvidia-smi --query-gpu=clocks.sm,clocks.mem --format=csv 2>/dev/null
mkdir -p /tmp/ge && tar xJf $SH/rdoc.tar.xz -C /tmp/ge
TREE=/tmp/ge/rdoc; echo "tree: $(du -sb --apparent-size $TREE | cut -f1) bytes, $(find $TREE -type f | wc -l) files"
(cd $TREE && find . -type f | awk -F/ '{k=""; for(i=3;i<=NF;i++) k=k"/"$i; print k"\t"$0}' | sort | cut -f2 > /tmp/ge/list && tar cf /tmp/ge/rdoc.tar -T /tmp/ge/list); ls -l /tmp/ge/rdoc.tar
( [ -d $SH/whl ] && python3 -m pip install -q --no-index --no-deps --target /tmp/ge/site $SH/whl/*.whl > /tmp/ge/pip.log 2>&1 ) &
PIP=$!
for sb in ${SBS-65536 0}; do
  echo "== gpu_bench /tmp/ge/rdoc.tar --device $DEV --batch 32 --compress-only --repeat 3 --subblock-size $sb"
  timeout 60 $D/gpu_bench /tmp/ge/rdoc.tar --device $DEV --batch 32 --compress-only --repeat 3 --subblock-size $sb
done
wait $PIP
echo "== nvCOMP"; [ -d /tmp/ge/site ] && PYTHONPATH=/tmp/ge/site timeout 60 python3 $D/nvcomp_bench.py /tmp/ge/rdoc.tar LZ4
echo "== pack (rdoc tree)"
for i in 1 2; do
  rm -f /tmp/ge/c.*; echo "pack --cpu: $($T $CLC pack $TREE -o /tmp/ge/c --cpu -q)"
  rm -f /tmp/ge/g.*; echo "pack --gpu-device $DEV: $($T $CLC pack $TREE -o /tmp/ge/g --gpu-device $DEV -q)"
done
echo "sizes: cpu $(cat /tmp/ge/c.* | wc -c) gpu $(cat /tmp/ge/g.* | wc -c)"
$CLC info /tmp/ge/g.001 | grep -i "codec\|frames\|sub-block\|GPU"
echo "== extract the GPU-made archive"
rm -rf /tmp/ge/x1 /tmp/ge/x2
echo "extract --cpu: $($T $CLC extract /tmp/ge/g.001 -o /tmp/ge/x1 --cpu -q)"
echo "extract --gpu-device $DEV: $($T $CLC extract /tmp/ge/g.001 -o /tmp/ge/x2 --gpu-device $DEV)"
diff -r $TREE /tmp/ge/x1 > /dev/null && echo "cpu extract: byte-exact" || echo "cpu extract: DIFFERS"
diff -r $TREE /tmp/ge/x2 > /dev/null && echo "gpu extract: byte-exact" || echo "gpu extract: DIFFERS"
$CLC verify /tmp/ge/g.001 -q && echo "verify: ok"
echo "== summary"
grep -E "^(tree|codec|compress |gpu / cpu|clc cpu|compress kernel|nvcomp|pack |sizes|extract |cpu extract|gpu extract|verify|GPU decoded|== gpu_bench)" $OUT/run.log
