"""Choosing a variant and its bytes: Accept-Encoding and Range, in memory."""

from __future__ import annotations

import pytest

from lowserve.wire.representation import MAX_RANGES, accepted_codings, byte_ranges

OFFERED = ("br", "gzip", "identity")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ["identity"]),
        ("", ["identity"]),
        ("gzip", ["gzip", "identity"]),
        ("GZip, BR", ["br", "gzip", "identity"]),  # case-insensitive; br first at equal q
        ("gzip;q=1, br;q=1", ["br", "gzip", "identity"]),
        ("gzip;q=0", ["identity"]),
        ("gzip; Q=0.000", ["identity"]),
        ("br;q=0.5, gzip", ["gzip", "identity", "br"]),
        ("br;q=0.5, gzip;q=0.8, identity;q=0.1", ["gzip", "br", "identity"]),
        ("*", ["br", "gzip", "identity"]),
        ("*;q=0", []),
        ("*;q=0, identity", ["identity"]),
        ("*;q=0.5, gzip;q=0", ["br", "identity"]),
        ("identity;q=0", []),
        ("identity", ["identity"]),
        ("x-gzip", ["gzip", "identity"]),
        ("deflate", ["identity"]),
        ("gzip;q=2, br;q=0.9x, br;q=-1", ["identity"]),  # not qvalues: dropped
        ("gzip;q=1.0000", ["identity"]),  # more than three decimals
        ("gzip;q=0.001", ["identity", "gzip"]),
        ("gzip;level=9", ["gzip", "identity"]),  # other parameters do not matter
        ("gzip;q=0, gzip", ["identity"]),  # the first mention counts
        (" , ,gzip ,", ["gzip", "identity"]),
        ("gz ip, br", ["br", "identity"]),  # not a token: dropped
        ("brotli, gzipped, agzip", ["identity"]),  # whole names, not substrings
    ],
)
def test_accepted_codings(header: str | None, expected: list[str]) -> None:
    assert accepted_codings(header, OFFERED) == expected


def test_accepted_codings_only_from_what_is_offered() -> None:
    assert accepted_codings("br, gzip", ("gzip", "identity")) == ["gzip", "identity"]
    assert accepted_codings(None, ("gzip",)) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", [(0, 100)]),
        ("Bytes=0-0", [(0, 1)]),
        ("BYTES=990-", [(990, 1000)]),
        ("bytes=-10", [(990, 1000)]),
        ("bytes=-5000", [(0, 1000)]),
        ("bytes=0-5000", [(0, 1000)]),
        ("bytes=0-1,5-6", [(0, 2), (5, 7)]),
        ("bytes= 5-6 , 0-1", [(0, 2), (5, 7)]),  # sorted
        ("bytes=0-4,5-9", [(0, 10)]),  # adjacent: joined
        ("bytes=0-5,3-9,2-2", [(0, 10)]),  # overlapping: joined
        ("bytes=-10,0-1", [(0, 2), (990, 1000)]),
        ("bytes=0-1,,3-4,", [(0, 2), (3, 5)]),  # empty elements ignored
        ("bytes=5000-,0-1", [(0, 2)]),  # an unsatisfiable span among others is dropped
        ("bytes=0-" + "9" * 5000, [(0, 1000)]),  # a huge number, never converted
        (",".join(["bytes=0-1"] + ["0-1"] * 2000), [(0, 2)]),
        # 416
        ("bytes=-0", []),
        ("bytes=1000-", []),
        ("bytes=" + "9" * 5000 + "-", []),
        ("bytes=9-2", []),
        ("bytes=-", []),
        ("bytes=", []),
        ("bytes", []),
        ("bytes=0-1,9-2", []),
        ("bytes=a-b", []),
        ("bytes=0x1-2", []),
        ("bytes=+1-2", []),
        ("bytes=\u0661-\u0662", []),  # Arabic-Indic digits: int() takes them, HTTP does not
        ("bytes=1 - 2", []),
        # ignored: 200
        ("items=0-5", None),
        ("pages=1-2", None),
        ("none", None),
        ("", None),
    ],
)
def test_byte_ranges(header: str, expected: list[tuple[int, int]] | None) -> None:
    assert byte_ranges(header, 1000) == expected


def test_byte_ranges_bound_and_empty_file() -> None:
    many = "bytes=" + ",".join(f"{i * 10}-{i * 10}" for i in range(MAX_RANGES))
    assert byte_ranges(many, 1000) == [(i * 10, i * 10 + 1) for i in range(MAX_RANGES)]
    assert byte_ranges(many + ",500-500", 1000) is None  # one too many: ignored, 200
    assert byte_ranges("bytes=0-1,5-6", 1000, limit=1) is None
    assert byte_ranges("bytes=0-0", 0) == [] and byte_ranges("bytes=-1", 0) == []
