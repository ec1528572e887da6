#!/bin/bash
# CHUNK_FILES_FROM on the lent machine (issue 21, docs/GPU.md run 102): clc-main and clc packing the Rust
# docs, the mixed tree (/usr/share/doc, python3, /usr/include) and python3 alone, in turn with
# `mksquashfs -comp lz4 -processors N`, REPS rounds, on every core and on two pinned cores. Now the pack
# half of scripts/gpu/enc-run.sh (one copy of the loop), with no encoder builds.
# run(command="bash scripts/gpu/whole-run.sh", carry=[".dev-gpu-m", ".dev-gpu-shared"]).
ENCS= BUILDS=${BUILDS:-"clc-main clc"} REPS=${REPS:-7} OUT=${OUT:-/tmp/whole-out} \
    exec bash "$(dirname "$0")/enc-run.sh"
