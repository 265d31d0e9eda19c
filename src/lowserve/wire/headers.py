"""Header values both requests and responses interpret: media types, dates, ETags."""

from __future__ import annotations

import datetime
import re
from email.utils import parsedate_to_datetime
from typing import NamedTuple

__all__ = [
    "ETAG_ANY",
    "ETag",
    "parse_content_type",
    "parse_etags",
    "parse_http_date",
]

ETAG_ANY = "*"
_ETAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|\Z)')
_ETAG_VALUE = re.compile(r"[\x21\x23-\x7e\x80-\xff]*\Z")
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}\Z")


class ETag(NamedTuple):
    """An entity tag: ``value`` without quotes, ``is_weak`` for ``W/`` tags."""

    value: str
    is_weak: bool = False


def validate_etag_value(value: str) -> None:
    if not isinstance(value, str) or (value != ETAG_ANY and not _ETAG_VALUE.match(value)):
        raise ValueError(f"Value {value!r} is not a valid etag.")


def parse_etags(value: str | None) -> tuple[ETag, ...] | None:
    """``If-Match``/``If-None-Match`` as a tuple of ETags, or None when absent."""
    if value is None:
        return None
    if value.strip() == ETAG_ANY:
        return (ETag(ETAG_ANY),)
    tags = []
    pos = 0
    while pos < len(value):
        m = _ETAG.match(value, pos)
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
