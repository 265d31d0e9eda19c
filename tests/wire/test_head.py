"""Wire helpers: head serialisation and its validation, the Date cache."""

from __future__ import annotations

import email.utils
import time

import pytest

from lowserve.wire.head import (
    build_head,
    check_header_field,
    date_line,
    date_line_bytes,
    http_date,
)


def test_build_head() -> None:
    head = build_head(1, 200, "OK", [("A", "1"), ("B-c", "é")])
    assert head == "HTTP/1.1 200 OK\r\nA: 1\r\nB-c: é\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X", "a\rb"),
        ("X", "a\nb"),
        ("X", "a\0b"),
        ("X Y", "v"),
        ("X:", "v"),
        ("", "v"),
        ("X\n", "v"),
    ],
)
def test_bad_fields_refused(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        check_header_field(name, value)
    with pytest.raises(ValueError):
        build_head(1, 200, "OK", [(name, value)])


def test_bad_reason_refused() -> None:
    with pytest.raises(ValueError):
        build_head(1, 200, "O\r\nK", [])


def test_date() -> None:
    value = http_date()
    assert email.utils.parsedate_to_datetime(value) is not None
    assert value.endswith(" GMT")
    assert date_line() in (f"Date: {value}\r\n", f"Date: {http_date()}\r\n")


def test_the_date_is_the_wall_clocks() -> None:
    """The cached Date (read off a C clock in the compiled build) is the current
    second by time.time, whichever side of a second's edge it is read on."""
    before = email.utils.formatdate(time.time(), usegmt=True)
    line = date_line_bytes().decode()
    after = email.utils.formatdate(time.time(), usegmt=True)
    assert line in (f"Date: {before}\r\n", f"Date: {after}\r\n")
