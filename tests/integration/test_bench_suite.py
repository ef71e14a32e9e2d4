"""The benchmark suite runs: every case at its tiny size through the one command, with raw arq,
SAQ and taskiq beside the project. Figures are not checked (they are the suite's to report,
not a test's to assert); that the report has every case, column and row is. A case a test:
parallel workers spread them."""

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from scripts.bench.__main__ import CASES as SUITE_CASES
from tests.support.processes import env_for

ROOT = Path(__file__).resolve().parents[2]
# A case and the tables it reports (latency reports two).
CASES = {
    "drain": ["drain"],
    "io": ["io"],
    "pipeline": ["pipeline"],
    "churn": ["churn"],
    "scale": ["scale"],
    "latency": ["latency", "latency"],
    "profile": ["profile"],
}
DRAIN_ROWS = [
    "drain (jobs/s)",
    "worker CPU per job (µs)",
    "Redis CPU per job (µs)",
    "Redis commands per job",
    "client round trips per job",
]


def test_the_suite_has_exactly_these_cases() -> None:
    assert list(SUITE_CASES) == list(CASES)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("case", CASES)
def test_each_case_reports_every_row_at_its_tiny_size(case: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench",
            "--tiny",
            "--rounds",
            "1",
            "--case",
            case,
            "--json",
            str(out),
        ],
        cwd=tmp_path,  # its profile files land here, not in the repository
        env={**env_for("redis://127.0.0.1:1/0"), "PYTHONPATH": str(ROOT)},  # its own Redis
        capture_output=True,
        text=True,
        timeout=1140,  # seconds on a quiet machine; minutes on a shared one
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    tables = orjson.loads(out.read_bytes())["cases"]
    assert [table["case"] for table in tables] == CASES[case]
    for table in tables:
        first_row = next(iter(table["rows"].values()))
        assert set(first_row) == set(table["columns"]), table["title"]
        assert f"### {table['title']}" in done.stdout
    if case == "drain":
        drain = tables[0]
        assert drain["columns"] == ["arq", "pw", "saq", "taskiq"]
        for row in DRAIN_ROWS:
            assert set(drain["rows"][row]) == set(drain["columns"]), row
