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

The format ``json`` writes one JSON object per line instead (see :data:`JSON_FIELDS`):
the default text format's fields, plus the duration and the process. Under the
``lowserve`` command such lines are printed bare (no timestamp or level before them),
so that each line is one object for a log shipper.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .request import BaseRequest
    from .response import StreamResponse

__all__ = ["JSON_FIELDS", "AbstractAccessLogger", "AccessLogger", "ExcludingAccessLogger"]

#: The fields of a ``json`` access-log line, in order.
JSON_FIELDS = (
    "time",  # when the request arrived, ISO 8601 in UTC with milliseconds (%t)
    "remote",  # the client's address (%a)
    "method",
    "path",  # the request target as sent (%r's middle)
    "version",  # "HTTP/1.1"
    "status",  # (%s)
    "bytes",  # response body bytes (%b)
    "referer",  # the Referer header, or null
    "user_agent",  # the User-Agent header, or null
    "duration",  # seconds taken, a float (%Tf)
    "pid",  # the process (%P)
    "worker",  # the worker's number under the lowserve command, else null
)

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
        self._json = log_format == "json"
        self._parts = [] if self._json else _compile(log_format)
        number = os.environ.get("LOWSERVE_WORKER_NUMBER", "")
        self._worker = int(number) if number.isdigit() else None

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        try:
            if self._json:
                message = self._json_line(request, response, time)
            else:
                message = "".join(
                    p if isinstance(p, str) else p(request, response, time) for p in self._parts
                )
            self.logger.info(message, extra={"remote": request.remote, "status": response.status})
        except Exception:
            self.logger.exception("Error in the access logger")

    def _json_line(self, r: BaseRequest, s: StreamResponse, t: float) -> str:
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=t)
        fields = (
            start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            r.remote,
            r.method,
            r.raw_path,
            f"HTTP/{r.version.major}.{r.version.minor}",
            s.status,
            s.body_length,
            r.headers.get("Referer"),
            r.headers.get("User-Agent"),
            round(t, 6),
            os.getpid(),
            self._worker,
        )
        return json.dumps(dict(zip(JSON_FIELDS, fields, strict=True)), separators=(",", ":"))


class ExcludingAccessLogger(AbstractAccessLogger):
    """Passes to *inner* every request but those for *paths* (``access_log_exclude``):
    an exact path, or a prefix where the entry ends with ``*``."""

    def __init__(self, inner: AbstractAccessLogger, paths: tuple[str, ...]) -> None:
        super().__init__(inner.logger, inner.log_format)
        self.inner = inner
        self._exact = frozenset(p for p in paths if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))

    @property
    def enabled(self) -> bool:
        return self.inner.enabled

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = request.path
        if path in self._exact or (self._prefixes and path.startswith(self._prefixes)):
            return
        self.inner.log(request, response, time)
