"""The job type declarations (jobs/spec.py) as the registry collects them, and the search for
Lua scripts on the built objects (worker/scripts.py)."""

import inspect
from dataclasses import dataclass
from typing import get_type_hints

import fakeredis
import pytest
from redis.asyncio import Redis

from jobs.spec import JobType
from settings import Settings
from worker.app import service_rates
from worker.registry import JOB_TYPES, job_specs, job_types
from worker.scripts import find_scripts


def test_every_declared_type_loads_a_body_that_fits_its_declaration() -> None:
    settings = Settings.model_construct()
    specs = job_specs(settings)
    assert list(specs) == [job.name for job in JOB_TYPES]
    for job in JOB_TYPES:
        spec = specs[job.name]
        # The payload model the worker validates with is the one the body takes.
        payload_parameter = list(inspect.signature(spec.body).parameters)[1]
        assert get_type_hints(spec.body)[payload_parameter] is spec.payload
        declared = (job.limit, job.priority, job.timeout_s)
        assert (spec.limit, spec.priority, spec.timeout_s) == declared


def test_every_declared_service_is_one_the_rate_limiter_knows() -> None:
    known = service_rates(Settings.model_construct())
    assert {s for job in JOB_TYPES for s in job.services} <= known.keys()


def test_two_types_of_one_name_are_refused() -> None:
    twice: tuple[JobType, ...] = (*JOB_TYPES, JOB_TYPES[0])
    with pytest.raises(ValueError, match="share a name"):
        job_types(Settings.model_construct(), twice)


@dataclass(frozen=True)
class _Parts:
    held: object
    many: tuple[object, ...]


class _Owner:
    def __init__(self, redis: Redis, lua: str) -> None:
        self._script = redis.register_script(lua)
        self._client = redis  # another library's object: not walked into


class _Slotted:
    __slots__ = ("by_name",)

    def __init__(self, by_name: dict[str, object]) -> None:
        self.by_name = by_name


def test_scripts_are_found_on_the_objects_that_hold_them_each_once() -> None:
    redis = fakeredis.FakeAsyncRedis()
    first, second, third = (_Owner(redis, f"return {n}") for n in (1, 2, 3))
    parts = _Parts(held=first, many=(second, _Slotted({"x": third, "again": first})))
    found = find_scripts(parts, first, packages=("tests",))
    assert [s.script for s in found] == ["return 1", "return 2", "return 3"]
    assert find_scripts(parts) == []  # its classes are not of the worker's packages
    assert find_scripts(redis, [1, "a"], None) == []
