#!/usr/bin/env bash
# Builds libgostack.so (release) and the C demo against the generated header, then runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
cc -std=gnu11 -O2 -Wall -Wextra -Werror -Iinclude examples/demo.c \
   -Ltarget/release -lgostack -Wl,-rpath,"$PWD/target/release" -o target/release/demo
exec target/release/demo
