"""Header values both requests and responses interpret: tokens, media types, dates, ETags.

Each grammar is written here once: the RFC 9110 token (:data:`TCHAR`, :data:`TOKEN`),
the HTTP-date (:func:`format_http_date`, :func:`parse_http_date`) and the entity tag
(:func:`parse_etag`, :func:`parse_etags`, :func:`format_etag`).
"""

from __future__ import annotations

import datetime
import re
import time
from email.utils import parsedate_to_datetime
from typing import Final, NamedTuple

__all__ = [
    "ETAG_ANY",
    "TCHAR",
    "TOKEN",
    "ETag",
    "format_etag",
    "format_http_date",
    "parse_content_type",
    "parse_etag",
    "parse_etags",
    "parse_http_date",
    "validate_etag_value",
]

#: The characters of an RFC 9110 token (§5.6.2), as the body of a ``[...]`` class.
TCHAR: Final = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
#: A whole string that is one token: ``TOKEN.match(name)``.
TOKEN: Final = re.compile(rf"[{TCHAR}]+\Z")
_MEDIA_TYPE = re.compile(rf"[{TCHAR}]+/[{TCHAR}]+\Z")

ETAG_ANY = "*"
_ETAGC = r"[\x21\x23-\x7e\x80-\xff]*"  # RFC 9110 §8.8.3's etagc, and empty
_QUOTED_ETAG = rf'(W/)?"({_ETAGC})"'
_ETAG = re.compile(_QUOTED_ETAG)
_ETAG_IN_LIST = re.compile(rf"\s*{_QUOTED_ETAG}\s*(?:,|\Z)")
_ETAG_VALUE = re.compile(rf"{_ETAGC}\Z")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ETag(NamedTuple):
    """An entity tag: ``value`` without quotes, ``is_weak`` for ``W/`` tags."""

    value: str
    is_weak: bool = False


def validate_etag_value(value: str) -> None:
    """Raise ValueError unless *value* can stand between an ETag's quotes (or is ``*``)."""
    if not isinstance(value, str) or (value != ETAG_ANY and not _ETAG_VALUE.match(value)):
        raise ValueError(f"Value {value!r} is not a valid etag.")


def format_etag(tag: ETag) -> str:
    """The header text of *tag*: ``"v"``, ``W/"v"``, or ``*`` (never weak)."""
    if tag.value == ETAG_ANY:
        return ETAG_ANY
    return f'W/"{tag.value}"' if tag.is_weak else f'"{tag.value}"'


def parse_etag(value: str | None) -> ETag | None:
    """An ``ETag`` header's one tag (``"v"``, ``W/"v"`` or ``*``), or None when absent
    or malformed."""
    if not value:
        return None
    if value == ETAG_ANY:
        return ETag(ETAG_ANY)
    m = _ETAG.fullmatch(value)
    return None if m is None else ETag(m.group(2), bool(m.group(1)))


def parse_etags(value: str | None) -> tuple[ETag, ...] | None:
    """``If-Match``/``If-None-Match`` as a tuple of ETags (up to the first malformed
    one), or None when absent."""
    if value is None:
        return None
    if value.strip() == ETAG_ANY:
        return (ETag(ETAG_ANY),)
    tags = []
    pos = 0
    while pos < len(value):
        m = _ETAG_IN_LIST.match(value, pos)
        if m is None:
            break
        tags.append(ETag(m.group(2), bool(m.group(1))))
        pos = m.end()
    return tuple(tags)


def parse_content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lower-cased media type and its parameters."""
    if not value:
        return "application/octet-stream", {}
    mtype, *rest = value.split(";")
    if not _MEDIA_TYPE.match(mtype.strip()):  # "jpeg": no valid type/subtype (as aiohttp)
        return "application/octet-stream", {}
    params: dict[str, str] = {}
    for item in rest:
        key, sep, val = item.partition("=")
        key = key.strip().lower()
        if sep and key:
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1]
            params[key] = val
    return mtype.strip().lower() or "application/octet-stream", params


def format_http_date(when: float | datetime.datetime) -> str:
    """*when* (seconds since the epoch, or a datetime; naive is UTC) as an IMF-fixdate,
    ``Sun, 06 Nov 1994 08:49:37 GMT``, the fraction of a second dropped. English names
    whatever the locale."""
    t = when.utctimetuple() if isinstance(when, datetime.datetime) else time.gmtime(when)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def parse_http_date(value: str | None) -> datetime.datetime | None:
    """An HTTP date as an aware UTC datetime, or None if absent or malformed."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed
