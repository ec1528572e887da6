#!/bin/bash
# Issue 5 run on the lent 16-core GPU machine: pack/extract of two trees against tar|lz4 -1 and
# tar|zstd -3 -T0 (binaries carried in bin/), CPU pack with 1..16 threads and with the GPU, peak RSS of
# every run, and pack/extract RSS for a 1 GB and an 8 GB input (memory must not grow with the input).
# How to run: cargo build --release here; put target/release/clc (stripped), this script, timed.py,
# gen_big.py, bin/{lz4,zstd} and the two Django sdists (django/*.tar.gz) in one carried folder and run
# this script from there. The log goes to $OUT/scaling.log.
set -u
D=$(dirname "$0"); cd "$D"; D=$PWD
exec > >(tee "$OUT/scaling.log") 2>&1
export PATH=$D/bin:$PATH
T="python3 $D/timed.py"
CLC=$D/clc
nproc; free -g | head -2; $CLC info --devices 2>&1 | head -8
mkdir -p /tmp/src && cp -a /usr/share/doc /tmp/src/doc && cp -a /usr/lib/python3* /tmp/src/ && cp -a /usr/include /tmp/src/
mkdir -p /tmp/ver && for f in "$D"/django/*.tar.gz; do tar xzf "$f" -C /tmp/ver; done
for tree in /tmp/ver /tmp/src; do
    echo; echo "=== $tree: $(du -sb --apparent-size $tree | cut -f1) bytes, $(find $tree -type f | wc -l) files"
    tar cf - -C $tree . | cat > /dev/null
    for i in 1 2; do
        echo "lz4 pack: $($T bash -c "tar cf - -C $tree . | lz4 -1 -q > /tmp/t.lz4")"
        echo "zstd pack: $($T bash -c "tar cf - -C $tree . | zstd -3 -T0 -q > /tmp/t.zst")"
    done
    echo "sizes: lz4 $(stat -c %s /tmp/t.lz4) zstd $(stat -c %s /tmp/t.zst)"
    for t in 1 2 4 8 16; do
        for i in 1 2; do rm -f /tmp/a.*; echo "clc pack cpu threads=$t: $($T $CLC pack $tree -o /tmp/a --cpu --threads $t -q)"; done
    done
    echo "size: clc $(cat /tmp/a.* | wc -c)"
    CLC_TRACE=1 $CLC pack $tree -o /tmp/a --cpu --force 2>&1 | grep -v "^dedup\|^packed" | tail -8
    for i in 1 2; do rm -f /tmp/g.*; echo "clc pack gpu: $($T $CLC pack $tree -o /tmp/g --gpu-device NVIDIA -q)"; done
    $CLC pack $tree -o /tmp/g --gpu-device NVIDIA --force | tail -3
    echo "size: clc gpu $(cat /tmp/g.* | wc -c)"
    for i in 1 2; do
        rm -rf /tmp/lx; mkdir /tmp/lx; echo "lz4 -d | tar x: $($T bash -c "lz4 -d -q < /tmp/t.lz4 | tar xf - -C /tmp/lx")"
        rm -rf /tmp/zx; mkdir /tmp/zx; echo "zstd -d | tar x: $($T bash -c "zstd -d -q < /tmp/t.zst | tar xf - -C /tmp/zx")"
        rm -rf /tmp/x; echo "clc extract cpu: $($T $CLC extract /tmp/a.001 -o /tmp/x --cpu -q)"
        rm -rf /tmp/y; echo "clc extract gpu: $($T $CLC extract /tmp/g.001 -o /tmp/y --gpu-device NVIDIA -q)"
    done
    diff -r --no-dereference $tree /tmp/x > /dev/null && echo "cpu archive restored identical"
    diff -r --no-dereference $tree /tmp/y > /dev/null && echo "gpu archive restored identical (GPU decode)"
    rm -rf /tmp/x /tmp/y /tmp/lx /tmp/zx /tmp/a.* /tmp/g.*
done
echo; echo "=== NUM_READERS on /tmp/ver, every core"
for r in 2 4 8 16; do
    printf "NUM_READERS = $r\n" > /tmp/r.cfg
    for i in 1 2 3; do rm -f /tmp/a.*; echo "readers=$r: $($T $CLC pack /tmp/ver -o /tmp/a --cpu -q --config /tmp/r.cfg)"; done
done
rm -f /tmp/a.*
echo; echo "=== memory against input size"
tar cf /tmp/data.tar -C /tmp/src .
for n in 3 26; do
    rm -rf /tmp/big; python3 $D/gen_big.py /tmp/data.tar /tmp/big $n
    echo "input: $(du -sb --apparent-size /tmp/big | cut -f1) bytes"
    rm -f /tmp/b.*; echo "clc pack cpu: $($T $CLC pack /tmp/big -o /tmp/b --cpu -q)"
    echo "archive: $(cat /tmp/b.* | wc -c) bytes"
    rm -rf /tmp/bx; echo "clc extract cpu: $($T $CLC extract /tmp/b.001 -o /tmp/bx --cpu -q)"
    [ $n = 3 ] && { diff -r /tmp/big /tmp/bx > /dev/null && echo "restored identical"; }
    rm -rf /tmp/bx
    rm -f /tmp/b.*; echo "clc pack gpu: $($T timeout 200 $CLC pack /tmp/big -o /tmp/b --gpu-device NVIDIA -q)"
    rm -f /tmp/b.*
done
echo "done"
