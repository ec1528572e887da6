#!/bin/bash
# The pack's fresh pages on 16 cores (run 104: 80-105 k first touches, 300-380 MiB peak, 23-30 ms outside the
# trace): the same build with mimalloc's options from the environment, one variant per entry of VARIANTS
# ("name=VAR=VALUE,VAR=VALUE ..."; "main" = as shipped; CLCBIN=FILE runs .dev-gpu-m/FILE instead of clc), packing the Rust docs and the mixed tree in turn,
# REPS rounds; wall and trace end from outside, CPU, peak RSS, minor faults. Medians last.
# Carry: .dev-gpu-m (clc), .dev-gpu-shared/rdoc.tar.xz; run(command="bash scripts/gpu/purge-run.sh", carry=[...]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/purge-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/purge.log") 2>&1
REPS=${REPS:-7}; W=/tmp/pu; rm -rf $W; mkdir -p $W/t $W/mixed
VARIANTS=${VARIANTS:-"main= nopurge=MIMALLOC_PURGE_DELAY=-1 purge1s=MIMALLOC_PURGE_DELAY=1000 glibc=CLC_PACK_MIMALLOC_FROM=65536"}
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
for t in $W/t/rdoc $W/mixed; do tar cf - -C $t . >/dev/null; done
echo "cores $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq $REPS); do
  for tree in $W/t/rdoc $W/mixed; do
    for v in $VARIANTS; do name=${v%%=*}; envs=${v#*=}; bin=clc
      case ",$envs," in *,CLCBIN=*) bin=${envs#*CLCBIN=}; bin=${bin%%,*};; esac
      rm -f $W/a.*; echo "R $(basename $tree) $name $(env CLC_TRACE=1 ${envs//,/ } python3 "$R/scripts/gpu/traced.py" $D/$bin pack $tree -o $W/a --cpu -q)"
    done
  done
done
echo "== medians of $REPS: wall ms, CPU ms, peak RSS MiB, minor faults, trace end ms"
python3 - "$OUT/purge.log" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for l in open(sys.argv[1]):
    p = l.split()
    if p[:1] == ["R"] and len(p) == 8: d[(p[1], p[2])].append([float(x) for x in p[3:]])
for k, v in sorted(d.items()):
    m = [st.median(x[i] for x in v) for i in range(5)]
    print(f"{k[0]:6} {k[1]:8} wall {m[0]:7.1f}  cpu {m[1]:6.0f}  rss {m[2]:5.0f}  minflt {m[3]:7.0f}  trace {m[4]:6.1f}  outside {m[0]-m[4]:5.1f}")
PY
