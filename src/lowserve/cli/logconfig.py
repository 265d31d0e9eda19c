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
    installed) as a ``dictConfig``, anything else (``.ini``, ``.conf``) as a ``fileConfig``.

    All three keep the loggers that already exist: a dict's ``disable_existing_loggers``
    defaults to false here, as the ``fileConfig`` is called. lowserve's own loggers
    (``lowserve``, ``lowserve.access``, ...) keep working even when a dict sets it to
    true, unless the configuration names them.
    """
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".json":
            with open(path) as fh:
                _dict_config(json.load(fh))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml  # type: ignore[import-untyped,unused-ignore]
            except ImportError:
                raise LogConfigError(f"--log-config {path}: YAML needs PyYAML installed") from None
            with open(path) as fh:
                _dict_config(yaml.safe_load(fh))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except Exception as exc:
        raise LogConfigError(f"--log-config {path}: {type(exc).__name__}: {exc}") from None


def _dict_config(config: object) -> None:
    """``dictConfig`` *config*, sparing the loggers that exist (see :func:`load_log_config`)."""
    if not isinstance(config, dict):
        raise ValueError(f"the file holds a {type(config).__name__}, not a mapping")
    config = {"disable_existing_loggers": False, **config}
    logging.config.dictConfig(config)
    named = set(config.get("loggers") or ())
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        ours = name == "lowserve" or name.startswith("lowserve.")
        if ours and name not in named and isinstance(logger, logging.Logger):
            logger.disabled = False


def setup_logging(
    level: str, log_config: str | None = None, *, process: str = "", bare_access: bool = False
) -> None:
    """Configure the root logger once per process; with *bare_access* (the ``json``
    access-log format), ``lowserve.access`` lines are printed as they are, one
    object per line, with no timestamp, level or name before them."""
    if log_config:
        load_log_config(log_config)
        return
    handler = logging.StreamHandler(sys.stderr)
    tag = f"[{process}] " if process else ""
    journal = systemd.journal_stderr()
    access = logging.getLogger("lowserve.access")
    if bare_access:
        bare = logging.StreamHandler(sys.stderr)
        bare.setFormatter(JournalFormatter("%(message)s") if journal else logging.Formatter())
        access.handlers[:] = [bare]
        access.propagate = False
    if journal:
        handler.setFormatter(JournalFormatter(f"{tag}%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
