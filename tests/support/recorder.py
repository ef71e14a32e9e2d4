"""An observer for runtime tests that keeps every job outcome, as the metrics observer counts."""

from typing import Any

from worker.runtime.outcomes import JobOutcome


class Recorder:
    """Every outcome the runtime reports, in order, and the payloads a failure hook was given
    (a test's hook appends to `failed_hooks`)."""

    def __init__(self) -> None:
        self.outcomes: list[JobOutcome] = []
        self.failed_hooks: list[str] = []

    def started(self, **_: Any) -> None:
        pass

    def ended(self, outcome: JobOutcome) -> None:
        self.outcomes.append(outcome)

    def kinds(self) -> list[str]:
        return [outcome.kind for outcome in self.outcomes]
