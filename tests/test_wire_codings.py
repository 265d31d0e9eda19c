"""wire.codings: the response coding negotiated, checked against aiohttp's choice."""

from __future__ import annotations

import random

import pytest

from lowserve.wire.codings import ContentCoding, negotiate

CASES = {
    "gzip, deflate": ContentCoding.deflate,  # aiohttp's client's default
    "gzip, deflate, br": ContentCoding.deflate,
    "deflate": ContentCoding.deflate,
    "gzip": ContentCoding.gzip,
    "GZIP": ContentCoding.gzip,
    "x-gzip": ContentCoding.gzip,
    "br": None,
    "identity": None,
    "": None,
}


@pytest.mark.parametrize(("header", "coding"), list(CASES.items()))
def test_negotiate(header: str, coding: ContentCoding | None) -> None:
    assert negotiate(header) is coding


def _aiohttp_choice(header: str) -> str | None:
    """The coding aiohttp's StreamResponse._start_compression takes for *header*."""
    from aiohttp.web_response import CONTENT_CODINGS

    for value in CONTENT_CODINGS:
        if value in header.lower():
            return None if value == "identity" else value
    return None


def test_same_as_aiohttp_on_random_headers() -> None:
    pytest.importorskip("aiohttp")
    words = ["gzip", "deflate", "br", "identity", "*", "x-gzip", "zstd", ";q=0", ";q=0.5", ", "]
    rng = random.Random(18)
    for header in [*CASES, *("".join(rng.choices(words, k=5)) for _ in range(2000))]:
        ours = negotiate(header)
        assert (ours.value if ours else None) == _aiohttp_choice(header), header
