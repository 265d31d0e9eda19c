"""The ``Cookie`` request header (RFC 6265 §4.2, §5.4): name/value pairs.

A request carries cookies only, never attributes: ``Path=/`` or ``Secure`` in a
``Cookie`` header are cookies with those names. Names are read as browsers send
them, ``{}``, ``[]``, ``()`` and ``/`` included. One pair that cannot be read is
skipped; the pairs around it are kept.

The results are aiohttp 3.14's (``request.cookies``), checked against its parser
on the same strings in ``tests/wire/test_cookies.py``. A pair ends at ``;`` or at
whitespace, except inside a quoted value (``a="x; y"``) or a date
(``d=Wed, 09 Jun 2021 10:18:14 GMT``); a pair that does not fit that grammar is
cut at the next ``;`` and its name and value taken around the first ``=``.

A header with names that cannot be cookie names (a control character, a comma,
anything outside ASCII) is one DEBUG line on ``lowserve.server``, as aiohttp logs
it: a client's fault, so nothing more.
"""

from __future__ import annotations

import logging
import re

__all__ = ["parse_cookie_header"]

# Printable ASCII but for  " ; = \  (a name), and with = (a bare value).
_NAME_CHAR = r"[!#-:<>-\[\]-~]"
_VALUE_CHAR = r"[!#-:<-\[\]-~]"
_RFC1123_DATE = r"(?:\w{3,6}day|\w{3}),\s[\w\s-]{9,11}\s[\d:]{8}\s(?:GMT|[+-]\d{4})"
_ASCTIME_DATE = r"\w{3}\s+\w{3}\s+[\s\d]\d\s+\d\d:\d\d:\d\d\s+\d{4}"
_PAIR = re.compile(
    rf"""\s*(?P<name>{_NAME_CHAR}+)
    (?:\s*=\s*(?P<value>
        "(?:[^"\\]|\\.)*"        # a quoted string
      | "[^";]*                  # a quote never closed, up to ; or another quote
      | {_RFC1123_DATE}
      | {_ASCTIME_DATE}
      | {_VALUE_CHAR}*           # a bare value, maybe empty
    ))?
    \s*(?:\s+|;|$)""",
    re.ASCII | re.VERBOSE,
)
# What aiohttp accepts as a name once a pair is read: no comma, nothing outside ASCII.
_GOOD_NAME = re.compile(r"[!#-+\--:<-\[\]-~]+\Z")
_ESCAPE = re.compile(r"\\(?:([0-3][0-7][0-7])|(.))")
_SHOWN = 10  # illegal names quoted in the DEBUG line; the rest are counted

log = logging.getLogger("lowserve.server")


def _unescape(m: re.Match[str]) -> str:
    return chr(int(m[1], 8)) if m[1] else m[2]


def _unquote(value: str) -> str:
    """A quoted value without its quotes and backslash escapes (``\\"``, ``\\073``)."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _ESCAPE.sub(_unescape, value[1:-1])


def parse_cookie_header(header: str) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs of one ``Cookie`` header value, in order."""
    pairs: list[tuple[str, str]] = []
    illegal: list[str] = []
    i, n = 0, len(header)
    while i < n:
        m = _PAIR.match(header, i)
        if m is not None:
            i = m.end()
            name, value = m["name"], m["value"] or ""
        else:
            # Not a pair by the grammar: take what lies around '=' up to the next ';'.
            semi = header.find(";", i)
            end = n if semi == -1 else semi
            eq = header.find("=", i, end)
            name = "" if eq == -1 else header[i:eq].strip()
            value = header[eq + 1 : end].strip()
            i = end + 1
            if eq == -1:
                continue  # no pair at all (aiohttp skips it without a word)
        if _GOOD_NAME.match(name):
            pairs.append((name, _unquote(value)))
        else:
            illegal.append(name)
    if illegal and log.isEnabledFor(logging.DEBUG):
        more = f" and {len(illegal) - _SHOWN} more" if len(illegal) > _SHOWN else ""
        log.debug("Cannot load cookie. Illegal cookie names: %r%s", illegal[:_SHOWN], more)
    return pairs
