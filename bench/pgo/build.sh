#!/usr/bin/env bash
# The profile-guided release build of the extension (`make setup`): build it instrumented, run
# the training workload (train.py), merge the counts with the toolchain's llvm-profdata and
# build again with them. Branch layout and inlining that follow the real hot paths make the
# ingest loop about 5-20% cheaper per byte (see bench/pgo/train.py for what it learns from).
#
# Each build has a target directory of its own, so the plain `maturin develop` and `cargo test`
# builds of the dev loop keep theirs. Exits non-zero on any failure (no llvm-tools to be had,
# say); the Makefile then falls back to the plain release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${VENV:-.venv}

host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  timeout 120 rustup component add llvm-tools >&2
fi

out=$PWD/target/pgo
rm -rf "$out/data"
mkdir -p "$out/data"
develop() {
  VIRTUAL_ENV=$PWD/$venv "$venv/bin/maturin" develop --release -q
}
CARGO_TARGET_DIR=$out/generate RUSTFLAGS="-Cprofile-generate=$out/data" develop
"$venv/bin/python" bench/pgo/train.py
"$profdata" merge -o "$out/merged.profdata" "$out/data"
# Cargo does not track the profile's content: rebuild the crate itself with the new one.
CARGO_TARGET_DIR=$out/use cargo clean -q --release -p anomalyd-native
CARGO_TARGET_DIR=$out/use RUSTFLAGS="-Cprofile-use=$out/merged.profdata" develop
