"""The queue order's arithmetic: a kept shift gives its class back, and a job's due time is
found from its score whichever way it was scored (worker/scheduling/queueorder.py)."""

import pytest

from jobs.models import Priority
from worker.scheduling.queueorder import PRIORITIES, PriorityScale, became_due_ms

SCALE = PriorityScale(step_s=600.0)
STEP = SCALE.step_ms


@pytest.mark.parametrize("priority", PRIORITIES)
@pytest.mark.parametrize("rank", [None, 1, 250_000, 10**9])
def test_a_kept_shift_gives_its_class_back(priority: Priority, rank: int | None) -> None:
    assert SCALE.priority_of(SCALE.shift_ms(priority, rank)) == priority


def test_no_shift_or_a_strange_one_is_the_maintenance_level() -> None:
    assert SCALE.priority_of(None) == "maintenance"
    assert SCALE.priority_of(-5) == "maintenance"
    assert SCALE.priority_of(99 * STEP) == "reply"  # a larger step once: the top class


NOW, ENQUEUED = 10_000_000, 9_000_000


def test_a_job_in_its_class_became_due_a_shift_after_its_score() -> None:
    shift = SCALE.shift_ms("hot", 7)
    # Enqueued to run at once: scored a shift ahead of its enqueue time.
    assert became_due_ms(ENQUEUED - shift, shift, ENQUEUED, NOW) == ENQUEUED
    # A retry promoted back into its class once due at `at`.
    at = NOW - 500
    assert became_due_ms(at - shift, shift, ENQUEUED, NOW) == at


def test_a_retry_not_promoted_yet_is_scored_at_its_due_time() -> None:
    at = NOW - 200  # due 200 ms ago, started before any worker promoted it
    assert became_due_ms(at, SCALE.shift_ms("warm"), ENQUEUED, NOW) == at


def test_a_job_without_a_shift_is_due_at_its_score() -> None:
    assert became_due_ms(ENQUEUED, None, ENQUEUED, NOW) == ENQUEUED
    assert became_due_ms(NOW - 3, 0, None, NOW) == NOW - 3


def test_a_deferral_shorter_than_the_shift_starts_early_with_no_wait() -> None:
    shift, defer = SCALE.shift_ms("reply"), 60_000
    due = ENQUEUED + defer
    assert became_due_ms(due - shift, shift, ENQUEUED, ENQUEUED + 5) == due  # later than now
