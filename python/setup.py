"""Builds libgostack.so with cargo and bundles it into the gostack package.

`pip install ./python` and `pip wheel ./python` run this through setuptools' PEP 517 backend
(pyproject.toml). The Rust crate is the parent directory; set GOSTACK_CARGO_PROFILE=debug for a
debug build.

The wheel is tagged `py3-none-linux_<arch>` (linux_x86_64 built natively): it holds a native
library, so it is not `py3-none-any`, but no CPython extension (the library finds the CPython API
with dlsym at run time), so one wheel serves every CPython 3 the package supports.

Cross-building (.ci/aarch64.sh): GOSTACK_CARGO_TARGET=aarch64-unknown-linux-gnu makes it
`cargo build --target aarch64-unknown-linux-gnu` (with cargo's linker variables set, e.g.
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc), bundle that library and tag
the wheel linux_aarch64.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel  # setuptools >= 70.1
except ImportError:  # older setuptools: the wheel package's command
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent


class BuildWithCargo(build_py):
    def run(self) -> None:
        super().run()
        profile = os.environ.get("GOSTACK_CARGO_PROFILE", "release")
        if not (CRATE / "Cargo.toml").exists():
            raise SystemExit(f"gostack: the Rust crate is expected at {CRATE} (install from the repository: pip install ./python)")
        cross = os.environ.get("GOSTACK_CARGO_TARGET")
        cmd = ["cargo", "build", "--lib"] + (["--release"] if profile == "release" else [])
        if cross:
            cmd += ["--target", cross]
        try:
            subprocess.run(cmd, cwd=CRATE, check=True)
        except FileNotFoundError:
            raise SystemExit("gostack: cargo not found; install Rust (https://rustup.rs) to build libgostack.so")
        target = Path(os.environ.get("CARGO_TARGET_DIR", CRATE / "target"))
        so = (target / cross if cross else target) / profile / "libgostack.so"
        dest = Path(self.build_lib) / "gostack"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(so, dest / "libgostack.so")


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True  # libgostack.so: a platform wheel, installed into platlib


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _python, _abi, plat = super().get_tag()
        cross = os.environ.get("GOSTACK_CARGO_TARGET")
        if cross:
            # The platform of the library inside, not of the machine building it.
            plat = "linux_" + cross.split("-")[0]
        return "py3", "none", plat


setup(distclass=BinaryDistribution, cmdclass={"build_py": BuildWithCargo, "bdist_wheel": PlatformWheel})
