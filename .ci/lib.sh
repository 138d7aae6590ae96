# Sourced by the .ci scripts: which CPythons to test, their virtual environments, and a tally of
# checks whose closing line ("<word>: N passed, N failed, N skipped") CI reads like a test runner's.

# gs_find_pythons: sets the array GS_PYTHONS to the interpreters to test: for each of CPython
#   3.11, 3.12 and 3.13, the newest under pyenv ($PYENV_ROOT or ~/.pyenv), else python3.X on PATH;
#   then python3 when its version is none of those. So at least python3.
# $GOSTACK_TEST_PYTHONS (space-separated paths) overrides the search.
gs_find_pythons() {
  GS_PYTHONS=()
  if [ -n "${GOSTACK_TEST_PYTHONS:-}" ]; then
    read -r -a GS_PYTHONS <<<"$GOSTACK_TEST_PYTHONS"
    return
  fi
  local root="${PYENV_ROOT:-$HOME/.pyenv}" v p found seen=" "
  for v in 3.11 3.12 3.13; do
    found=
    # Plain X.Y.Z versions only (not 3.13.0t, free-threaded), the newest first.
    for p in $(ls -d "$root"/versions/$v.* 2>/dev/null | grep -E "/$v\.[0-9]+$" | sort -V -r) ; do
      if "$p/bin/python$v" -c '' 2>/dev/null; then found="$p/bin/python$v"; break; fi
    done
    if [ -z "$found" ] && p=$(command -v "python$v") && "$p" -c '' 2>/dev/null; then found="$p"; fi
    if [ -n "$found" ]; then GS_PYTHONS+=("$found"); seen+="$v "; fi
  done
  if p=$(command -v python3) && v=$("$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); then
    [[ "$seen" == *" $v "* ]] || GS_PYTHONS+=("$p")
  fi
  if [ ${#GS_PYTHONS[@]} -eq 0 ]; then
    echo "no Python 3 found (python3, python3.11-3.13, pyenv): install Python 3 (3.11 to 3.13)" >&2
    return 1
  fi
}

# gs_py_version PYTHON: "3.12.1"
gs_py_version() { "$1" -c 'import platform; print(platform.python_version())'; }

# gs_venv PYTHON DIR [REQUIREMENTS]: a virtual environment of PYTHON in DIR with REQUIREMENTS
# installed; reused while PYTHON and the requirements are unchanged (a stamp file says so).
gs_venv() {
  local py="$1" dir="$2" req="${3:-}" stamp want
  want="$(command -v "$py") $(gs_py_version "$py") $( [ -n "$req" ] && cksum <"$req")"
  stamp="$dir/.gostack-stamp"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  if ! "$py" -m venv "$dir" >"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    echo "cannot make a virtual environment with $py ($py -m venv $dir failed, above)." >&2
    echo "On Debian/Ubuntu: apt-get install python3-venv (or python3.X-venv); or set GOSTACK_TEST_PYTHONS to another Python." >&2
    return 1
  fi
  if [ -n "$req" ] && ! "$dir/bin/python" -m pip install -q -r "$req"; then
    echo "cannot install $req into $dir with pip (no network, or no access to the package index?)" >&2
    return 1
  fi
  echo "$want" >"$stamp"
}

# gs_check NAME COMMAND...: runs COMMAND, prints "ok"/"FAILED"/"skipped" with NAME, counts it;
# COMMAND's status 77 means skipped (a tool it needs is missing; it says which).
# COMMAND runs as a background job that is waited for: inside `if COMMAND` bash would ignore
# `set -e` in every function COMMAND calls, and a failing step in the middle would go unseen.
GS_PASSED=0
GS_FAILED=0
GS_SKIPPED=0
GS_FAILURES=()
gs_check() {
  local name="$1" start=$SECONDS
  shift
  (
    set -E
    trap 'rc=$?; [ $rc -eq 77 ] || echo "  $name: \"$BASH_COMMAND\" failed, status $rc (${BASH_SOURCE[0]}:$LINENO)" >&2' ERR
    "$@"
  ) &
  local rc=0
  wait $! || rc=$?
  if [ $rc -eq 0 ]; then
    GS_PASSED=$((GS_PASSED + 1))
    echo "ok     $name ($((SECONDS - start)) s)"
  elif [ $rc -eq 77 ]; then
    GS_SKIPPED=$((GS_SKIPPED + 1))
    echo "skipped $name"
  else
    GS_FAILED=$((GS_FAILED + 1))
    GS_FAILURES+=("$name")
    echo "FAILED $name ($((SECONDS - start)) s)"
  fi
}

# gs_summary WORD: prints the closing line "WORD: N passed, N failed, N skipped" (one word before
# the colon, as CI reads it); fails when a check failed.
gs_summary() {
  local f
  for f in "${GS_FAILURES[@]}"; do echo "failed: $f"; done
  echo "$1: $GS_PASSED passed, $GS_FAILED failed, $GS_SKIPPED skipped"
  [ "$GS_FAILED" -eq 0 ]
}

# gs_path_without_cargo: $PATH less every directory holding cargo or rustc.
gs_path_without_cargo() {
  local d out=
  local IFS=:
  for d in $PATH; do
    [ -n "$d" ] && { [ -e "$d/cargo" ] || [ -e "$d/rustc" ]; } && continue
    out="${out:+$out:}$d"
  done
  echo "$out"
}
