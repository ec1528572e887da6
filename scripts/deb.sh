#!/usr/bin/env bash
# Builds the Debian package target/debian/clc_VERSION-1_ARCH.deb with `cargo deb` from Cargo.toml's
# [package.metadata.deb]: the release binary, its man pages (clc.1, clc-pack.1, …) and its bash, zsh and fish
# completions, which the binary itself writes first under target/assets (`clc man`, `clc completions`).
# Needs cargo-deb (`cargo install cargo-deb`) and dpkg-dev (dpkg-shlibdeps, for the package's dependencies).
# Install the result with `sudo apt install ./target/debian/clc_*.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deb --version >/dev/null 2>&1; then
    echo "scripts/deb.sh: cargo-deb is missing; install it with: cargo install cargo-deb" >&2
    exit 2
fi
echo "scripts/deb.sh: building clc (release; a few minutes on 2 cores the first time)" >&2
cargo build --release --quiet
A=target/assets
rm -rf "$A"
mkdir -p "$A/man" "$A/completions"
target/release/clc man "$A/man" >/dev/null
target/release/clc completions bash >"$A/completions/clc.bash"
target/release/clc completions zsh >"$A/completions/_clc"
target/release/clc completions fish >"$A/completions/clc.fish"
cargo deb --no-build "$@"
