#!/usr/bin/env bash
# `make install` into temporary trees, and C programs that see only the installed copy:
#   - PREFIX=<tmp>/prefix: examples/demo.c built with `pkg-config --cflags --libs gostack`, run
#   - DESTDIR=<tmp>/stage PREFIX=/usr/local: exactly the expected files and links under the stage;
#     examples/cmake (find_package(gostack 0.1), gostack::gostack) configured with
#     CMAKE_PREFIX_PATH=<stage>/usr/local, built and run; find_package(gostack 0.2) refused
#   - make uninstall removes every file it installed
# Needs make, pkg-config and cmake: outside CI (CI unset) a check whose tool is missing is
# skipped with a message; in CI it fails (.ci/run installs them). Part of .ci/test; ~3 s here.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
repo=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gostack-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
version=$(make -s --no-print-directory print-version)
major=${version%%.*}

# have TOOL: true if TOOL is on PATH; otherwise says so and returns 77 (skipped), or 1 in CI.
have() {
  command -v "$1" >/dev/null && return 0
  if [ -n "${CI:-}" ]; then echo "$1 not found (CI must have it: .ci/run installs it)"; return 1; fi
  echo "$1 not found (apt-get install $1): the rest of this check is skipped"
  return 77
}

# logged LOG COMMAND...: runs COMMAND with its output in LOG, shown when it fails.
logged() {
  local log="$1"
  shift
  "$@" >"$log" 2>&1 || { cat "$log"; return 1; }
}

prefix_install_with_pkg_config() {
  local p="$tmp/prefix" pcflags pclibs libdir
  logged "$tmp/make-prefix.log" make install PREFIX="$p"
  have pkg-config || return $?
  export PKG_CONFIG_PATH="$p/lib/pkgconfig"
  [ "$(pkg-config --modversion gostack)" = "$version" ]
  pcflags=$(pkg-config --cflags gostack)
  pclibs=$(pkg-config --libs gostack)
  libdir=$(pkg-config --variable=libdir gostack)
  echo "pkg-config --cflags --libs gostack: $pcflags $pclibs"
  # A copy of the demo, away from the checkout's include/ and target/.
  cp examples/demo.c "$tmp/demo.c"
  (cd "$tmp" && cc -std=gnu11 -O2 -Wall -Wextra -Werror $pcflags demo.c $pclibs -Wl,-rpath,"$libdir" -o demo-pc)
  # (grep on a variable: `ldd | grep -q` fails under pipefail when grep's early exit stops ldd)
  local deps
  deps=$(ldd "$tmp/demo-pc")
  grep -q "libgostack.so.$major => $p/lib/libgostack.so.$major" <<<"$deps"
  "$tmp/demo-pc" >"$tmp/demo-pc.out"
  tail -n 1 "$tmp/demo-pc.out"
}

destdir_install_with_cmake() {
  local stage="$tmp/stage" want got deps
  logged "$tmp/make-stage.log" make install DESTDIR="$stage" PREFIX=/usr/local
  want=$(printf '%s\n' \
    "include/gostack.h f" \
    "lib/cmake/gostack/gostackConfig.cmake f" \
    "lib/cmake/gostack/gostackConfigVersion.cmake f" \
    "lib/libgostack.so l libgostack.so.$major" \
    "lib/libgostack.so.$major l libgostack.so.$version" \
    "lib/libgostack.so.$version f" \
    "lib/pkgconfig/gostack.pc f")
  got=$(cd "$stage/usr/local" && find . \( -type f -o -type l \) -printf '%P %y %l\n' | sed 's/ $//' | sort)
  [ "$got" = "$want" ] || { printf 'installed:\n%s\nexpected:\n%s\n' "$got" "$want"; return 1; }
  deps=$(readelf -d "$stage/usr/local/lib/libgostack.so.$version")
  grep -q "SONAME.*\[libgostack.so.$major\]" <<<"$deps"
  grep -q '^prefix=/usr/local$' "$stage/usr/local/lib/pkgconfig/gostack.pc"
  have cmake || return $?
  logged "$tmp/cmake-configure.log" cmake -S examples/cmake -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$stage/usr/local"
  logged "$tmp/cmake-build.log" cmake --build "$tmp/cmake"
  deps=$(ldd "$tmp/cmake/demo")
  grep -q "libgostack.so.$major => $stage/usr/local/lib/libgostack.so.$major" <<<"$deps"
  "$tmp/cmake/demo" >"$tmp/demo-cmake.out"
  tail -n 1 "$tmp/demo-cmake.out"
  # A version this one is not compatible with is refused (0.x: the same minor only).
  mkdir -p "$tmp/cmake-wrong"
  printf 'cmake_minimum_required(VERSION 3.13)\nproject(w C)\nfind_package(gostack 0.99 REQUIRED)\n' >"$tmp/cmake-wrong/CMakeLists.txt"
  if cmake -S "$tmp/cmake-wrong" -B "$tmp/cmake-wrong/build" -DCMAKE_PREFIX_PATH="$stage/usr/local" >"$tmp/wrong.log" 2>&1; then
    echo "find_package(gostack 0.99) accepted gostack $version"
    return 1
  fi
  make -s --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr/local
  got=$(find "$stage" \( -type f -o -type l \) -printf '%P\n')
  [ -z "$got" ] || { printf 'left after make uninstall:\n%s\n' "$got"; return 1; }
}

echo "== install checks (gostack $version, $tmp)"
gs_check "make install PREFIX=...; a program built with pkg-config --cflags --libs gostack runs" prefix_install_with_pkg_config
gs_check "make install DESTDIR=... PREFIX=/usr/local: files, links, soname; find_package(gostack) program runs; make uninstall" destdir_install_with_cmake
gs_summary install
