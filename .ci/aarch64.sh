#!/usr/bin/env bash
# aarch64 Linux without ARM hardware (issue #17): builds the library for
# aarch64-unknown-linux-gnu with Debian's cross compiler and runs the Rust tests (unit tests,
# tests/*.rs) and the C test suite (tests/c_tests.rs) under qemu-user; then cross-builds the
# Python wheel and checks its tag and that the bundled libgostack.so is aarch64.
#
#   bash .ci/aarch64.sh
#
# Needs: rustup (adds the target), and Debian/Ubuntu's gcc-aarch64-linux-gnu (with
# libc6-dev-arm64-cross) and qemu-user, installed here when missing (apt-get, as root).
# What qemu-user cannot run, and why, is listed in tests/c_tests.rs (NOT_UNDER_EMULATOR).
# Timing-based figures under qemu mean nothing (docs/PERFORMANCE.md).
# Part of .ci/run; 6-7 min on 2 shared cores with the build cached (the C suite under qemu is
# ~4-6 min of it), 1-2 min more for a fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
TARGET=aarch64-unknown-linux-gnu
t0=$SECONDS

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v file >/dev/null || need+=(file)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need[@]}"
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"

# cargo's and the cc crate's conventions; tests/c_tests.rs reads the same variables to build
# and run the C programs.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"

echo "== cargo test --release --target $TARGET (under qemu-aarch64)"
cargo test --release --target "$TARGET"
# cargo test leaves the library in deps/ only (a fresh clone has no other copy): this puts it in
# release/ (nothing is rebuilt).
cargo build --release --target "$TARGET"
lib=target/$TARGET/release/libgostack.so
file "$lib" | grep -q "ARM aarch64" || { file "$lib"; echo "$lib is not an aarch64 library" >&2; exit 1; }
t_tests=$((SECONDS - t0))

# The wheel (python/setup.py): GOSTACK_CARGO_TARGET makes it cargo build --target and bundle that
# library; the platform tag comes from the library's architecture.
t=$SECONDS
echo "== pip wheel ./python for $TARGET"
gs_find_pythons
py=${GS_PYTHONS[0]}
venv=target/venv/$(gs_py_version "$py" | cut -d. -f1,2)
gs_venv "$py" "$venv" python/requirements-test.txt
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gostack-wheel-aarch64.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOSTACK_CARGO_TARGET=$TARGET "$venv/bin/python" -m pip wheel -q --no-deps ./python -w "$tmp/wheels"
whl=$(ls "$tmp"/wheels/*.whl)
version=$(make -s --no-print-directory print-version)
echo "built $(basename "$whl")"
[ "$(basename "$whl")" = "gostack-$version-py3-none-linux_aarch64.whl" ] ||
  { echo "wrong wheel name/tag: $(basename "$whl")" >&2; exit 1; }
(cd "$tmp" && "$OLDPWD/$venv/bin/python" -m zipfile -e "$whl" unpacked)
info=$(file "$tmp/unpacked/gostack/libgostack.so")
echo "$info"
grep -q "ARM aarch64" <<<"$info" || { echo "the wheel's libgostack.so is not aarch64" >&2; exit 1; }
grep -q "^Tag: py3-none-linux_aarch64$" "$tmp"/unpacked/gostack-*.dist-info/WHEEL ||
  { cat "$tmp"/unpacked/gostack-*.dist-info/WHEEL; echo "WHEEL has the wrong tag" >&2; exit 1; }
echo "aarch64: tests under qemu ${t_tests} s, wheel $((SECONDS - t)) s, total $((SECONDS - t0)) s"
