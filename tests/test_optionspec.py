"""The option schema: one spec per field, one check for every bound, its per-option
exceptions, and the names a flag and its variables get."""

# ruff: noqa: RUF009  (option() returns a dataclasses.field, as ServerOptions uses it)
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from lowserve.optionspec import OptionSpec, check, option, specs


@dataclass
class Sample:
    """A dataclass declared as ServerOptions and Config are."""

    plain: str = option("x", "A string, no bounds.", cli=False)
    size: int = option(8190, "At least 16.", minimum=16)
    port: int = option(8080, "A port.", minimum=0, maximum=65535)
    fields_: int = option(1000, "0: none; -1: no limit.", minimum=0, also=(-1,))
    ratio: float = option(0.5, "At most 1.", maximum=1)
    level: str = option("info", "A level.", choices=("info", "debug"))
    dirs: list[str] = option((), "Repeatable.", flag="--dir", multiple=True)
    peers: tuple[str, ...] = option(("a", "b"), "Commas.", separator=",")
    made: list[int] = option(list, "A factory.", cli=False, factory=True, kind=int)
    workers: int = option(1, "Also WEB_CONCURRENCY.", minimum=1, envvars=("WEB_CONCURRENCY",))
    switch: bool = option(True, "On or off.", flag="--switch/--no-switch")

    def __post_init__(self) -> None:
        check(self)


def spec(name: str) -> OptionSpec:
    return next(s for s in specs(Sample) if s.name == name)


def test_specs_follow_the_fields_named_and_typed() -> None:
    names = [s.name for s in specs(Sample)]
    assert names == list(Sample.__dataclass_fields__)
    assert specs(Sample) is specs(Sample)  # made once
    kinds = {s.name: s.kind for s in specs(Sample)}
    assert kinds["size"] is int and kinds["ratio"] is float and kinds["plain"] is str
    assert kinds["dirs"] is str and kinds["peers"] is str and kinds["made"] is int
    assert Sample().made == [] and Sample().made is not Sample().made


def test_flag_and_variables() -> None:
    assert spec("size").flags == "--size"
    assert spec("fields_").flags == "--fields-"
    assert spec("dirs").flags == "--dir" and spec("dirs").variables == ("LOWSERVE_DIR",)
    assert spec("switch").variables == ("LOWSERVE_SWITCH",)
    assert spec("workers").variables == ("LOWSERVE_WORKERS", "WEB_CONCURRENCY")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("size", "x>=16"),
        ("port", "0<=x<=65535"),
        ("fields_", "x>=0 or -1"),
        ("ratio", "x<=1"),
    ],
)
def test_range_text_is_clicks(name: str, text: str) -> None:
    assert spec(name).bounded and spec(name).range_text() == text


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("size", 16, None),
        ("size", 15, "is not in the range x>=16"),
        ("size", "big", "is not a number"),
        ("size", None, "is not a number"),
        ("port", 65535, None),
        ("port", 65536, "is not in the range 0<=x<=65535"),
        ("port", -1, "is not in the range 0<=x<=65535"),
        ("fields_", -1, None),
        ("fields_", 0, None),
        ("fields_", -2, "is not in the range x>=0 or -1"),
        ("ratio", 1.0, None),
        ("ratio", 1.5, "is not in the range x<=1"),
        ("level", "debug", None),
        ("level", "loud", "is not one of 'info', 'debug'"),
        ("plain", "anything", None),
    ],
)
def test_problem(name: str, value: object, problem: str | None) -> None:
    assert spec(name).problem(value) == problem


def test_check_names_the_field_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"^size: 10 is not in the range x>=16$"):
        Sample(size=10)
    with pytest.raises(ValueError, match=r"^fields_: -5 is not in the range x>=0 or -1$"):
        Sample(fields_=-5)
    with pytest.raises(ValueError, match=r"^level: 'loud' is not one of 'info', 'debug'$"):
        Sample(level="loud")
    assert Sample(fields_=-1).fields_ == -1


def test_the_schema_and_what_declares_options_load_without_click() -> None:
    """Workers build Config and ServerOptions from the specs: none of it imports click."""
    code = (
        "import sys, lowserve.optionspec, lowserve.options, lowserve.cli.config; "
        "print('click' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr
