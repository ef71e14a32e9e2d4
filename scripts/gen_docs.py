"""Write the reference sections of docs/ from the code, so they cannot drift from it.

    python3 dev.py docs            # rewrite every generated section
    python3 dev.py docs --check    # exit 1, naming the files, when one is stale

Each reference lives between two marker comments in its Markdown file
(`<!-- generated: NAME -->` ... `<!-- end generated: NAME -->`); the text around them is
written by hand. The output depends on the code alone (no environment, no terminal width, no
machine facts such as the Python version), so a test can regenerate it and compare
(tests/unit/test_docs_reference.py).
"""

import json
import re
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import click
from pydantic import AliasChoices, BaseModel, HttpUrl, SecretStr
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's packages sit beside scripts/
    sys.path.insert(0, str(ROOT))

from settings import EMAIL, ENV_PREFIX, NESTED, JobSettings, Settings  # noqa: E402
from worker.cli import cli  # noqa: E402
from worker.cli.base import PROG  # noqa: E402
from worker.engine.worker import CHANGES  # noqa: E402
from worker.observability.http_instrument import OPERATIONS  # noqa: E402
from worker.observability.metrics import PREFIX, Metrics  # noqa: E402
from worker.registry import job_env_name, job_types  # noqa: E402

REFRESH = "python3 dev.py docs"
HELP_WIDTH = 100  # click's own cap for this CLI (max_content_width), fixed so no terminal counts
BEGIN = "<!-- generated: {name} -->"
END = "<!-- end generated: {name} -->"


class MissingReference(Exception):
    """The code lacks what a reference needs (a setting without a description, say)."""


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


# --- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingRow:
    variable: str
    type: str
    default: str
    description: str


@dataclass(frozen=True)
class SettingSection:
    title: str
    description: str
    rows: tuple[SettingRow, ...]


def nested_model(annotation: Any) -> type[BaseModel] | None:
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(arg) for arg in args if arg is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(f"`{arg}`" for arg in args)
    if origin is tuple:
        inner = args[0]
        model = nested_model(inner)
        return (
            f"JSON list of {model.__name__} objects" if model else f"JSON list of {inner.__name__}"
        )
    if origin is dict:
        return f"JSON object ({args[0].__name__} to {args[1].__name__})"
    names: dict[Any, str] = {HttpUrl: "URL", SecretStr: "secret", time: "time `HH:MM[:SS]`"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def constraints(field: FieldInfo) -> str:
    bounds = {
        annotated_types.Gt: ("> ", "gt"),
        annotated_types.Ge: ("≥ ", "ge"),
        annotated_types.Lt: ("< ", "lt"),
        annotated_types.Le: ("≤ ", "le"),
    }
    parts = []
    for item in field.metadata:
        for kind, (sign, attribute) in bounds.items():
            if isinstance(item, kind):
                parts.append(sign + plain(getattr(item, attribute)))
        pattern = getattr(item, "pattern", None)
        if pattern == EMAIL:
            parts.append("an email address")
        elif isinstance(pattern, str):
            parts.append(f"matching `{pattern}`")
    return ", ".join(parts)


def plain(value: Any) -> str:
    """A value as a person writes it in the environment."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, time):
        return value.isoformat(timespec="minutes" if not value.second else "seconds")
    if isinstance(value, tuple | list | dict):
        return json.dumps(jsonable(value), separators=(", ", ": "))
    return str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    return value


def variable_names(name: str, field: FieldInfo, prefix: str) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        first, *others = (str(choice) for choice in alias.choices)
        also = "".join(f" (or `{other}`)" for other in others)
        return f"`{first}`{also}"
    return f"`{prefix}{name.upper()}`"


def setting_sections(
    model: type[BaseModel], instance: BaseModel, prefix: str, title: str, description: str
) -> Iterator[SettingSection]:
    rows: list[SettingRow] = []
    nested: list[tuple[str, FieldInfo, type[BaseModel]]] = []
    for name, field in type(instance).model_fields.items():
        sub = nested_model(field.annotation)
        if sub is not None:
            nested.append((name, field, sub))
            continue
        if not field.description:
            raise MissingReference(f"{model.__name__}.{name} has no description (a docstring)")
        kind = type_name(field.annotation)
        bounds = constraints(field)
        rows.append(
            SettingRow(
                variable=variable_names(name, field, prefix),
                type=f"{kind}, {bounds}" if bounds else kind,
                default=plain(getattr(instance, name)),
                description=field.description,
            )
        )
    yield SettingSection(title, description, tuple(rows))
    if model is Settings:
        yield job_settings_section()
    for name, field, sub in nested:
        if not field.description:
            raise MissingReference(f"{model.__name__}.{name} has no description (a docstring)")
        sub_prefix = f"{prefix}{name.upper()}{NESTED}"
        yield from setting_sections(
            sub, getattr(instance, name), sub_prefix, f"`{sub_prefix}*`", field.description
        )


def job_settings_section() -> SettingSection:
    """`PW_JOBS__<NAME>__<FIELD>` for every registered job type, with the default its
    declaration gives (the map itself defaults to empty)."""
    specs = job_types(Settings.model_construct())
    rows = []
    for job, spec in sorted(specs.items()):
        for name, field in JobSettings.model_fields.items():
            bounds = constraints(field)
            kind = type_name(field.annotation)
            rows.append(
                SettingRow(
                    variable=f"`{job_env_name(job, name)}`",
                    type=f"{kind}, {bounds}" if bounds else kind,
                    default=plain(getattr(spec, name)),
                    description=field.description or "",
                )
            )
    return SettingSection("`PW_JOBS__<NAME>__*`", JobSettings.__doc__ or "", tuple(rows))


def settings_reference() -> str:
    # model_construct reads no environment: the defaults as the code states them.
    instance = Settings.model_construct()
    sections = setting_sections(Settings, instance, ENV_PREFIX, "Top level", "")
    out: list[str] = []
    for section in sections:
        out.append(f"### {section.title}\n")
        if section.description:
            out.append(section.description + "\n")
        out.append("| Variable | Type | Default | Meaning |")
        out.append("|---|---|---|---|")
        for row in section.rows:
            default = "unset" if row.default == "unset" else f"`{cell(row.default)}`"
            out.append(
                f"| {row.variable} | {cell(row.type)} | {default} | {cell(row.description)} |"
            )
        out.append("")
    return "\n".join(out).rstrip("\n")


# --- metrics ------------------------------------------------------------------------------------

EXPOSED_SUFFIX = {"counter": "_total", "info": "_info"}
# Labels whose values describe the machine (the Python version, say), not the code.
MACHINE_LABELS = {"info"}


def metrics_reference() -> str:
    specs = job_types(Settings.model_construct())
    metrics = Metrics(
        list(specs),
        OPERATIONS,
        job_limits={name: spec.limit for name, spec in specs.items()},
        max_jobs=Settings.model_fields["max_jobs"].default,
    )
    out = ["| Name | Type | Labels, and the values known at start | Meaning |", "|---|---|---|---|"]
    for family in metrics.registry.collect():
        if not family.name.startswith(PREFIX):
            continue  # prometheus-client's process_* and python_* series
        values: dict[str, list[str]] = {}
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            for label, value in sample.labels.items():
                if label == "le":
                    continue
                known = values.setdefault(label, [])
                if value not in known:
                    known.append(value)
        if family.type in MACHINE_LABELS:
            labels = ", ".join(f"`{label}`" for label in values) + " (always 1)"
        else:
            labels = "; ".join(
                f"`{label}`: " + ", ".join(f"`{value}`" for value in known)
                for label, known in values.items()
            )
        name = family.name + EXPOSED_SUFFIX.get(family.type, "")
        meaning = cell(family.documentation)
        out.append(f"| `{name}` | {family.type} | {cell(labels) or 'none'} | {meaning} |")
    return "\n".join(out)


# --- the CLI ------------------------------------------------------------------------------------


def commands(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    yield command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from commands(sub, sub.make_context(name, [], parent=ctx, **QUIET))


# resilient_parsing: build each command's context without its required arguments.
QUIET: dict[str, Any] = {"resilient_parsing": True}


def root_context() -> click.Context:
    return cli.make_context(PROG, [], terminal_width=HELP_WIDTH, **QUIET)


def command_paths() -> list[str]:
    """Every command below the group, as typed after the program's name (`dlq replay`)."""
    return [
        ctx.command_path.removeprefix(PROG).strip() for _, ctx in commands(cli, root_context())
    ][1:]


def cli_reference() -> str:
    listing = ["| Command | What it does |", "|---|---|"]
    pages: list[str] = []
    for command, ctx in commands(cli, root_context()):
        path = ctx.command_path
        if command is not cli:
            summary = command.get_short_help_str(limit=HELP_WIDTH)
            listing.append(f"| [`{path}`](#{anchor(path)}) | {cell(summary)} |")
        pages.append(f"### {path}\n\n```\n{command.get_help(ctx).rstrip()}\n```\n")
    return "\n".join(listing) + "\n\n" + "\n".join(pages).rstrip("\n")


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


# --- the files ----------------------------------------------------------------------------------

# --- the engine's changes to arq ----------------------------------------------------------------


def engine_changes_reference() -> str:
    """The engine's named changes (worker/engine/worker.py's CHANGES), one line each."""
    return "\n".join(f"- **{name}**: {summary}." for name, summary in CHANGES)


REFERENCES: dict[str, tuple[str, Callable[[], str]]] = {
    "engine-changes": ("docs/architecture.md", engine_changes_reference),
    "settings": ("docs/settings.md", settings_reference),
    "metrics": ("docs/metrics.md", metrics_reference),
    "cli": ("docs/cli.md", cli_reference),
}


def with_reference(text: str, name: str, body: str) -> str:
    """`text` with the section NAME replaced by `body`."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise MissingReference(f"no {begin} ... {end} markers")
    return f"{text[: start + len(begin)]}\n{body}\n{text[stop:]}"


def rendered(root: Path = ROOT) -> dict[Path, tuple[str, str]]:
    """Each file with a generated section: (what it holds, what it should hold)."""
    out: dict[Path, tuple[str, str]] = {}
    for name, (relative, render) in REFERENCES.items():
        path = root / relative
        current = out[path][1] if path in out else path.read_text()
        before = out[path][0] if path in out else current
        try:
            out[path] = (before, with_reference(current, name, render()))
        except MissingReference as exc:
            raise MissingReference(f"{relative}: {exc}") from None
    return out


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: gen_docs.py [--check]", file=sys.stderr)
        return 2
    try:
        files = rendered()
    except MissingReference as exc:
        print(f"gen_docs: {exc}", file=sys.stderr)
        return 1
    stale = [path for path, (now, wanted) in files.items() if now != wanted]
    for path in stale:
        relative = path.relative_to(ROOT)
        if check:
            print(f"gen_docs: {relative} is stale; run {REFRESH}", file=sys.stderr)
        else:
            path.write_text(files[path][1])
            print(f"gen_docs: wrote {relative}", file=sys.stderr)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
