#!/usr/bin/env python3
"""The front door, needing only python3: set up the environment, then run or test.

    python3 dev.py run     # the daily prospect pipeline end to end, offline, no keys needed
    python3 dev.py run --outreach   # ... and on: approve, send to a local SMTP sink, replies
    python3 dev.py console # the demo with the web console up, and a sign-in to try it with
    python3 dev.py test    # the quality gates, then the whole test suite with coverage
    python3 dev.py test -m "not slow"   # the quick loop: the same without the slow tests
    python3 dev.py check   # the quality gates alone, in seconds: lint, format, types, layers
    python3 dev.py fix     # apply ruff's safe fixes and format the code
    python3 dev.py docs    # rewrite the references in docs/ generated from the code
    python3 dev.py bench   # the benchmark suite beside raw arq, SAQ and taskiq (--tiny, --quick)

All create `.venv` and install the locked dependencies (uv.lock) on first use; later calls
only check that the environment still matches the lock. `test` stops at the first gate that
fails. Arguments after the command go to it: `dev.py run --help` (the CLI's `run`),
`dev.py test tests/unit -q` (pytest; a partial run is not held to the coverage floor).

`test` runs the tests on parallel workers (pytest-xdist), each with its own throwaway
redis-server; `dev.py test -n 0 ...` runs them in one process (for a debugger, say). Tests that
take seconds (real processes, fault and throttle waits) are marked `slow`: the quick loop leaves
them out, the full run and CI run them all.

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
    env = {
        **os.environ,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PROJECT_ENVIRONMENT": str(VENV),
        # Playwright drives the system's chromium; it must never fetch a browser build.
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
    }
    # --inexact keeps uv itself in the environment it manages.
    subprocess.run([UV, "sync", "--frozen", "--inexact", "--quiet"], cwd=ROOT, env=env, check=True)


def apt_install(binary: str, package: str) -> bool:
    """Install `package` with apt-get when `binary` is missing and this is root; whether the
    binary is there now."""
    if shutil.which(binary):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print(f"{binary} not found: installing {package} with apt-get", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True)
    return True


def ensure_redis_server() -> None:
    """The tests and the benchmarks start their own throwaway redis-server."""
    if not apt_install("redis-server", "redis-server"):
        sys.exit("redis-server is not installed; install it (e.g. apt-get install redis-server)")


def ensure_test_tools() -> None:
    """A redis-server; and the console's browser tests (tests/browser/) drive Debian's chromium
    through Playwright, which never downloads a browser of its own: without it those tests
    fail, saying so."""
    ensure_redis_server()
    if not apt_install("chromium", "chromium"):
        print(
            "dev.py: chromium is not installed, so the browser tests (tests/browser/) will fail;"
            " install it (e.g. apt-get install chromium)",
            file=sys.stderr,
        )


# The gates, in the order `test` runs them; their settings live in pyproject.toml.
GATES = (
    ("lint", ["ruff", "check", "."], "python3 dev.py fix applies the fixable ones"),
    ("format", ["ruff", "format", "--check", "."], "python3 dev.py fix formats the code"),
    ("types", ["mypy"], "strict mypy over settings.py, worker/, jobs/, tests/"),
    ("layers", ["lint-imports"], "the import contracts in pyproject.toml ([tool.importlinter])"),
)


def run_gates() -> int:
    for name, command, hint in GATES:
        print(f"dev.py: gate {name}: {' '.join(command)}", flush=True)
        code = subprocess.call([VENV / "bin" / command[0], *command[1:]], cwd=ROOT)
        if code != 0:
            print(f"dev.py: the {name} gate failed (exit {code}); {hint}", file=sys.stderr)
            return code
    return 0


# pytest-xdist workers, each with its own redis-server: one more than this 2-core machine's
# cores, since most tests spend part of their time waiting on the processes they start.
TEST_WORKERS = "3"


def run_tests(pytest_args: list[str]) -> int:
    # Coverage (settings in pyproject.toml) follows the worker processes the tests start, and
    # fails the run under its floor; a run of chosen tests only reports it.
    coverage = ["--cov", "--cov-report=term-missing"]
    if pytest_args:
        coverage.append("--cov-fail-under=0")
    # Before the caller's arguments, so `-n 0` there runs everything in this one process.
    # loadgroup: the tests marked xdist_group("...") share one worker (the browser stack).
    parallel = ["-n", TEST_WORKERS, "--dist", "loadgroup"]
    print("dev.py: tests with coverage", flush=True)
    code = subprocess.call([PYTHON, "-m", "pytest", *coverage, *parallel, *pytest_args], cwd=ROOT)
    if code != 0:
        print(
            f"dev.py: the tests failed or coverage fell under its floor (exit {code})",
            file=sys.stderr,
        )
    return code


def wait_out_ctrl_c(command: list[object]) -> int:
    """Run a command that stops itself on Ctrl-C, and wait for it to finish doing so:
    subprocess.call would kill it on the KeyboardInterrupt this process gets too."""
    child = subprocess.Popen(command, cwd=ROOT)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # the same Ctrl-C reached the child, which is shutting down


def main(argv: list[str]) -> int:
    # No argparse here: every argument after the command belongs to that command.
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command in ("-h", "--help"):
        print(__doc__)
        return 0
    if command not in ("run", "console", "test", "check", "fix", "docs", "bench"):
        print(__doc__, file=sys.stderr)
        if command:
            print(
                f"dev.py: expected run, console, test, check, fix, docs or bench, got {command!r}",
                file=sys.stderr,
            )
        return 2
    ensure_environment()
    if command == "run" and "--outreach" in rest:
        # The pipeline all the way: approval, sending to a local SMTP sink, replies.
        demo = [arg for arg in rest if arg != "--outreach"]
        return subprocess.call([PYTHON, "-m", "worker", "outreach-demo", *demo], cwd=ROOT)
    if command == "run":
        return subprocess.call([PYTHON, "-m", "worker", "run", *rest], cwd=ROOT)
    if command == "console":
        # The demo with the console up on a local port until Ctrl-C (worker/cli/console_demo.py).
        return wait_out_ctrl_c([PYTHON, "-m", "worker", "console-demo", *rest])
    if command == "docs":
        # `docs --check` only says which file is stale; the unit tests check the same.
        return subprocess.call([PYTHON, ROOT / "scripts" / "gen_docs.py", *rest], cwd=ROOT)
    if command == "bench":
        # It starts its own throwaway redis-server: see docs/benchmarks.md.
        ensure_redis_server()
        return subprocess.call([PYTHON, "-m", "scripts.bench", *rest], cwd=ROOT)
    if command == "fix":
        ruff = VENV / "bin" / "ruff"
        fixed = subprocess.call([ruff, "check", "--fix", "."], cwd=ROOT)
        return subprocess.call([ruff, "format", "."], cwd=ROOT) or fixed
    code = run_gates()
    if code != 0 or command == "check":
        return code
    ensure_test_tools()
    return run_tests(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
