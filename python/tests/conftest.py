"""Makes `import gostack` work from a checkout: the package from python/, the library from
target/release (built here with cargo if missing, unless $GOSTACK_LIBRARY names one)."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import NamedTuple

import pytest

PY_DIR = Path(__file__).resolve().parent.parent
REPO = PY_DIR.parent
sys.path.insert(0, str(PY_DIR))

# The runtime's settings from the caller's environment (GOSTACK_MAXPROCS=2 exported in a shell,
# GOSTACK_MIGRATE, ...) would change what every test runs on: the tests assume one P and the
# defaults, and set what they need themselves (child_env(GOSTACK_MAXPROCS="2")). Kept: the
# library's location, and GOSTACK_PY_STACK=fixed, which runs the whole suite on FIXED stacks.
KEPT = ("GOSTACK_LIBRARY", "GOSTACK_PY_STACK")
for name in [n for n in os.environ if n.startswith("GOSTACK_") and n not in KEPT]:
    del os.environ[name]

# A shell that starts pytest in the background (`cmd &` in a script) leaves SIGINT ignored, which
# children inherit, and their Python then installs no KeyboardInterrupt handler: the Ctrl-C tests
# would wait for a signal nobody acts on. A handler here is reset to the default in children.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if not os.environ.get("GOSTACK_LIBRARY"):
    if not any((REPO / "target" / d / "libgostack.so").exists() for d in ("release", "release/deps", "debug")):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)


def child_env(**extra: str) -> dict:
    """Environment for child interpreters that import gostack from this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PY_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def readline_within(p: subprocess.Popen, seconds: float) -> str:
    """The child's next stdout line; a child that prints nothing for ``seconds`` is killed and the
    test fails (instead of hanging the suite). Reads the pipe a byte at a time, below the file
    object's buffer, so that ``p.communicate()`` afterwards gets everything that follows."""
    fd = p.stdout.fileno()
    deadline = time.monotonic() + seconds
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            p.kill()
            raise AssertionError(f"the child printed no line within {seconds} s (so far: {line!r})")
        byte = os.read(fd, 1)
        if not byte:
            break  # the child closed its stdout
        line += byte
    return line.decode()


class Interrupted(NamedTuple):
    returncode: int
    out: str  # stdout after its "ready" line
    err: str
    elapsed: float  # seconds from the SIGINT to the child's next line (or its end)


def interrupt(code: str, *args, env=None, delay: float = 0.3, timeout: float = 20) -> Interrupted:
    """Ctrl-C a child interpreter: runs ``code`` (dedented) with ``args``, waits for its "ready"
    line, sends SIGINT ``delay`` s later and collects the rest; the child is killed if it takes
    longer than ``timeout`` for its next line or its end."""
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env or child_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert readline_within(p, 60).strip() == "ready"
        time.sleep(delay)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        first = readline_within(p, timeout)
        elapsed = time.monotonic() - t0
        rest, err = p.communicate(timeout=timeout)
    finally:
        p.kill()
    return Interrupted(p.returncode, first + rest, err, elapsed)


@pytest.fixture
def gostack():
    import gostack as g

    yield g
    # A test that failed half-way may leave goroutines or collected failures behind.
    try:
        g.run()
    except BaseException:
        pass
