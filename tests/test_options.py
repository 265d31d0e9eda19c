"""ServerOptions: every field is an option spec, every number has bounds, and a value
out of them is a ValueError naming the field (the check the command's flags use too)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from lowserve.options import ServerOptions
from lowserve.optionspec import OptionSpec, specs

from conftest import echo, exchange, parse_responses, serve

NUMBERS = [s for s in specs(ServerOptions) if s.kind in (int, float)]


def test_every_field_is_declared_as_an_option() -> None:
    assert [s.name for s in specs(ServerOptions)] == [
        f.name for f in dataclasses.fields(ServerOptions)
    ]
    assert all(s.help.endswith((".", ")")) for s in specs(ServerOptions))


def test_defaults_pass_their_own_check() -> None:
    opts = ServerOptions()
    for s in specs(ServerOptions):
        assert s.problem(getattr(opts, s.name)) is None, s.name
    assert isinstance(opts.access_log, logging.Logger)
    assert opts.access_log.name == "lowserve.access"


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.name)
def test_every_number_is_bounded_and_refused_below(spec: OptionSpec) -> None:
    assert spec.bounded and spec.minimum is not None
    step = 1 if spec.kind is int else 0.5
    value = spec.minimum - step
    while value in spec.also:  # an exception to the range (client_max_fields' -1)
        value -= step
    below: dict[str, Any] = {spec.name: value}
    with pytest.raises(ValueError, match=rf"^{spec.name}: {below[spec.name]!r} is not in "):
        ServerOptions(**below)
    least: dict[str, Any] = {spec.name: spec.minimum}
    assert getattr(ServerOptions(**least), spec.name) == spec.minimum


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_line_size": 10}, "max_line_size: 10 is not in the range x>=16"),
        ({"max_field_size": 15}, "max_field_size: 15 is not in the range x>=16"),
        ({"max_pipeline": 0}, "max_pipeline: 0 is not in the range x>=1"),
        ({"keepalive_timeout": "soon"}, "keepalive_timeout: 'soon' is not a number"),
        ({"server_header": "a\r\nb"}, "server_header must not contain CR, LF or NUL"),
        ({"forwarded_allow_ips": "bad"}, "forwarded_allow_ips: 'bad' is not an address"),
    ],
)
def test_a_bad_value_is_a_value_error_naming_the_field(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as exc:
        ServerOptions(**kwargs)
    assert str(exc.value).startswith(message)


def test_forwarded_allow_ips_as_the_flag_gives_it() -> None:
    opts = ServerOptions(forwarded_allow_ips=" 10.0.0.0/8, unix ,")  # type: ignore[arg-type]
    assert opts.forwarded_allow_ips == ("10.0.0.0/8", "unix")


def test_client_max_size_none_is_no_limit() -> None:
    """aiohttp's ``client_max_size=None`` (its checks test the value's truth): no limit."""
    assert ServerOptions(client_max_size=None).client_max_size == 0  # type: ignore[arg-type]
    assert ServerOptions(client_max_size=0).client_max_size == 0
    with pytest.raises(ValueError, match=r"^client_max_size: -1 is not in the range"):
        ServerOptions(client_max_size=-1)


async def test_client_max_size_none_reads_a_body_past_the_default() -> None:
    body = b"x" * (2 * 1024**2 + 3)  # past the default 1 MiB
    head = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
    async with serve(echo, client_max_size=None) as s:
        raw = await exchange(s.port, head % len(body) + body, timeout=10)
    [(status, _, answer)] = parse_responses(raw)
    assert status == 200
    assert answer == body
