"""The schema of every option: :class:`~lowserve.options.ServerOptions`' fields and the
command's :class:`~lowserve.cli.config.Config` fields are each declared with
:func:`option`, once, with their default, documentation and bounds.

From that one declaration the command generates its flag (``keepalive_timeout`` is
``--keepalive-timeout`` and ``LOWSERVE_KEEPALIVE_TIMEOUT``), ``docs/gen.py`` the reference,
and :func:`check` refuses a value out of bounds, for the dataclass and the command alike.
This module imports nothing, and never click: workers and the library read it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["OptionSpec", "check", "option", "specs"]

_KEY = "lowserve.option"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option: its field, its flag, and the values it accepts."""

    name: str  #: the field's name (``max_line_size``: flag ``--max-line-size``)
    kind: type  #: of the value (of each item where ``multiple`` or ``separator``)
    default: Any  #: (a factory, called for each object, where ``option(factory=True)``)
    help: str
    cli: bool = True  #: also a flag of the ``lowserve`` command
    flag: str | None = None  #: another spelling (``--reload-dir``, ``--x/--no-x``)
    envvars: tuple[str, ...] = ()  #: read after ``LOWSERVE_<FLAG>``
    minimum: float | None = None
    maximum: float | None = None
    also: tuple[Any, ...] = ()  #: accepted outside minimum..maximum (``-1``: no limit)
    choices: tuple[str, ...] = ()
    path: Literal["file", "dir"] | None = None  #: an existing file or directory (the flag)
    octal: bool = False  #: a file mode, written in octal on the command line
    multiple: bool = False  #: the flag may be repeated; the value is a list
    separator: str | None = None  #: the flag is one string, split here into a tuple
    metavar: str | None = None

    @property
    def flags(self) -> str:
        """The flag's spelling (``--max-line-size``; ``--access-log/--no-access-log``)."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def variables(self) -> tuple[str, ...]:
        """The environment variables read for the flag: ``LOWSERVE_<FLAG>`` first."""
        own = "LOWSERVE_" + self.flags.split("/")[0][2:].replace("-", "_").upper()
        return (own, *self.envvars)

    @property
    def bounded(self) -> bool:
        """Whether the value is a number with a minimum or a maximum."""
        return self.minimum is not None or self.maximum is not None

    def range_text(self) -> str:
        """The accepted numbers, as click writes a range (``x>=16``, ``0<=x<=65535``)."""
        if self.minimum is not None and self.maximum is not None:
            text = f"{self.minimum}<=x<={self.maximum}"
        elif self.minimum is not None:
            text = f"x>={self.minimum}"
        else:
            text = f"x<={self.maximum}"
        return " or ".join([text, *map(str, self.also)])

    def problem(self, value: Any) -> str | None:
        """What is wrong with *value* (``is not in the range x>=16``), or None: the one
        check behind ``ServerOptions(...)``, ``Config(...)`` and the command's flags."""
        if self.also and value in self.also:
            return None
        if self.choices and value not in self.choices:
            return "is not one of " + ", ".join(map(repr, self.choices))
        if not self.bounded:
            return None
        if not isinstance(value, int | float):
            return "is not a number"
        low = self.minimum is not None and value < self.minimum
        high = self.maximum is not None and value > self.maximum
        return f"is not in the range {self.range_text()}" if low or high else None


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field declared as an option (see :class:`OptionSpec` for *spec*).

    ``kind`` defaults to the default's type (``str`` for a list); ``factory=True`` makes
    a callable *default* the field's default factory.
    """
    factory: Callable[[], Any] | None = default if spec.pop("factory", False) else None
    kind = spec.pop("kind", None)
    if kind is None:
        listed = spec.get("multiple") or spec.get("separator")
        kind = str if listed else type(factory() if factory else default)
    made = OptionSpec("", kind, default, help, **spec)
    if factory is not None:
        return field(default_factory=factory, metadata={_KEY: made})
    return field(default=default, metadata={_KEY: made})


_SPECS: dict[type, tuple[OptionSpec, ...]] = {}


def specs(cls: type) -> tuple[OptionSpec, ...]:
    """The options of dataclass *cls*, in field order, each named after its field."""
    found = _SPECS.get(cls)
    if found is None:
        found = _SPECS[cls] = tuple(
            dataclasses.replace(f.metadata[_KEY], name=f.name)
            for f in dataclasses.fields(cls)
            if _KEY in f.metadata
        )
    return found


def check(obj: Any) -> None:
    """ValueError naming the first field of dataclass *obj* whose value its option
    refuses (``max_line_size: 10 is not in the range x>=16``)."""
    for spec in specs(type(obj)):
        value = getattr(obj, spec.name)
        problem = spec.problem(value)
        if problem is not None:
            raise ValueError(f"{spec.name}: {value!r} {problem}")
