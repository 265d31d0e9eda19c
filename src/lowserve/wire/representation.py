"""Which variant of a stored representation to send, and which bytes of it (RFC 9110).

:func:`accepted_codings` reads ``Accept-Encoding`` (§12.5.3) into the offered content
codings a client takes, best first; :func:`byte_ranges` reads ``Range`` (§14.1.2,
§14.2) into the byte spans to send, sorted and coalesced, with a bound on how many.
Both are plain functions of header text: no I/O, no state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .headers import TOKEN

__all__ = ["MAX_RANGES", "accepted_codings", "byte_ranges"]

#: Spans a ``Range`` may ask for once overlapping and adjacent ones are joined; past
#: it the header is ignored and the whole representation sent (RFC 9110 §14.2 allows it).
MAX_RANGES = 16

_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")
_ALIASES = {"x-gzip": "gzip"}  # §8.4.1.3: x-gzip is gzip
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)\Z")
_BIG = 10**18  # a position past any file: longer digit strings are never converted


def _weights(accept_encoding: str) -> dict[str, float]:
    """Each coding named in *accept_encoding* and its q (the first mention counts).

    Names are case-insensitive; an element that is not a token or whose q is not a
    qvalue (``0``, ``0.5``, ``1.000``…) is dropped, as is an empty one.
    """
    weights: dict[str, float] = {}
    for element in accept_encoding.split(","):
        name, *params = (piece.strip() for piece in element.split(";"))
        if not TOKEN.match(name):
            continue
        q: float | None = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                value = value.strip()
                q = float(value) if _QVALUE.match(value) else None
        name = name.lower()
        name = _ALIASES.get(name, name)
        if q is not None:
            weights.setdefault(name, q)
    return weights


def accepted_codings(accept_encoding: str | None, offered: Iterable[str]) -> list[str]:
    """The codings of *offered* (lower case; ``"identity"`` for none) that
    *accept_encoding* takes, highest q first, *offered*'s order breaking ties.

    A coding not named takes ``*``'s q, or 0; ``identity`` takes ``*``'s q, or 1
    (§12.5.3). No header at all takes ``identity`` only: a variant is not sent to a
    client that did not ask for one.
    """
    if accept_encoding is None:
        return ["identity"] if "identity" in offered else []
    weights = _weights(accept_encoding)
    ranked = []
    for order, coding in enumerate(offered):
        default = weights.get("*", 1.0 if coding == "identity" else 0.0)
        q = weights.get(coding, default)
        if q > 0:
            ranked.append((-q, order, coding))
    return [coding for _, _, coding in sorted(ranked)]


def _position(digits: str) -> int:
    return int(digits) if len(digits) < 19 else _BIG


def byte_ranges(value: str, size: int, limit: int = MAX_RANGES) -> list[tuple[int, int]] | None:
    """The ``(start, stop)`` spans (*stop* exclusive) that the ``Range`` *value* asks
    of a representation of *size* bytes: sorted, overlapping and adjacent ones joined.

    ``None``: ignore the header and send it all (a unit other than ``bytes``, which is
    case-insensitive; more than *limit* spans). ``[]``: answer 416 (no span can be
    satisfied, ``bytes=-0`` included, or the header is malformed: a spec without a
    digit, a last position before its first, a character other than an ASCII digit).
    """
    unit, eq, specs = value.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    spans = []
    for spec in specs.split(",") if eq else ():
        spec = spec.strip()
        if not spec:
            continue  # an empty list element (§5.6.1)
        m = _RANGE_SPEC.match(spec)
        if m is None or m.group(1) == m.group(2) == "":
            return []
        first, last = m.group(1), m.group(2)
        if first:
            start, stop = _position(first), _position(last) + 1 if last else size
            if last and stop <= start:
                return []
        else:
            start, stop = size - _position(last), size
        start, stop = max(start, 0), min(stop, size)
        if start < stop:  # else unsatisfiable (past the end, a suffix of 0, no bytes)
            spans.append((start, stop))
    joined: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(stop, joined[-1][1]))
        else:
            joined.append((start, stop))
    return None if len(joined) > limit else joined
