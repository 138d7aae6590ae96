#!/usr/bin/env bash
# The Python wheel, as a user without Rust gets it:
#   - `pip wheel ./python` makes one gostack-<version>-py3-none-linux_x86_64.whl holding
#     gostack/libgostack.so (a platform wheel, not py3-none-any)
#   - on each CPython found (.ci/lib.sh): a fresh virtual environment, the wheel installed into it,
#     then with no cargo or rustc on PATH, no PYTHONPATH or GOSTACK_LIBRARY, and outside the
#     checkout: `python -m gostack` (version and self-check), every python/examples/*.py, and the
#     library loaded from inside the virtual environment.
# Part of .ci/test; 22-32 s here with three CPythons (the wheel build ~15 s, ~5 s per CPython).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
repo=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gostack-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
version=$(make -s --no-print-directory print-version)
gs_find_pythons
builder_ver=$(gs_py_version "${GS_PYTHONS[0]}")
builder=target/venv/${builder_ver%.*}   # the venv .ci/test made; it has pip
gs_venv "${GS_PYTHONS[0]}" "$builder" python/requirements-test.txt

build_wheel() {
  "$builder/bin/python" -m pip wheel -q --no-deps ./python -w "$tmp/wheels" >"$tmp/wheel.log" 2>&1 ||
    { cat "$tmp/wheel.log"; return 1; }
  local whl
  whl=$(ls "$tmp"/wheels/*.whl)
  echo "built $(basename "$whl")"
  [ "$(basename "$whl")" = "gostack-$version-py3-none-linux_x86_64.whl" ]
  "$builder/bin/python" - "$whl" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert "gostack/libgostack.so" in names, names
assert "gostack/__main__.py" in names, names
EOF
}

# run_from_wheel PYTHON: the wheel in a fresh venv, used with no Rust toolchain reachable.
run_from_wheel() {
  local py="$1" ver venv
  ver=$(gs_py_version "$py")
  venv="$tmp/venv-$ver"
  # Without pip of its own (ensurepip takes most of a venv's set-up time): the builder's pip
  # installs into it (pip >= 22.3: --python).
  "$py" -m venv --without-pip "$venv"
  "$builder/bin/python" -m pip --python "$venv/bin/python" install -q --no-index --no-deps "$tmp"/wheels/*.whl
  mkdir -p "$tmp/elsewhere"
  cp python/examples/*.py "$tmp/elsewhere/"
  (
    cd "$tmp/elsewhere"
    unset PYTHONPATH GOSTACK_LIBRARY VIRTUAL_ENV
    PATH="$venv/bin:$(gs_path_without_cargo)"
    export PATH
    if command -v cargo || command -v rustc; then echo "cargo is still on PATH"; exit 1; fi
    python -m gostack
    [ "$(python -m gostack --version)" = "$version" ]
    python -c 'import gostack, sys; p = gostack.library_path; print("library:", p); assert p.startswith(sys.prefix), p'
    for ex in *.py; do
      echo "-- $ex"
      timeout 120 python "$ex" >"$ex.out"
      tail -n 2 "$ex.out"
    done
  )
}

echo "== wheel checks (gostack $version, $tmp)"
gs_check "pip wheel ./python: py3-none-linux_x86_64 with libgostack.so" build_wheel
for py in "${GS_PYTHONS[@]}"; do
  gs_check "wheel in a fresh venv of CPython $(gs_py_version "$py"), no cargo on PATH: python -m gostack, examples" run_from_wheel "$py"
done
gs_summary wheel
