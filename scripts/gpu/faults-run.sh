#!/bin/bash
# Which stage of a 16-core `--cpu` pack touches fresh pages (issues 17 and 21; runs 104-106 left the ~110 k
# first touches of a Rust-doc pack unexplained): the Rust docs and the mixed tree packed with CLC_TRACE=1,
# whose stage table ends with each stage's minor faults (a thread's faults since its previous record) and
# the process's total, REPS times each with every variant of VARIANTS ("name=ENV,ENV" pairs; `main` runs
# as shipped; BIN=NAME in a variant's list runs .dev-gpu-m/NAME instead of .dev-gpu-m/clc, CPUS=LIST runs
# it under `taskset -c LIST`). Every pack's whole trace stays in $OUT/traces.tar.gz.
# Carry: .dev-gpu-m (clc), .dev-gpu-shared/rdoc.tar.xz;
# run(command="bash scripts/gpu/faults-run.sh", carry=[".dev-gpu-m", ".dev-gpu-shared"]).
set -u
R=$(cd "$(dirname "$0")/../.." && pwd); D=$R/.dev-gpu-m; OUT=${OUT:-/tmp/faults-out}; mkdir -p "$OUT"
exec > >(tee "$OUT/faults.log") 2>&1
REPS=${REPS:-3}; W=/tmp/fr; rm -rf $W; mkdir -p $W/t $W/mixed
VARIANTS=${VARIANTS:-"main= glibc=CLC_PACK_MIMALLOC_FROM=65536 t2=CLC_THREADS_ARG=2"}
tar xJf "$R/.dev-gpu-shared/rdoc.tar.xz" -C $W/t
cp -a /usr/share/doc $W/mixed/doc; cp -a /usr/lib/python3* $W/mixed/ 2>/dev/null; cp -a /usr/include $W/mixed/
for t in $W/t/rdoc $W/mixed; do tar cf - -C $t . >/dev/null; done
echo "cores $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
# take KEY: when the variant's list has KEY=VALUE, VALUE in $val and the pair out of $envs.
take() {
    [[ ,$envs, =~ ,$1=([^,]+), ]] || return 1
    val=${BASH_REMATCH[1]}; envs=$(echo ",$envs," | sed "s/,$1=$val,/,/; s/^,//; s/,$//")
}
for tree in $W/t/rdoc $W/mixed; do n=$(basename $tree)
  for i in $(seq $REPS); do
    for v in $VARIANTS; do name=${v%%=*}; envs=${v#*=}; targs=()
      [[ $envs == CLC_THREADS_ARG=* ]] && { targs=(--threads ${envs#CLC_THREADS_ARG=}); envs=; }
      bin=clc; take BIN && bin=$val
      pin=(); take CPUS && pin=(taskset -c "$val")
      rm -f /dev/shm/a.*
      env ${envs//,/ } CLC_TRACE=1 "${pin[@]}" /usr/bin/time -f "T %e s %U u %S sys %M KB %R minflt" $D/$bin pack $tree -o /dev/shm/a --cpu -q "${targs[@]}" 2>$OUT/$n-$name-$i.txt
      echo "== $n $name $i: $(grep '^T ' $OUT/$n-$name-$i.txt)"
      grep -E "trace: (stage|[A-Z][a-zA-Z]+ +[0-9])|minor faults" $OUT/$n-$name-$i.txt | sed 's/clc: trace: //'
    done
  done
done
rm -f /dev/shm/a.*
echo "== table: medians of $REPS: minor faults per stage, the process's, peak RSS MiB, wall ms"
python3 - "$OUT" <<'PY'
import sys, os, re, statistics as st, collections
d = collections.defaultdict(list)
for f in sorted(os.listdir(sys.argv[1])):
    m = re.match(r"(\w+)-(\w+)-(\d+)\.txt$", f)
    if not m: continue
    for l in open(os.path.join(sys.argv[1], f)):
        p = l.replace("clc: trace: ", "").split()
        if len(p) >= 6 and p[0][0].isupper() and p[1][0].isdigit() and ".." in p[2]:
            d[(m[1], m[2], p[0])].append(int(p[-1]))
        elif l.startswith("T "):
            d[(m[1], m[2], "wall_ms")].append(float(p[1]) * 1000); d[(m[1], m[2], "rss_MiB")].append(int(p[7]) / 1024)
        elif "minor faults of the process" in l:
            d[(m[1], m[2], "process")].append(int(p[-1]))
keys = sorted({(k[0], k[1]) for k in d})
stages = sorted({k[2] for k in d}, key=lambda s: (s in ("wall_ms", "rss_MiB", "process"), s))
print("tree variant " + " ".join(stages))
for k in keys:
    print(k[0], k[1], " ".join(f"{st.median(d[(k[0], k[1], s)]):.0f}" if d.get((k[0], k[1], s)) else "-" for s in stages))
PY
(cd "$OUT" && tar czf traces.tar.gz -- *-*-*.txt && rm -f -- *-*-*.txt)
