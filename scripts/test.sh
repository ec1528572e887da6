#!/usr/bin/env bash
# Runs clc's whole test suite: installs fuse3 and PoCL if missing, starts a local S3 server (SeaweedFS), checks formatting and lints, then runs
# `cargo test` (unit, property, round-trip, damage, CL_Compressor, FUSE mount and OpenCL-on-PoCL tests), and
# the OpenCL tests once more with two PoCL devices for the multi-device path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
# In CI nothing may be skipped silently: root, FUSE, OpenCL (PoCL) and the S3 test server must be there
# (tests/common's `require` also fails on a missing root, FUSE or OpenCL when CI=true). The CL_Compressor
# archives the tests read are in the repository (tests/data/seed-archives).
if [ "${CI:-}" = true ]; then
    export CLC_REQUIRE_ROOT=1 CLC_REQUIRE_FUSE=1 CLC_REQUIRE_OPENCL=1 CLC_REQUIRE_S3=1
fi
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
# The S3 tests (tests/storage.rs, tests/s3_archive.rs) run against a local SeaweedFS on loopback: installed if missing and started
# here on free ports with fresh data, stopped when this script exits.
CLC_S3_PORT=$(scripts/s3-server.sh free-port)
CLC_S3_DIR=$(mktemp -d)
export CLC_S3_PORT CLC_S3_DIR
trap 'CLC_S3_GRACE=1 scripts/s3-server.sh stop || true; rm -rf "$CLC_S3_DIR"' EXIT
scripts/s3-server.sh start
cargo test --no-fail-fast 2>&1
if ls tests/gpu*.rs >/dev/null 2>&1; then
    POCL_DEVICES="pthread pthread" cargo test --test gpu 2>&1
    # The encoder's one-work-item parse (lz_parse), which the default (lz_parse_w) replaced: the same bytes.
    CLC_GPU_PARSE_LANES=1 cargo test --test gpu sb_encoder_bytes_are_the_recorded_ones 2>&1
    # The tables built by lz_build4 over a cleared table, which lz_build_l replaced: the same bytes.
    CLC_GPU_BUILD=4 cargo test --test gpu sb_encoder_bytes_are_the_recorded_ones 2>&1
fi
# Fuzzing is not part of CI: building the fuzz crate (nightly, AddressSanitizer, clc and all its
# dependencies) takes several minutes on two cores. CI runs the same target bodies on stable instead, over
# the committed seeds and regressions (tests/fuzz_regress.rs, part of `cargo test` above). CLC_FUZZ=1 adds a
# 10-second libFuzzer pass per target (docs/RELIABILITY.md).
if [ "${CLC_FUZZ:-}" = 1 ]; then
    scripts/fuzz.sh 10
fi
