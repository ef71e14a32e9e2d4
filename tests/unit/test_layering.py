"""The layering that import-linter cannot see (it knows `arq`, not `arq.worker`), and the light
client measured where it counts: in a fresh interpreter. The package contracts themselves are
in pyproject.toml ([tool.importlinter]) and run as the `layers` gate of dev.py."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# arq's public surface: the names a plain arq client or job uses. Anything else of arq (the
# Worker's internals, its key constants, its time helpers) is the engine's to know.
ARQ_PUBLIC = {"arq", "arq.connections", "arq.jobs", "arq.version"}
# Known crossings, each with why (none today): the test fails when one is fixed and stays
# listed, so the list only shrinks.
ARQ_CROSSINGS: set[tuple[str, str]] = set()


# What a client or a command that only reads Redis has no use for: the wiring, the job bodies,
# the engine's loop, and the HTTP, SMTP and HTML libraries the job bodies use.
HEAVY = {
    "worker.app",
    "worker.registry",
    "worker.engine.worker",
    "httpx",
    "aiosmtplib",
    "selectolax",
}


def _arq_imports(path: Path) -> set[str]:
    """The arq modules a file imports, wherever in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name == "arq" or name.startswith("arq."))
    return found


def test_only_the_engine_imports_arqs_internals() -> None:
    crossings: set[tuple[str, str]] = set()
    for path in sorted([*ROOT.glob("worker/**/*.py"), *ROOT.glob("jobs/**/*.py")]):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("worker/engine/"):
            continue
        crossings.update((relative, module) for module in _arq_imports(path) - ARQ_PUBLIC)
    assert crossings == ARQ_CROSSINGS


def _modules_after(code: str) -> set[str]:
    """What a fresh interpreter has loaded after running `code` (no test plugins around)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def test_importing_the_client_loads_no_wiring_job_bodies_http_smtp_or_html() -> None:
    loaded = _modules_after("import worker.client")
    assert "worker.client" in loaded
    assert HEAVY & loaded == set()


@pytest.mark.slow
def test_status_loads_no_wiring_engine_or_job_bodies() -> None:
    # What `prospect-worker status` loads before it connects: the CLI group and its one command
    # module, never the wiring, the engine or the job bodies (`stats` lists every job type, so
    # it reads the registry).
    loaded = _modules_after(
        "from worker.cli import cli\nimport click\n"
        "with click.Context(cli) as ctx:\n"
        "    assert cli.get_command(ctx, 'status') is not None"
    )
    assert HEAVY & loaded == set()


@pytest.mark.slow
def test_stats_lists_the_job_types_without_loading_a_job_body() -> None:
    # What `prospect-worker stats` loads before it connects: the command's module and every job
    # type's name, limit and priority (the declarations beside the bodies), never a body, the
    # dependencies they stand on, or the HTTP, SMTP and HTML libraries.
    loaded = _modules_after(
        "from worker.cli import cli\nimport click\n"
        "with click.Context(cli) as ctx:\n"
        "    assert cli.get_command(ctx, 'stats') is not None\n"
        "from worker.cli.base import job_names\nassert 'send_outreach' in job_names()\n"
        "from settings import Settings\nfrom worker.registry import job_types\n"
        "types = job_types(Settings.model_construct())\n"
        "assert all(t.limit > 0 and t.priority for t in types.values()), types"
    )
    heavy = {"httpx", "aiosmtplib", "selectolax", "worker.app", "worker.engine.worker"}
    bodies = {"jobs.deps", "jobs.outreach.send", "jobs.prospecting.prospect", "jobs.maintenance"}
    assert "worker.observability.stats_report" in loaded
    assert (heavy | bodies) & loaded == set()
