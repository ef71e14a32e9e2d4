#!/usr/bin/env python3
"""The front door, needing only python3: set up the environment, then run or test.

    python3 dev.py run     # the daily prospect pipeline end to end, offline, no keys needed
    python3 dev.py test    # the whole test suite

Both create `.venv` and install the locked dependencies (uv.lock) on first use; later calls
only check that the environment still matches the lock. Arguments after the command go to it:
`dev.py run --help` (the CLI's `run`), `dev.py test tests/unit -q` (pytest).

`run` uses the Redis in REDIS_URL when it is set; unset, an embedded one started for the run and
thrown away after it, so it never touches a Redis nobody named.
"""

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
UV = VENV / "bin" / "uv"
UV_VERSION = "0.13.9"


def ensure_environment() -> None:
    if not PYTHON.exists():
        print("creating .venv", file=sys.stderr)
        venv.create(VENV, with_pip=True)
    if not UV.exists():
        subprocess.run([PYTHON, "-m", "pip", "install", "-q", f"uv=={UV_VERSION}"], check=True)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # --inexact keeps uv itself in the environment it manages.
    subprocess.run([UV, "sync", "--frozen", "--inexact", "--quiet"], cwd=ROOT, env=env, check=True)


def ensure_redis_server() -> None:
    """The integration tests start their own throwaway redis-server, so it must be installed."""
    if shutil.which("redis-server"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("redis-server not found: installing it with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True)
        return
    sys.exit("redis-server is not installed; install it (e.g. apt-get install redis-server)")


def main(argv: list[str]) -> int:
    # No argparse here: every argument after the command belongs to that command.
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command in ("-h", "--help"):
        print(__doc__)
        return 0
    if command not in ("run", "test"):
        print(__doc__, file=sys.stderr)
        print(
            f"dev.py: expected `run` or `test`, got {command!r}" if command else "", file=sys.stderr
        )
        return 2
    ensure_environment()
    if command == "run":
        return subprocess.call([PYTHON, "-m", "worker", "run", *rest], cwd=ROOT)
    ensure_redis_server()
    return subprocess.call([PYTHON, "-m", "pytest", *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
