"""Logging for the command: plain lines on a terminal, ``<N>`` priorities for journald."""

from __future__ import annotations

import json
import logging
import logging.config
import sys

from . import systemd

__all__ = ["setup_logging"]

LEVELS = ("critical", "error", "warning", "info", "debug")
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    """No timestamp (the journal adds one); a ``<N>`` syslog priority prefix per line."""

    def format(self, record: logging.LogRecord) -> str:
        prio = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines())


def setup_logging(level: str, log_config: str | None = None, *, process: str = "") -> None:
    """Configure the root logger once per process."""
    if log_config:
        with open(log_config) as fh:
            logging.config.dictConfig(json.load(fh))
        return
    handler = logging.StreamHandler(sys.stderr)
    tag = f"[{process}] " if process else ""
    if systemd.journal_stderr():
        handler.setFormatter(JournalFormatter(f"{tag}%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
