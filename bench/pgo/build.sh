#!/usr/bin/env bash
# The profile-guided release build of the extension (`make setup`): build it instrumented, run
# the training workload (train.py) on it, merge the counts with the toolchain's llvm-profdata
# and build again with them, installed into the package. Branch layout and inlining that follow
# the real hot paths make ingest about 2-25% cheaper per byte (see train.py for what it learns).
#
# The instrumented build is trained where its wheel is unpacked, never installed: a failure or
# an interrupt leaves the installed extension as it was. Each build has a target directory of
# its own, so the plain `maturin develop` and `cargo test` builds of the dev loop keep theirs.
# RUSTFLAGS from the environment are kept (rustflags in cargo config files are not: cargo reads
# them only when RUSTFLAGS is unset). Exits non-zero on any failure (no llvm-profdata for this
# toolchain, say); the Makefile then falls back to the plain release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${VENV:-.venv}
python=$PWD/$venv/bin/python
maturin=$PWD/$venv/bin/maturin
rustc=${RUSTC:-rustc}

host=$("$rustc" -vV | sed -n 's/^host: //p')
profdata="$("$rustc" --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  timeout 60 rustup component add llvm-tools >&2 || true
fi
if [ ! -x "$profdata" ]; then
  echo "pgo: no llvm-profdata for $("$rustc" -V) (rustup component add llvm-tools)" >&2
  exit 1
fi

out=$PWD/target/pgo
rm -rf "$out/wheel" "$out/trained" "$out/profiles"
mkdir -p "$out/wheel" "$out/trained" "$out/profiles"
# Build scripts and proc macros are instrumented too: their counts go elsewhere.
CARGO_TARGET_DIR=$out/generate RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$out/build-scripts" \
  "$maturin" build --release -q --auditwheel skip -i "$python" -o "$out/wheel"
"$python" -m zipfile -e "$out"/wheel/*.whl "$out/trained"
export PYTHONPATH=$out/trained LLVM_PROFILE_FILE=$out/profiles/%m_%p.profraw
native=$("$python" -c 'import anomalyd._native as n; print(n.__file__)')
case $native in
  "$out/trained/"*) ;;
  *) echo "pgo: training would load $native, not the instrumented build" >&2; exit 1 ;;
esac
"$python" bench/pgo/train.py
unset PYTHONPATH LLVM_PROFILE_FILE
"$profdata" merge -o "$out/merged.profdata" "$out/profiles"
# rustc lists the profile among every crate's inputs, so cargo rebuilds whatever it changed.
CARGO_TARGET_DIR=$out/use RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$out/merged.profdata" \
  VIRTUAL_ENV=$PWD/$venv "$maturin" develop --release -q
