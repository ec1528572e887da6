#!/usr/bin/env bash
# `clc extract` of one large file against `lz4 -d` of the same file (issue 16: extract of one big file
# uses every core), and the v2 sub-block cost on it. Both write to the same file system; the page cache
# is warm (the archive and the .lz4 are read once before timing). Medians of REPS (default 5).
#
#   scripts/bench-extract-big.sh FILE [WORKDIR]
set -euo pipefail
F=$(realpath "${1:?usage: $0 FILE [WORKDIR]}")
W=${2:-$(mktemp -d)}
CLC=${CLC:-target/release/clc}
REPS=${REPS:-5}
mkdir -p "$W/src"
ln -f "$F" "$W/src/$(basename "$F")" 2>/dev/null || cp "$F" "$W/src/"
rm -f "$W"/a.* "$W"/a1.* "$W/f.lz4"
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.3f\n", b-a}'; }
med() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "pack v2 (LZ_EXT3_SB): $(t "$CLC" pack "$W/src" -o "$W/a" --cpu -q) s, $(du -cb "$W"/a.* | tail -1 | cut -f1) bytes"
printf 'SUBBLOCK_SIZE = 0\n' > "$W/v1.txt"
echo "pack v1 (LZ_EXT3):    $(t "$CLC" pack "$W/src" -o "$W/a1" --cpu -q --config "$W/v1.txt") s, $(du -cb "$W"/a1.* | tail -1 | cut -f1) bytes"
echo "lz4 -1:               $(t lz4 -1 -q -f "$F" "$W/f.lz4") s, $(stat -c %s "$W/f.lz4") bytes"
cat "$W"/a.* "$W/f.lz4" > /dev/null
for i in $(seq "$REPS"); do
    rm -rf "$W/x"; t "$CLC" extract "$W/a.001" -o "$W/x" -q >> "$W/clc.t"
    rm -f "$W/out"; t lz4 -d -q -f "$W/f.lz4" "$W/out" >> "$W/lz4.t"
done
cmp "$W/x/$(basename "$F")" "$F" && cmp "$W/out" "$F" && echo "both restore the file"
echo "clc extract (median of $REPS): $(med < "$W/clc.t") s"
echo "lz4 -d      (median of $REPS): $(med < "$W/lz4.t") s"
rm -rf "$W/x" "$W/out" "$W/clc.t" "$W/lz4.t"
