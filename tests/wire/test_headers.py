"""wire.headers: the token, HTTP-date and entity-tag grammars, each checked against the
RFC's text and against aiohttp's own reading where aiohttp has one."""

from __future__ import annotations

import datetime
import email.utils
import locale
import random
import re
import time
from collections.abc import Iterator

import pytest

from lowserve.wire.headers import (
    ETAG_ANY,
    TCHAR,
    TOKEN,
    ETag,
    format_etag,
    format_http_date,
    parse_content_type,
    parse_etag,
    parse_etags,
    parse_http_date,
    validate_etag_value,
)

# RFC 9110 §5.6.2, spelled out rather than derived from TCHAR
RFC_TCHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_token_is_rfc_9110s_tchar_and_nothing_else() -> None:
    for code in range(0x250):
        c = chr(code)
        assert bool(TOKEN.match(c)) == (c in RFC_TCHARS), repr(c)
        assert bool(re.fullmatch(f"[{TCHAR}]", c)) == (c in RFC_TCHARS), repr(c)
    assert TOKEN.match("Content-Type")
    for bad in ("", "a b", "a:", "a\n", "a/b", 'a"', "é"):
        assert not TOKEN.match(bad), bad


def test_token_agrees_with_aiohttps_parser() -> None:
    from aiohttp.http_parser import TOKENRE

    rng = random.Random(19)
    alphabet = [chr(c) for c in range(0x20, 0x80)] + ["\t", "\n", "é"]
    for _ in range(5000):
        text = "".join(rng.choices(alphabet, k=rng.randint(1, 6)))
        assert bool(TOKEN.match(text)) == bool(TOKENRE.fullmatch(text)), repr(text)


def test_format_http_date_fixed_points() -> None:
    assert format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"  # RFC 9110's
    assert format_http_date(784111777.999) == "Sun, 06 Nov 1994 08:49:37 GMT"  # dropped
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_http_date(-1.5) == "Wed, 31 Dec 1969 23:59:58 GMT"  # floor, as gmtime
    naive = datetime.datetime(1994, 11, 6, 8, 49, 37)  # naive is UTC
    assert format_http_date(naive) == "Sun, 06 Nov 1994 08:49:37 GMT"
    paris = datetime.datetime(
        1994, 11, 6, 9, 49, 37, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
    )
    assert format_http_date(paris) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(datetime.datetime(999, 1, 1)) == "Tue, 01 Jan 0999 00:00:00 GMT"


def test_format_http_date_is_the_standard_librarys_and_reads_back() -> None:
    """The same text as email.utils.formatdate (the Date cache's old formatter) and
    strftime in the C locale (Last-Modified's old one), and parse_http_date reads it."""
    rng = random.Random(19)
    for _ in range(3000):
        t = rng.uniform(0, 2.5e11)
        text = format_http_date(t)
        assert text == email.utils.formatdate(t, usegmt=True)
        assert text == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))
        parsed = parse_http_date(text)
        assert parsed is not None and parsed.timestamp() == int(t)


@pytest.fixture
def german_time() -> Iterator[None]:
    saved = locale.setlocale(locale.LC_TIME)
    for name in ("de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"):
        try:
            locale.setlocale(locale.LC_TIME, name)
            break
        except locale.Error:
            continue
    else:
        pytest.skip("no German or French locale installed")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_TIME, saved)


def test_format_http_date_is_english_in_any_locale(german_time: None) -> None:
    assert format_http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850, obsolete but to be read (§5.6.7)
        "Sun Nov  6 08:49:37 1994",  # asctime
    ],
)
def test_parse_http_date_reads_the_three_formats(text: str) -> None:
    expected = datetime.datetime(1994, 11, 6, 8, 49, 37, tzinfo=datetime.timezone.utc)
    assert parse_http_date(text) == expected


@pytest.mark.parametrize("text", [None, "", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT"])
def test_parse_http_date_gives_none_for_what_it_cannot_read(text: str | None) -> None:
    assert parse_http_date(text) is None


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ('"abc"', ETag("abc")),
        ('W/"abc"', ETag("abc", True)),
        ('""', ETag("")),
        ("*", ETag(ETAG_ANY)),
        ('"a\x80\xff!"', ETag("a\x80\xff!")),
        (None, None),
        ("", None),
        ("abc", None),  # unquoted
        ('"a b"', None),  # a space is no etagc
        ('"a"b"', None),
        (' "abc"', None),
        ('w/"abc"', None),  # W/ is case-sensitive
        ('"abc", "d"', None),  # one tag, not a list
    ],
)
def test_parse_etag(text: str | None, tag: ETag | None) -> None:
    assert parse_etag(text) == tag


def test_parse_etag_agrees_with_aiohttps_response_etag() -> None:
    """aiohttp's StreamResponse.etag reads the same tags from random header values
    (aiohttp refuses an empty tag, ``""``, which RFC 9110 and lowserve allow)."""
    from aiohttp import web as aioweb

    def theirs(text: str) -> ETag | None:
        resp = aioweb.StreamResponse(headers={"ETag": text})
        tag = resp.etag
        return None if tag is None else ETag(tag.value, tag.is_weak)

    rng = random.Random(19)
    pieces = ['"', "W/", "a", " ", "*", ",", "\x7f", "\x80", "\\", "w/"]
    for _ in range(5000):
        text = "".join(rng.choices(pieces, k=rng.randint(1, 6)))
        if text.endswith('""'):
            continue
        assert parse_etag(text) == theirs(text), repr(text)


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        (None, None),
        ("*", (ETag("*"),)),
        (" * ", (ETag("*"),)),
        ('"a", W/"b" ,"c"', (ETag("a"), ETag("b", True), ETag("c"))),
        ('"a", junk, "c"', (ETag("a"),)),  # up to the first malformed one
        ("junk", ()),
        ("", ()),
    ],
)
def test_parse_etags(text: str | None, tags: tuple[ETag, ...] | None) -> None:
    assert parse_etags(text) == tags


def test_parse_etags_agrees_with_aiohttps_if_match_on_well_formed_lists() -> None:
    from aiohttp.test_utils import make_mocked_request

    rng = random.Random(19)
    for _ in range(2000):
        tags = [
            ETag(rng.choice(["a", "x1", "!#", "é"]), rng.random() < 0.5)
            for _ in range(rng.randint(1, 4))
        ]
        text = ", ".join(format_etag(t) for t in tags)
        assert parse_etags(text) == tuple(tags)
        theirs = make_mocked_request("GET", "/", headers={"If-Match": text}).if_match or ()
        assert [(t.value, t.is_weak) for t in theirs] == [tuple(t) for t in tags]


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        (ETag("abc"), '"abc"'),
        (ETag("abc", True), 'W/"abc"'),
        (ETag("*"), "*"),
        (ETag("*", True), "*"),  # * is never weak
        (ETag(""), '""'),
    ],
)
def test_format_etag(tag: ETag, text: str) -> None:
    assert format_etag(tag) == text
    assert parse_etag(text) == (ETag("*") if tag.value == "*" else tag)


def test_validate_etag_value() -> None:
    for good in ("abc", "*", "", "\x80x"):
        validate_etag_value(good)
    for bad in ('a"b', "a b", "a\n", 5):
        with pytest.raises(ValueError):
            validate_etag_value(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ("application/octet-stream", {})),
        ("Text/HTML; Charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('multipart/form-data; boundary="a b"', ("multipart/form-data", {"boundary": "a b"})),
        ("jpeg", ("application/octet-stream", {})),  # no subtype: aiohttp's default
        ("a b/c", ("application/octet-stream", {})),  # not a token
    ],
)
def test_parse_content_type(text: str | None, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_content_type(text) == expected
