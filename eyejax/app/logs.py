"""Logging helpers for the command-line tools (``eyejax``, ``eyejax-prune``).

The tools log through Python's ``logging`` (logger ``eyejax``); Hydra's job logging
(``conf/hydra/job_logging/eyejax.yaml``) sends INFO lines to stdout as plain text, warnings and
errors to stderr, and everything, time-stamped, to the job's log file in the run directory.
"""
from __future__ import annotations

import logging

log = logging.getLogger("eyejax")


class MaxLevelFilter(logging.Filter):
    """Passes records at or below ``level`` (so stdout gets INFO and stderr the warnings)."""

    def __init__(self, level: int | str = logging.INFO):
        super().__init__()
        self.level = logging.getLevelName(level) if isinstance(level, str) else int(level)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno <= self.level

