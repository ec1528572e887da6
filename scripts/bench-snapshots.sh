#!/usr/bin/env bash
# Second backups: `clc pack --append` against `borg create` and `restic backup` (Debian packages; install
# them with `scripts/deps.sh bench`), one run, the same tree for all three (docs/BENCHMARKS.md §9).
#
# Usage: scripts/bench-snapshots.sh DIR [WORK]
#   DIR is copied once to WORK/tree (so every tool sees the same inodes and times); then, for each tool:
#   1. first backup, 2. second backup of the unchanged tree, 3. a backup after scripts/mutate-tree.py has
#   changed 1 % of the files (edits, additions, deletions; seeded, so every tool sees the same edit, which
#   is made once, before the third backups).
# Prints one table: seconds and bytes added by each backup. Bytes added are measured as the growth of the
# repository (du --apparent-size --bytes; for clc the new volumes). Defaults of every tool: clc LZ_EXT3
# frames, borg lz4, restic (repository v2) zstd auto; borg and restic without encryption where they allow it
# (restic 0.14 always encrypts; RESTIC_PASSWORD is set).
set -euo pipefail
SRC=${1:?usage: $0 DIR [WORK]}
W=${2:-/tmp/bench-snapshots}
HERE=$(cd "$(dirname "$0")/.." && pwd)
CLC=${CLC:-$HERE/target/release/clc}
[ -x "$CLC" ] || (cd "$HERE" && cargo build --release --quiet)
command -v borg >/dev/null && command -v restic >/dev/null || { echo "needs borg and restic: scripts/deps.sh bench" >&2; exit 1; }
rm -rf "$W"; mkdir -p "$W"
cp -a "$SRC" "$W/tree"
T=$W/tree
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache BORG_BASE_DIR=$W/borg-base
size() { # apparent bytes of the paths that exist (0 when none does)
    local f=() p
    for p in "$@"; do [ -e "$p" ] && f+=("$p"); done
    [ ${#f[@]} -gt 0 ] || { echo 0; return; }
    du -s --apparent-size --bytes "${f[@]}" | awk '{s+=$1} END {print s+0}'
}
now() { date +%s.%N; }
declare -A SEC BYTES
run() { # tool step command...
    local tool=$1 step=$2; shift 2
    local before after t0 t1
    case $tool in
        clc) before=$(size "$W"/clc/b.[0-9]*) ;;
        *) before=$(size "$W/$tool") ;;
    esac
    t0=$(now); "$@" >"$W/$tool.$step.log" 2>&1; t1=$(now)
    case $tool in
        clc) after=$(size "$W"/clc/b.[0-9]*) ;;
        *) after=$(size "$W/$tool") ;;
    esac
    SEC[$tool.$step]=$(echo "$t1 - $t0" | bc -l)
    BYTES[$tool.$step]=$((after - before))
}
mkdir -p "$W/clc"
borg init --encryption=none "$W/borg"
restic init -q -r "$W/restic" >/dev/null
sync
for step in 1 2; do
    run clc $step "$CLC" pack "$T" -o "$W/clc/b" --append -q
    run borg $step borg create "$W/borg::s$step" "$T"
    run restic $step restic -q -r "$W/restic" backup "$T"
done
python3 "$HERE/scripts/mutate-tree.py" "$T" 1 >"$W/mutate.log"
sync
run clc 3 "$CLC" pack "$T" -o "$W/clc/b" --append -q
run borg 3 borg create "$W/borg::s3" "$T"
run restic 3 restic -q -r "$W/restic" backup "$T"
echo "tree: $SRC, $(size "$T") bytes in $(find "$T" -type f | wc -l) files; $(cat "$W/mutate.log")"
echo "borg $(borg --version | awk '{print $2}'), restic $(restic version | awk '{print $2}'), clc $(git -C "$HERE" rev-parse --short HEAD); $(nproc) cores"
printf '| tool | first s | first bytes | unchanged s | unchanged bytes | 1 %% changed s | 1 %% changed bytes |\n|---|---|---|---|---|---|---|\n'
for tool in clc borg restic; do
    printf '| %s | %.2f | %s | %.2f | %s | %.2f | %s |\n' "$tool" \
        "${SEC[$tool.1]}" "${BYTES[$tool.1]}" "${SEC[$tool.2]}" "${BYTES[$tool.2]}" "${SEC[$tool.3]}" "${BYTES[$tool.3]}"
done
