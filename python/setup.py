"""Builds libgostack.so with cargo and bundles it into the gostack package.

`pip install ./python` runs this through setuptools' PEP 517 backend (pyproject.toml). The Rust
crate is the parent directory; set GOSTACK_CARGO_PROFILE=debug for a debug build.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent


class BuildWithCargo(build_py):
    def run(self) -> None:
        super().run()
        profile = os.environ.get("GOSTACK_CARGO_PROFILE", "release")
        if not (CRATE / "Cargo.toml").exists():
            raise SystemExit(f"gostack: the Rust crate is expected at {CRATE} (install from the repository: pip install ./python)")
        cmd = ["cargo", "build", "--lib"] + (["--release"] if profile == "release" else [])
        try:
            subprocess.run(cmd, cwd=CRATE, check=True)
        except FileNotFoundError:
            raise SystemExit("gostack: cargo not found; install Rust (https://rustup.rs) to build libgostack.so")
        target = Path(os.environ.get("CARGO_TARGET_DIR", CRATE / "target"))
        so = target / profile / "libgostack.so"
        dest = Path(self.build_lib) / "gostack"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, dest / "libgostack.so")


setup(cmdclass={"build_py": BuildWithCargo})
