"""`arq tests.support.slow_poll.WorkerSettings`: the production worker (`worker.WorkerSettings`,
settings from the environment) polling only every `POLL_S`, beyond what `PW_POLL_DELAY_S` allows.

arq polls once at start, then every `POLL_S`: a job that a test sees start within a bound far
shorter than that was started by something other than the poll (the wake-up signal)."""

from typing import Any

POLL_S = 600.0


def __getattr__(name: str) -> Any:
    if name != "WorkerSettings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import worker

    # arq reads a settings class's own attributes (its __dict__), not inherited ones: copy them.
    attrs = {k: v for k, v in vars(worker.WorkerSettings).items() if not k.startswith("__")}
    return type("WorkerSettings", (), {**attrs, "poll_delay": POLL_S})
