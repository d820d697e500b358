"""A log that says a recurring problem once, then at most every so often.

A camera that fails every frame, or a client that keeps sending garbage, would
otherwise fill the journal; each kind of problem (a key) is logged the first
time and then at most every ``every_s`` seconds.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class RateLimitedLog:
    """Log a recurring problem the first time and then at most every ``every_s`` seconds."""

    def __init__(self, every_s: float = 30.0, logger: logging.Logger | None = None):
        self.every_s = every_s
        self.logger = logger or log
        self._last: dict[str, float] = {}

    def warning(self, key: str, message: str, *args) -> None:
        """Log ``message % args`` as a warning unless ``key`` was logged under ``every_s`` ago."""
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self.every_s:
            self._last[key] = now
            self.logger.warning(message, *args)
