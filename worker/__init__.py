"""prospect-worker's engine: arq wiring, the job runtime, fan-out, progress and the CLI.

`arq worker.WorkerSettings` loads the worker. The class is built on first access from the
environment (PEP 562 module __getattr__) rather than at import, so importing the package never
reads settings, and a bad setting stops the process with one line naming the variable.
"""

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name != "WorkerSettings":
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    from settings import SettingsError, load_settings
    from worker.app import worker_settings
    from worker.engine.worker import use_in_arq_cli
    from worker.observability.logs import configure_logging

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"prospect-worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(log_format=settings.log_format)
    use_in_arq_cli()
    return worker_settings(settings)
