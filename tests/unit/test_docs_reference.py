"""The docs against the code: the generated references are current, the README lists every
command, and every link between the docs resolves."""

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, ConfigDict

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts/gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def section(text: str, heading: str) -> str:
    """The body of a `## heading` section, up to the next heading of its level."""
    start = text.index(f"## {heading}\n")
    following = text.find("\n## ", start + 1)
    return text[start : following if following >= 0 else len(text)]


@pytest.mark.parametrize("name", sorted(gen.REFERENCES))
def test_each_generated_reference_is_what_the_code_makes_now(name: str) -> None:
    relative, render = gen.REFERENCES[name]
    text = (ROOT / relative).read_text()
    assert gen.with_reference(text, name, render()) == text, (
        f"{relative}: the {name} reference has drifted from the code; run {gen.REFRESH}"
    )


def test_the_generator_names_a_setting_that_has_no_description() -> None:
    class Section(BaseModel):
        model_config = ConfigDict(use_attribute_docstrings=True)
        described: int = 1
        """Has one."""
        bare: int = 2

    with pytest.raises(gen.MissingReference, match=r"Section\.bare has no description"):
        list(gen.setting_sections(Section, Section(), "PW_", "Top level", ""))


def test_the_generator_refuses_a_file_without_its_markers() -> None:
    with pytest.raises(gen.MissingReference, match="generated: metrics"):
        gen.with_reference("# Metrics\n\nno markers here\n", "metrics", "table")


def test_every_setting_in_the_model_is_in_the_reference() -> None:
    reference = (ROOT / "docs/settings.md").read_text()
    for variable in ("REDIS_URL", "PW_RECOVERY__HEALTH_INTERVAL_S", "PW_ICP__WEIGHTS__WEBSITE"):
        assert f"`{variable}`" in reference


def test_every_outcome_the_runtime_reports_is_in_the_metrics_reference() -> None:
    from worker.runtime.outcomes import OUTCOME_KINDS

    reference = (ROOT / "docs/metrics.md").read_text()
    row = next(line for line in reference.splitlines() if "job_outcomes_total" in line)
    for outcome in OUTCOME_KINDS:
        assert f"`{outcome}`" in row


def listed_commands(table: str, known: set[str]) -> list[str]:
    """The command each row of a Markdown table starts with (`dlq replay ENTRY_ID` -> `dlq
    replay`): the longest run of leading words that is a command."""
    found = []
    for line in table.splitlines():
        first = re.match(r"\| `([^`]+)`", line)
        if first is None:
            continue
        path: list[str] = []
        for word in first.group(1).split():
            if " ".join([*path, word]) not in known:
                break
            path.append(word)
        found.append(" ".join(path))
    return found


def test_the_readme_lists_every_command_of_the_cli() -> None:
    paths = gen.command_paths()
    groups = {path for path in paths if any(other.startswith(path + " ") for other in paths)}
    listed = listed_commands(section(README.read_text(), "The CLI at a glance"), set(paths))
    assert "" not in listed, "a row of the README's CLI table names no command"
    assert sorted(set(paths) - groups - set(listed)) == []


def test_the_readme_is_short_and_keeps_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    assert "python3 dev.py run" in text
    assert "python3 dev.py test" in text
    assert (ROOT / ".ci/run").read_text().rstrip().endswith("exec python3 dev.py test")


def test_every_link_between_the_docs_resolves_to_a_file_and_heading() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    titles = {page: re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE) for page in pages}
    headings = {page: {gen.anchor(title) for title in titles[page]} for page in pages}
    for page in pages:
        for target, fragment in re.findall(r"\]\(([^)#:]*\.md|)(?:#([^)]*))?\)", page.read_text()):
            linked = (page.parent / target).resolve() if target else page
            assert linked.is_file(), f"{page.name} links to {target}"
            if fragment:
                assert fragment in headings[linked], f"{page.name} links to {target}#{fragment}"


def test_the_runbook_has_a_section_for_every_alert() -> None:
    import yaml

    rules = yaml.safe_load((ROOT / "k8s/components/monitoring/prometheus-rule.yaml").read_text())
    alerts = [rule["alert"] for group in rules["spec"]["groups"] for rule in group["rules"]]
    runbook = (ROOT / "docs/operations.md").read_text()
    assert alerts
    assert [alert for alert in alerts if f"\n### {alert}\n" not in runbook] == []


def test_every_image_the_docs_show_is_in_the_repository() -> None:
    """The README's screenshots (tests/browser/ writes them with CONSOLE_SCREENSHOTS=1)."""
    for page in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}"
