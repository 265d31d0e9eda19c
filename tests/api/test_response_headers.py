"""The header properties of a response (cookies, length, type, charset, Last-Modified,
ETag), each step run on aiohttp's StreamResponse and on lowserve's: the same headers,
the same property values and the same exceptions."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web as aioweb

import lowserve
from lowserve import web

Step = Callable[[Any], Any]


def _outcome(resp: Any, step: Step) -> tuple[Any, ...]:
    try:
        value = step(resp)
    except Exception as exc:
        return ("raised", type(exc).__name__)
    cookies = {k: m.OutputString() for k, m in resp.cookies.items()}
    return ("ok", repr(value), sorted(resp.headers.items()), cookies)


def _etag(resp: Any) -> Any:
    """The ETag type of *resp*'s library (``from aiohttp import ETag`` and lowserve's)."""
    return lowserve.ETag if isinstance(resp, web.StreamResponse) else aiohttp.ETag


STEPS: dict[str, list[Step]] = {
    "cookie attributes": [
        lambda r: r.set_cookie("a", "1", domain="x.org", max_age=10, secure=True, httponly=True),
        lambda r: r.set_cookie("a", "2", samesite="Lax", version="1"),  # max-age dropped
        lambda r: r.set_cookie("b", "v", expires="Wed, 21 Oct 2037 07:28:00 GMT"),
        lambda r: r.del_cookie("a", domain="x.org", samesite="Strict"),
        lambda r: r.set_cookie("a", "back"),  # the deletion's expires is dropped
        lambda r: r.del_cookie("never-set"),
    ],
    "content length": [
        lambda r: r.content_length,
        lambda r: setattr(r, "content_length", 12),
        lambda r: r.content_length,
        lambda r: setattr(r, "content_length", None),
        lambda r: r.enable_chunked_encoding(),
        lambda r: setattr(r, "content_length", 3),  # refused once chunked
    ],
    "content type and charset": [
        lambda r: (r.content_type, r.charset),
        lambda r: setattr(r, "charset", "utf-8"),  # refused for octet-stream
        lambda r: setattr(r, "content_type", "text/plain"),
        lambda r: setattr(r, "charset", "UTF-8"),
        lambda r: (r.content_type, r.charset),
        lambda r: setattr(r, "content_type", "text/html"),  # the charset stays
        lambda r: setattr(r, "charset", None),
        lambda r: r.headers["Content-Type"],
    ],
    "last modified": [
        lambda r: r.last_modified,
        lambda r: setattr(r, "last_modified", 1_700_000_000.4),
        lambda r: r.last_modified,
        lambda r: setattr(
            r, "last_modified", datetime.datetime(2024, 5, 1, 12, 0, 0, 500, datetime.timezone.utc)
        ),
        lambda r: setattr(r, "last_modified", datetime.datetime(1999, 12, 31, 23, 59, 59)),
        lambda r: r.headers["Last-Modified"],  # a naive datetime is UTC
        lambda r: setattr(
            r,
            "last_modified",
            datetime.datetime(2024, 3, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
        ),
        lambda r: r.headers["Last-Modified"],  # Thu, 29 Feb: converted to GMT
        lambda r: setattr(r, "last_modified", -86_400.5),  # before 1970
        lambda r: r.last_modified,
        lambda r: setattr(r, "last_modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
        lambda r: r.last_modified,
        lambda r: setattr(r, "last_modified", None),
        lambda r: setattr(r, "last_modified", object()),
    ],
    "etag": [
        lambda r: r.etag,
        lambda r: setattr(r, "etag", "abc"),
        lambda r: r.etag,
        lambda r: setattr(r, "etag", _etag(r)("w", is_weak=True)),
        lambda r: r.etag,
        lambda r: setattr(r, "etag", "*"),
        lambda r: r.etag,
        lambda r: setattr(r, "etag", _etag(r)("*")),
        lambda r: r.headers.__setitem__("ETag", "unquoted"),
        lambda r: r.etag,
        lambda r: r.headers.__setitem__("ETag", '"a b"'),  # a space is not etagc
        lambda r: r.etag,
        lambda r: r.headers.__setitem__("ETag", '"a"b"'),
        lambda r: r.etag,
        lambda r: r.headers.__setitem__("ETag", 'W/"\x80\xff"'),
        lambda r: r.etag,
        lambda r: setattr(r, "etag", 'bad"quote'),
        lambda r: setattr(r, "etag", 5),
        lambda r: setattr(r, "etag", None),
        lambda r: r.etag,
    ],
}


@pytest.mark.parametrize("name", list(STEPS))
def test_header_properties_match_aiohttp(name: str) -> None:
    ours, theirs = web.StreamResponse(), aioweb.StreamResponse()
    for i, step in enumerate(STEPS[name]):
        expected = _outcome(theirs, step)
        assert _outcome(ours, step) == expected, f"step {i}"


@pytest.mark.parametrize(
    "make", [lambda e: 123, lambda e: e(value=123, is_weak=True), lambda e: e(value=b"v")]
)
def test_etag_of_the_wrong_type_is_refused_as_aiohttp_refuses_it(make: Any) -> None:
    ours, theirs = web.StreamResponse(), aioweb.StreamResponse()
    with pytest.raises(ValueError) as ours_error:
        ours.etag = make(lowserve.ETag)
    with pytest.raises(ValueError) as theirs_error:
        theirs.etag = make(aiohttp.ETag)
    # the same words; the type named is each library's own ETag class where it is one
    named = str(theirs_error.value).replace("aiohttp.helpers.ETag", "lowserve.wire.headers.ETag")
    assert str(ours_error.value) == named
    assert str(ours_error.value).startswith("Unsupported etag type: <class ")
    assert "Etag" not in ours.headers


@pytest.mark.parametrize("header", ['"\u2200 x \u2209 ascii"', 'W/"\u0100"', '"caf\xe9"'])
def test_etag_getter_takes_latin1_only_as_aiohttp(header: str) -> None:
    ours, theirs = web.StreamResponse(), aioweb.StreamResponse()
    ours.headers["ETag"] = theirs.headers["ETag"] = header
    assert repr(ours.etag).replace("ETag", "") == repr(theirs.etag).replace("ETag", "")
    assert (ours.etag is None) == (max(header) > "\xff")
