#!/usr/bin/env bash
# The cost of parity: packs DIR with `clc pack` and with `clc pack --parity 10%`, runs `par2 create -r10` on the
# plain pack's volumes in the same run, then deletes one middle data volume of each and times `clc repair`
# against `par2 repair`, checking both rebuilt it bit for bit. Prints a Markdown table with ratios to par2.
# Usage: scripts/bench-parity.sh DIR [extra clc pack flags…]   (default flags: --volume-size 16M)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/bench-parity.sh DIR [clc pack flags]" >&2; exit 2; }
SRC=$(realpath "$1"); shift
FLAGS=${*:---volume-size 16M}
command -v par2 >/dev/null || apt-get install -y par2 >/dev/null
cargo build --release --quiet
CLC=$PWD/target/release/clc
W=$(mktemp -d /tmp/clc-bench-parity.XXXXXX)
trap 'rm -rf "$W"' EXIT
tar cf - -C "$SRC" . | cat > /dev/null

declare -A T
run() {
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    bash -c "$*"
    t1=$(date +%s.%N)
    T[$name]=$(echo "$t1 - $t0" | bc -l)
}
size() { du -cb "$@" | tail -n1 | cut -f1; }

run pack "'$CLC' pack '$SRC' -o '$W/c' -q $FLAGS"
run pack_par "'$CLC' pack '$SRC' -o '$W/p' --parity 10% $FLAGS > '$W/pack.out' 2>/dev/null"
N=$(ls "$W"/c.[0-9]* | wc -l)
P=$(ls "$W"/p.p[0-9]* | wc -l)
# par2 -r10 is the asked-for peer; when one volume is more than 10% of the data it cannot rebuild a lost
# volume, so a second par2 set gets enough to rebuild P of the largest volumes (+3% for block rounding).
R=$(stat -c %s "$W"/c.[0-9]* | awk -v p="$P" '{ t += $1; if ($1 > m) m = $1 } END { print int(100 * p * m / t) + 3 }')
run par2_create "cd '$W' && par2 create -q -q -r10 c10.par2 c.[0-9]*"
run par2m_create "cd '$W' && par2 create -q -q -r$R cm.par2 c.[0-9]*"
K=$(printf "%03d" $(( (N + 1) / 2 )))   # a middle volume (the only one when N = 1)
cp "$W/c.$K" "$W/orig.$K"
rm "$W/c.$K" "$W/p.$K"
run clc_repair "'$CLC' repair '$W/p.001' > '$W/repair.out'"
run par2_repair "cd '$W' && par2 repair -q -q c10.par2 >/dev/null 2>&1 || true"
if [ -e "$W/c.$K" ]; then
    P10=ok; cmp "$W/orig.$K" "$W/c.$K"; rm "$W/c.$K"
else
    P10="cannot: a volume is > 10%"
fi
run par2m_repair "cd '$W' && par2 repair -q -q cm.par2 >/dev/null"
cmp "$W/orig.$K" "$W/p.$K" && cmp "$W/orig.$K" "$W/c.$K" || { echo "a rebuilt volume differs!" >&2; exit 1; }
# clc repair also verifies the whole archive afterwards (every frame decoded); its rebuild alone:
RB=$(sed -n 's/^repair took \([0-9.]*\) s.*/\1/p' "$W/repair.out")
RB=${RB:-0}

IN=$(du -sb --apparent-size "$SRC" | cut -f1)
DATA=$(size "$W"/c.[0-9]*)
CP=$(size "$W"/p.p[0-9]*)
PP=$(size "$W"/c10*.par2)
PM=$(size "$W"/cm*.par2)
# The parity pass as timed by pack itself (the difference of two whole packs is mostly noise).
CC=$(sed -n 's/^parity: .*, \([0-9.]*\) s$/\1/p' "$W/pack.out")
r() { echo "$1/$2" | bc -l; }
echo
echo "Source: $SRC, $(numfmt --to=iec "$IN") in $(find "$SRC" -type f | wc -l) files; $(nproc) cores;" \
     "clc flags: $FLAGS; $N data volumes ($(numfmt --to=iec "$DATA")), clc P = $P; volume .$K deleted"
printf "clc pack: %.2f s; clc pack --parity 10%%: %.2f s, of which the parity pass (create s below) %.2f s\n" \
    "${T[pack]}" "${T[pack_par]}" "$CC"
echo
echo "| | create s | parity MiB | parity / data | repair 1 volume s | create × par2 -r$R | size × par2 -r$R | repair × par2 -r$R |"
echo "|---|---|---|---|---|---|---|---|"
printf "| clc pack --parity 10%% (P=%d) | %.2f | %.1f | %.3f | %.2f (rebuild %.2f, then verify) | %.2f | %.2f | %.2f |\n" \
    "$P" "$CC" "$(r "$CP" 1048576)" "$(r "$CP" "$DATA")" "${T[clc_repair]}" "$RB" \
    "$(r "$CC" "${T[par2m_create]}")" "$(r "$CP" "$PM")" "$(r "${T[clc_repair]}" "${T[par2m_repair]}")"
printf "| par2 create -r10 | %.2f | %.1f | %.3f | %s (%.2f) | %.2f | %.2f | - |\n" \
    "${T[par2_create]}" "$(r "$PP" 1048576)" "$(r "$PP" "$DATA")" "$P10" "${T[par2_repair]}" \
    "$(r "${T[par2_create]}" "${T[par2m_create]}")" "$(r "$PP" "$PM")"
printf "| par2 create -r%d | %.2f | %.1f | %.3f | %.2f | 1.00 | 1.00 | 1.00 |\n" \
    "$R" "${T[par2m_create]}" "$(r "$PM" 1048576)" "$(r "$PM" "$DATA")" "${T[par2m_repair]}"
