"""What every case is handed: the throwaway Redis, the size, the rounds, the peers chosen."""

import sys
from dataclasses import dataclass

SIZES = ("full", "quick", "tiny")


@dataclass
class Context:
    url: str
    size: str  # one of SIZES: each case scales its own counts by it
    rounds: int
    concurrency: int = 100
    skip: tuple[str, ...] = ()  # peers left out (`--skip taskiq`)

    def kinds(self, kinds: list[str]) -> list[str]:
        return [kind for kind in kinds if kind not in self.skip]

    @staticmethod
    def turn(kinds: list[str], round_: int) -> list[str]:
        """This round's order: rotated by one each round."""
        shift = round_ % len(kinds)
        return kinds[shift:] + kinds[:shift]

    @staticmethod
    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)
