#!/usr/bin/env bash
# Builds the source trees of the codec benchmark (docs/BENCHMARKS.md §8) under ${1:-/tmp/codec-trees} as hard-link
# copies (no data copied; same filesystem as the sources): py2 = two CPython installs side by side (pyenv's 3.12.1
# and 3.13.0), mixed = /usr/share/doc + /usr/lib/python3.11 + /usr/include, rdoc = std and alloc docs of two Rust
# toolchains (1.95.0 and nightly). /usr/lib/python3.11 and /usr/include are used as they are.
set -euo pipefail
D=${1:-/tmp/codec-trees}
R=~/.rustup/toolchains
mkdir -p "$D"/py2 "$D"/mixed "$D"/rdoc
[ -e "$D/py2/3.12.1" ] || cp -al ~/.pyenv/versions/3.12.1 ~/.pyenv/versions/3.13.0 "$D/py2/"
[ -e "$D/mixed/doc" ] || { cp -al /usr/share/doc "$D/mixed/doc"; cp -al /usr/lib/python3.11 "$D/mixed/python3.11";
                           cp -al /usr/include "$D/mixed/include"; }
for v in 1.95.0 nightly; do
    for c in std alloc; do
        [ -e "$D/rdoc/$c-${v%%.0}" ] || cp -al "$R/$v-x86_64-unknown-linux-gnu/share/doc/rust/html/$c" "$D/rdoc/$c-${v%%.0}"
    done
done
du -sh "$D"/*
