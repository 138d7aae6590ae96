#!/usr/bin/env bash
# README's two commands, literally, as a newcomer runs them: in a fresh clone of this checkout's
# HEAD (committed work only) in a temporary directory, with a Python 3 that has no pytest first on
# PATH, no CARGO_TARGET_DIR, GOSTACK_LIBRARY or PYTHONPATH, and nothing built:
#     bash examples/demo.sh
#     bash .ci/test
# Both must succeed. The clone's .ci/test builds everything from scratch and does its own set-up
# (virtual environments with pytest under the clone's target/), so this takes as long as a first
# build plus the whole suite: 158-235 s in three runs on this 2-core machine (2026-12-03). Run by
# .ci/run after .ci/test; .ci/test does not run it (it runs .ci/test), and GOSTACK_IN_FRESH_CLONE
# guards against nesting.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
repo=$PWD

if [ -n "${GOSTACK_IN_FRESH_CLONE:-}" ]; then
  echo "check_fresh_clone.sh: already inside a fresh-clone check; not nesting another" >&2
  exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gostack-clone.XXXXXX")
log="$repo/target/fresh-clone.log"
mkdir -p "$repo/target"
trap 'rm -rf "$tmp"' EXIT
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "note: uncommitted changes are not in the clone; it checks HEAD ($(git rev-parse --short HEAD))"
fi

# A Python 3 without pytest, first on PATH as python3 and python.
python3 -m venv --without-pip "$tmp/bare-python"
bare="$tmp/bare-python/bin"
if "$bare/python3" -c 'import pytest' 2>/dev/null; then
  echo "the bare venv can import pytest: this check cannot show that the test command installs it"
  exit 1
fi
clean_env=(env -u CARGO_TARGET_DIR -u GOSTACK_LIBRARY -u PYTHONPATH -u VIRTUAL_ENV -u GOSTACK_TEST_PYTHONS
  GOSTACK_IN_FRESH_CLONE=1 PATH="$bare:$PATH")
# The CPythons the clone's test command will use must lack pytest too; where one has it (a
# developer's machine), the clone tests with the bare venv's Python only, and says so.
mapfile -t pythons < <("${clean_env[@]}" bash -c 'source .ci/lib.sh && gs_find_pythons && printf "%s\n" "${GS_PYTHONS[@]}"')
for py in "${pythons[@]}"; do
  if "$py" -c 'import pytest' 2>/dev/null; then
    echo "note: $py has pytest installed; the clone's tests use $bare/python3 (no pytest) instead"
    clean_env+=(GOSTACK_TEST_PYTHONS="$bare/python3")
    break
  fi
done

git clone -q --no-hardlinks "$repo" "$tmp/gostack"
if [ "$(git -C "$tmp/gostack" rev-parse HEAD)" != "$(git rev-parse HEAD)" ]; then
  echo "the clone's HEAD $(git -C "$tmp/gostack" rev-parse --short HEAD) is not this checkout's $(git rev-parse --short HEAD)"
  exit 1
fi
echo "== fresh clone of $(git -C "$tmp/gostack" rev-parse --short HEAD) in $tmp/gostack; output in $log"
start=$SECONDS
rc=0
(
  cd "$tmp/gostack"
  echo "\$ bash examples/demo.sh"
  "${clean_env[@]}" timeout 600 bash examples/demo.sh
  echo "\$ bash .ci/test"
  "${clean_env[@]}" timeout 1800 bash .ci/test
) >"$log" 2>&1 || rc=$?
took=$((SECONDS - start))
if [ $rc -ne 0 ]; then
  tail -n 150 "$log"
  echo "FAILED: README's two commands in a fresh clone (status $rc after $took s; whole output in $log)"
  echo "clone: 0 passed, 1 failed"
  exit 1
fi
# What the nested run concluded: its demo's last line and the test command's closing lines.
grep -E '^gs_run:|^== done|^   [A-Za-z].*: [0-9]+ s$|ran on CPython|^(install|wheel): ' "$log" | sed 's/^/  clone> /'
echo "README's two commands passed in a fresh clone ($took s)"
echo "clone: 1 passed, 0 failed"
