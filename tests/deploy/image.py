"""The Dockerfile as data, read with Docker's own parser (the `dockerfile` package wraps
BuildKit's), so the checks see exactly the instructions a build would run."""

import re
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile  # type: ignore[import-not-found]  # a compiled module without stubs

from .manifests import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case: FROM, RUN, COPY, ...
    value: tuple[str, ...]
    flags: tuple[str, ...]
    json: bool  # exec form (CMD ["a", "b"])


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, cmd: str) -> list[Instruction]:
        return [i for i in self.instructions if i.cmd == cmd]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            pairs = instruction.value
            values.update(zip(pairs[::2], pairs[1::2], strict=True))
        return values

    def args(self) -> dict[str, str]:
        return dict(_arg(i) for i in self.all("ARG"))


@dataclass(frozen=True)
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def base_image(self, stage: Stage) -> str:
        """A stage's FROM with the global ARGs substituted."""
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args[m.group(1)], stage.base)


def _arg(instruction: Instruction) -> tuple[str, str]:
    name, _, default = instruction.value[0].partition("=")
    return name, default


def parse(path: Path = DOCKERFILE) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        instruction = Instruction(
            command.cmd.upper(), tuple(command.value), tuple(command.flags), bool(command.json)
        )
        if instruction.cmd == "FROM":
            value = instruction.value
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else None
            stages.append(Stage(value[0], name))
        elif not stages:
            assert instruction.cmd == "ARG", f"only ARG may come before FROM: {instruction}"
            global_args.update([_arg(instruction)])
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)


def context_sources(parsed: Dockerfile) -> list[str]:
    """What the build copies from the build context (not from another stage), in order."""
    sources: list[str] = []
    for stage in parsed.stages:
        for copy in stage.all("COPY") + stage.all("ADD"):
            if not any(flag.startswith("--from=") for flag in copy.flags):
                sources += list(copy.value[:-1])
    return sources


def dockerignore_allowed() -> list[str]:
    """The `!` entries of an allow-list .dockerignore (one that starts by ignoring `*`)."""
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore should ignore everything, then allow what is copied"
    return [line[1:].rstrip("/") for line in lines if line.startswith("!")]
