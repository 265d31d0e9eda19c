"""lowserve.wire.framing: the one decision of how a response is framed."""

from __future__ import annotations

import pytest

from lowserve.wire.framing import Framing, connection_header, decide, drops_length, length_header


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # method, status, minor, keep_alive, length, chunked
        (("GET", 200, 1, True, 5, False), Framing(True, False, True, 5)),
        (("GET", 200, 1, True, None, False), Framing(True, True, True, None)),  # step 4
        (("GET", 200, 0, True, None, False), Framing(True, False, False, None)),  # step 4
        (("GET", 200, 1, True, 5, True), Framing(True, True, True, None)),  # asked for
        (("HEAD", 200, 1, True, 5, False), Framing(False, False, True, 0)),  # step 1
        (("GET", 204, 1, True, None, True), Framing(False, False, True, 0)),
        (("GET", 304, 1, False, 10, False), Framing(False, False, False, 0)),
        (("GET", 101, 1, True, None, False), Framing(False, False, True, 0)),
        (("CONNECT", 200, 1, True, None, False), Framing(False, False, True, 0)),
        (("CONNECT", 404, 1, True, None, False), Framing(True, True, True, None)),
    ],
)
def test_decide(args: tuple[str, int, int, bool, int | None, bool], expected: Framing) -> None:
    assert decide(*args) == expected


def test_chunked_on_http10_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"HTTP/1\.0"):
        decide("GET", 200, 0, True, None, True)


def test_connection_header_says_only_what_differs_from_the_default() -> None:
    assert connection_header(True, 1) is None
    assert connection_header(True, 0) == "keep-alive"
    assert connection_header(False, 1) == "close"
    assert connection_header(False, 0) is None


def test_length_header() -> None:
    assert length_header("GET", 200, 0) == 0
    assert length_header("HEAD", 200, 0) is None  # an empty HEAD answer claims no length
    assert length_header("HEAD", 200, 3) == 3
    assert length_header("GET", 304, 0) is None
    assert length_header("GET", 204, 0) is None
    assert drops_length("CONNECT", 200) and not drops_length("HEAD", 200)
