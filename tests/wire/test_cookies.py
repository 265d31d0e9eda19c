"""wire.cookies: the Cookie request header, checked against aiohttp's parser."""

from __future__ import annotations

import random

import pytest

from lowserve.wire.cookies import parse_cookie_header

CASES = {
    "a=1; b=2": [("a", "1"), ("b", "2")],
    # names browsers send that http.cookies refuses (one of them dropped the whole header)
    "{test}=v1; normal=v2": [("{test}", "v1"), ("normal", "v2")],
    "{c1}=1; c/2=2; c[3]=3; c(4)=4": [("{c1}", "1"), ("c/2", "2"), ("c[3]", "3"), ("c(4)", "4")],
    "ISAWPLB{DB45DF86-F806-407C-932C-D52A60E4019E}=x": [
        ("ISAWPLB{DB45DF86-F806-407C-932C-D52A60E4019E}", "x")
    ],
    # attribute names are plain cookie names in a request
    "token=abc; Path=/; Domain=.x.org; Secure; HttpOnly; Max-Age=5": [
        ("token", "abc"),
        ("Path", "/"),
        ("Domain", ".x.org"),
        ("Secure", ""),
        ("HttpOnly", ""),
        ("Max-Age", "5"),
    ],
    'q="quoted value"; semi="a;b;c"; esc="x \\" y \\073"; e=""': [
        ("q", "quoted value"),
        ("semi", "a;b;c"),
        ("esc", 'x " y ;'),
        ("e", ""),
    ],
    "d=Wed, 09 Jun 2021 10:18:14 GMT; n=1": [("d", "Wed, 09 Jun 2021 10:18:14 GMT"), ("n", "1")],
    # one odd pair costs only itself
    'bad\x01name=1; ok=2; c,d=3; x=y"z; last=4': [("ok", "2"), ("x", 'y"z'), ("last", "4")],
    "": [],
    " ;; ; =1; =; a": [("a", "")],
}


@pytest.mark.parametrize("header", list(CASES))
def test_cookie_header(header: str) -> None:
    assert parse_cookie_header(header) == CASES[header]


def _aiohttp_pairs(header: str) -> list[tuple[str, str]]:
    helpers = pytest.importorskip("aiohttp._cookie_helpers")
    return [(name, morsel.value) for name, morsel in helpers.parse_cookie_header(header)]


@pytest.mark.parametrize("header", list(CASES))
def test_same_as_aiohttp_on_the_cases(header: str) -> None:
    assert parse_cookie_header(header) == _aiohttp_pairs(header)


def test_same_as_aiohttp_on_random_headers() -> None:
    pieces = [
        "a", "B9", "_", "=", "==", ";", "; ", " ", "\t", '"', '\\"', "\\", ",", "{", "}",
        "[x]", "/", "(", "é", "\x01", "Path", "Secure", "Wed, 09 Jun 2021 10:18:14 GMT",
        "Wed Jun  9 10:18:14 2021", "-0100", "%20", "$", "~",
    ]  # fmt: skip
    rng = random.Random(6265)
    for _ in range(5000):
        header = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert parse_cookie_header(header) == _aiohttp_pairs(header), header


def test_long_hostile_header_is_linear() -> None:
    # Backtracking stays bounded on the longest header a request may carry.
    for header in ('a="' + "x" * 8000, "a=" + "x" * 8000 + '"', "a" * 8000 + '"', " " * 8000 + "x"):
        assert parse_cookie_header(header) == _aiohttp_pairs(header)


def test_illegal_names_are_one_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    """As aiohttp: pairs with illegal names are dropped and said once, at DEBUG; 3,000
    of them are still one short line (ten quoted, the rest counted)."""
    import logging

    bad = "; ".join(f"bad\x01name{i}=1" for i in range(3000))
    with caplog.at_level(logging.DEBUG, "lowserve.server"):
        assert parse_cookie_header(bad + "; ok=2; c,d=3") == [("ok", "2")]
    [record] = caplog.records
    assert (record.name, record.levelno) == ("lowserve.server", logging.DEBUG)
    message = record.getMessage()
    assert message.startswith("Cannot load cookie. Illegal cookie names: ['bad\\x01name0',")
    assert message.endswith(" and 2991 more") and len(message) < 400


def test_legal_names_and_empty_pieces_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.DEBUG, "lowserve.server"):
        assert parse_cookie_header("a=1; ;; b; {c}=2") == [("a", "1"), ("b", ""), ("{c}", "2")]
    assert caplog.records == []
