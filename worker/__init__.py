"""prospect-worker's engine: arq wiring, the job runtime, fan-out, progress and the CLI.

`arq worker.WorkerSettings` loads the worker. The class is built on first access from the
environment (PEP 562 module __getattr__) rather than at import, so importing the package never
reads settings, and a bad setting, or an arq other than the one the engine is written against,
stops the process with one line saying so.
"""

import logging
import sys
from typing import Any


def __getattr__(name: str) -> Any:
    if name != "WorkerSettings":
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    from settings import SettingsError, load_settings
    from worker.app import worker_settings
    from worker.engine.arqjobs import UnsupportedArq, check_arq_version
    from worker.engine.worker import use_in_arq_cli
    from worker.observability.log_setup import configure_logging

    try:
        check_arq_version()
        settings = load_settings()
        configure_logging(logging.getLevelNamesMapping()[settings.log_level], settings.log_format)
        use_in_arq_cli()
        return worker_settings(settings)  # checks the per-job settings against the job types
    except (SettingsError, UnsupportedArq) as exc:
        print(f"prospect-worker: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
