"""Logging for the command: plain lines on a terminal, ``<N>`` priorities for journald."""

from __future__ import annotations

import json
import logging
import logging.config
import os
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


class LogConfigError(Exception):
    """--log-config cannot be used; the message is one line for the user."""


def load_log_config(path: str) -> None:
    """Apply a logging configuration file: ``.json`` or ``.yaml``/``.yml`` (with PyYAML
    installed) as a ``dictConfig``, anything else (``.ini``, ``.conf``) as a ``fileConfig``."""
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".json":
            with open(path) as fh:
                logging.config.dictConfig(json.load(fh))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped,unused-ignore]
            except ImportError:
                raise LogConfigError(f"--log-config {path}: YAML needs PyYAML installed") from None
            with open(path) as fh:
                logging.config.dictConfig(yaml.safe_load(fh))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except Exception as exc:
        raise LogConfigError(f"--log-config {path}: {type(exc).__name__}: {exc}") from None


def setup_logging(level: str, log_config: str | None = None, *, process: str = "") -> None:
    """Configure the root logger once per process."""
    if log_config:
        load_log_config(log_config)
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
