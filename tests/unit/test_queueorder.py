"""The queue order's arithmetic: a kept shift gives its class back (worker/queueorder.py)."""

import pytest

from jobs.deps import Priority
from worker.queueorder import PRIORITIES, PriorityScale

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
