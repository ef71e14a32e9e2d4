"""Logging set-up shared by the worker and the CLI: one line per event, to stderr.

Only the project's own logger gets a handler: under `arq worker.WorkerSettings`, arq has already
configured its own, and a root handler would print each arq line twice.
"""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PROJECT_LOGGER = "prospect_worker"


def configure_logging(level: int = logging.INFO) -> None:
    logger = logging.getLogger(PROJECT_LOGGER)
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # httpx logs every request at INFO with its full URL, and the email finder's URL carries its
    # API key: keep those lines out at any level below WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
