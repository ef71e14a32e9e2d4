"""Logging set-up shared by the worker and the CLI: one line per event, to stderr."""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    # httpx logs every request at INFO, with full URLs; keep those out of the worker's log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
