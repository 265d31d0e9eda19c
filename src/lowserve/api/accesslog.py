"""The access log, in aiohttp's format codes.

==========  ==================================================
``%a``      remote address
``%t``      time the request was received, ``[10/Oct/2026:13:55:36 +0000]``
``%P``      process id
``%r``      request line, ``GET /path HTTP/1.1``
``%s``      status code
``%b``      response body bytes
``%T``      seconds taken (whole)
``%Tf``     seconds taken, fractional
``%D``      microseconds taken
``%{H}i``   request header *H*
``%{H}o``   response header *H*
``%{V}e``   environment variable *V*
==========  ==================================================

The format is compiled once; a disabled logger costs one ``isEnabledFor`` check.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse

__all__ = ["AbstractAccessLogger", "AccessLogger"]

_CODE = re.compile(r"%(\{([A-Za-z0-9_\-]+)\}([ioe])|Tf|[atPrsbOTD%])")
_Part = Callable[["BaseRequest", "StreamResponse", float], str]


class AbstractAccessLogger:
    """Base class for access loggers: override :meth:`log`."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        self.logger = logger
        self.log_format = log_format

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        raise NotImplementedError

    @property
    def enabled(self) -> bool:
        return True


def _request_time(time: float) -> str:
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=time)
    return now.strftime("[%d/%b/%Y:%H:%M:%S +0000]")


_UNKNOWN = re.compile(r"%(?:\{[^}]*\}[^ioe]|[^%])")  # a % code _CODE did not take


def _compile(fmt: str) -> list[str | _Part]:
    parts: list[str | _Part] = []
    pos = 0
    for m in _CODE.finditer(fmt):
        if m.start() > pos:
            parts.append(fmt[pos : m.start()])
        pos = m.end()
        code = m.group(1)
        if m.group(2):
            name, kind = m.group(2), m.group(3)
            parts.append(_keyed(kind, name))
        elif code == "%":
            parts.append("%")
        else:
            parts.append(_SIMPLE[code])
    if pos < len(fmt):
        parts.append(fmt[pos:])
    unknown = _UNKNOWN.findall("".join(p for p in parts if isinstance(p, str)))
    if unknown:
        logging.getLogger("lowserve").warning(
            "access log format %r: unknown code(s) %s are printed as they are",
            fmt,
            ", ".join(sorted(set(unknown))),
        )
    return parts


def _keyed(kind: str, name: str) -> _Part:
    def request_header(r: BaseRequest, s: StreamResponse, t: float) -> str:
        return r.headers.get(name, "-")

    def response_header(r: BaseRequest, s: StreamResponse, t: float) -> str:
        return s.headers.get(name, "-")

    def environ(r: BaseRequest, s: StreamResponse, t: float) -> str:
        return os.environ.get(name, "-")

    return request_header if kind == "i" else response_header if kind == "o" else environ


_SIMPLE: dict[str, _Part] = {
    "a": lambda r, s, t: r.remote or "-",
    "t": lambda r, s, t: _request_time(t),
    "P": lambda r, s, t: f"<{os.getpid()}>",
    "r": lambda r, s, t: f"{r.method} {r.raw_path} HTTP/{r.version.major}.{r.version.minor}",
    "s": lambda r, s, t: str(s.status),
    "b": lambda r, s, t: str(s.body_length),
    "O": lambda r, s, t: str(s.body_length),
    "T": lambda r, s, t: str(round(t)),
    "Tf": lambda r, s, t: f"{t:06f}",
    "D": lambda r, s, t: str(round(t * 1_000_000)),
}


class AccessLogger(AbstractAccessLogger):
    """Writes one INFO record per response to *logger*, formatted by *log_format*."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._parts = _compile(log_format)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        try:
            message = "".join(
                p if isinstance(p, str) else p(request, response, time) for p in self._parts
            )
            self.logger.info(message, extra={"remote": request.remote, "status": response.status})
        except Exception:
            self.logger.exception("Error in the access logger")
