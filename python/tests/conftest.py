"""Makes `import gostack` work from a checkout: the package from python/, the library from
target/release (built here with cargo if missing, unless $GOSTACK_LIBRARY names one)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PY_DIR = Path(__file__).resolve().parent.parent
REPO = PY_DIR.parent
sys.path.insert(0, str(PY_DIR))

if not os.environ.get("GOSTACK_LIBRARY"):
    if not any((REPO / "target" / d / "libgostack.so").exists() for d in ("release", "release/deps", "debug")):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)


def child_env(**extra: str) -> dict:
    """Environment for child interpreters that import gostack from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.fixture
def gostack():
    import gostack as g

    yield g
    # A test that failed half-way may leave goroutines or collected failures behind.
    try:
        g.run()
    except BaseException:
        pass
