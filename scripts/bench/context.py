"""What every case is handed: the throwaway Redis, the size, the rounds, the peers chosen."""

import sys
from dataclasses import dataclass
from pathlib import Path

SIZES = ("full", "quick", "tiny")
BEFORE = "pw before"


@dataclass
class Context:
    url: str
    size: str  # one of SIZES: each case scales its own counts by it
    rounds: int
    concurrency: int = 100
    skip: tuple[str, ...] = ()  # peers left out (`--skip taskiq`)
    # Another checkout of the project (`--before PATH`): its worker runs beside this one's as
    # the column BEFORE, interleaved in the same rounds, in the cases that drain in children.
    before: Path | None = None

    def kinds(self, kinds: list[str]) -> list[str]:
        chosen = [kind for kind in kinds if kind not in self.skip]
        if self.before is not None and "pw" in chosen:
            chosen.insert(chosen.index("pw") + 1, BEFORE)
        return chosen

    def tree(self, column: str) -> tuple[str, Path | None]:
        """The worker kind of a column, and the checkout it runs from (None: this one)."""
        return ("pw", self.before) if column == BEFORE else (column, None)

    @staticmethod
    def turn(kinds: list[str], round_: int) -> list[str]:
        """This round's order: rotated by one each round."""
        shift = round_ % len(kinds)
        return kinds[shift:] + kinds[:shift]

    @staticmethod
    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)
