"""Generate docs/reference/command.md, docs/reference/api.md and docs/benchmarks.md
(bench/RESULTS.md, then bench/PROFILE.md).

    python docs/gen.py          # rewrite them
    python docs/gen.py --check  # exit 1 when they are stale (tests/test_docs.py runs it)

The command reference comes from the click definitions (flags, defaults, variables,
help), most of them generated from the option specs of ``lowserve.optionspec``, which
also give what each flag accepts; the API reference from ``lowserve.web.__all__``'s
signatures and docstrings, and the table of every ``ServerOptions`` field from its
specs. So neither can drift from the code.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _default(param: Any) -> tuple[str, str]:
    """An option's default as the table shows it (each pattern of a repeatable one on its
    own; 0 is a default, not a blank), and its help. A flag whose click default is None
    because it is composed with others (``--host``, ``--port``) states its default in its
    help as ``[default: X]``: that moves to the column."""
    text = param.help or ""
    stated = re.search(r"\s*\[default: (.*?)\]", text)
    if stated:
        return f"`{stated.group(1)}`", text[: stated.start()] + text[stated.end() :]
    value = param.default
    if value is None or value is False or value == () or "UNSET" in repr(value):  # click 8.5
        return "", text
    if isinstance(value, (tuple, list)):
        return ", ".join(f"`{v}`" for v in value), text
    return f"`{value}`", text


def _accepts(param: Any, spec: Any) -> str:
    """What a flag accepts, from its option spec (its bounds, choices, an octal mode), or
    from click's type for a flag spelled by hand."""
    import click

    if spec is not None:
        if spec.bounded:
            return f"`{spec.range_text()}`"
        if spec.choices:
            return ", ".join(f"`{c}`" for c in spec.choices)
        return "octal `0` to `777`" if spec.octal else ""
    if isinstance(param.type, click.IntRange):
        return f"`{param.type.min}<=x<={param.type.max}`"
    if isinstance(param.type, click.Choice):
        return ", ".join(f"`{c}`" for c in param.type.choices)
    return ""


def command_reference() -> str:
    import click

    from lowserve.cli.command import main
    from lowserve.cli.config import Config
    from lowserve.options import ServerOptions
    from lowserve.optionspec import specs

    generated = {s.name: s for cls in (Config, ServerOptions) for s in specs(cls) if s.cli}

    lines = [
        "# Command reference",
        "",
        "Generated from the click definitions by `docs/gen.py`: do not edit.",
        "",
        "```",
        "lowserve [OPTIONS] HANDLER",
        "```",
        "",
        inspect.cleandoc(main.help or "").replace("\b\n", ""),
        "",
        "| flag | variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for param in main.params:
        if not isinstance(param, click.Option) or param.name in ("help", "version"):
            continue
        flags = " / ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        env = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
        default, text = _default(param)
        text = text.replace("|", "\\|").replace("\n", " ")
        accepts = _accepts(param, generated.get(param.name or ""))
        if accepts:
            text = text.rstrip().removesuffix(".") + f". Accepts: {accepts}."
        lines.append(f"| {flags} | `{env}` | {default} | {text} |")
    lines += ["", "The handler may also be given as `LOWSERVE_HANDLER`.", ""]
    return "\n".join(lines)


def _entry(name: str, obj: Any, heading: str = "##") -> list[str]:
    """The lines of one public name: its signature, its docstring's first paragraph,
    and, for a class, its public members."""
    doc = inspect.getdoc(obj) or ""
    first = doc.split("\n\n")[0].replace("\n", " ") if doc else ""
    lines = [f"{heading} `{name}`", ""]
    if inspect.isclass(obj) or callable(obj):
        try:
            sig = str(inspect.signature(obj))
        except (TypeError, ValueError):
            sig = "(...)"
        # the same page on every run and Python: no addresses, no version
        sig = re.sub(r" at 0x[0-9a-f]+", "", sig)
        sig = re.sub(r"Python/\d+\.\d+", "Python/3.x", sig)
        lines += [f"```python\n{name}{sig}\n```", ""]
    if first:
        lines += [first, ""]
    if inspect.isclass(obj):
        members = [
            m
            for m, v in vars(obj).items()
            if not m.startswith("_") and (callable(v) or isinstance(v, property))
        ]
        if members:
            lines += ["Members: " + ", ".join(f"`{m}`" for m in sorted(members)) + ".", ""]
    return lines


def _options_table() -> list[str]:
    """Every ServerOptions field, from its option spec: default, bounds, flag, meaning."""
    import logging

    from lowserve.options import ServerOptions
    from lowserve.optionspec import specs

    defaults = ServerOptions()
    lines = [
        "Its fields (keyword arguments of `Server` too):",
        "",
        "| option | default | accepts | flag | meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in specs(ServerOptions):
        value = getattr(defaults, spec.name)
        if isinstance(value, logging.Logger):
            default = f"logger `{value.name}`"
        else:
            default = "`" + re.sub(r"Python/\d+\.\d+", "Python/3.x", repr(value)) + "`"
        accepts = f"`{spec.range_text()}`" if spec.bounded else ""
        flag = f"`{spec.flags}`" if spec.cli else ""
        text = spec.help.replace("|", "\\|")
        lines.append(f"| `{spec.name}` | {default} | {accepts} | {flag} | {text} |")
    return [*lines, ""]


def api_reference() -> str:
    from lowserve import testing, web

    lines = [
        "# API reference",
        "",
        "Generated from `lowserve.web` and `lowserve.testing` by `docs/gen.py`: do not",
        "edit. Every name of `lowserve.web` is also importable from `lowserve`.",
        "",
    ]
    exceptions = []
    for name in sorted(web.__all__, key=str.lower):
        obj = getattr(web, name)
        if name.startswith("HTTP") and name not in (
            "HttpVersion",
            "HttpVersion10",
            "HttpVersion11",
        ):
            exceptions.append(f"`{name}` ({getattr(obj, 'status_code', '')})")
            continue
        lines += _entry(name, obj)
        if name == "ServerOptions":
            lines += _options_table()
    lines.append("## The `HTTPException` family")
    lines.append("")
    lines.append("Responses that can be raised, with aiohttp's names, codes and default bodies: ")
    lines.append(", ".join(exceptions) + ".")
    lines.append("")
    lines += [
        "## `lowserve.testing`",
        "",
        "`aiohttp.test_utils`' shapes for testing a handler (see [testing](../testing.md)).",
        "",
    ]
    for name in sorted(testing.__all__, key=str.lower):
        if name == "TestServer":  # the same class as RawTestServer
            lines += ["### `TestServer`", "", "`RawTestServer`, under aiohttp's name.", ""]
            continue
        lines += _entry(name, getattr(testing, name), "###")
    return "\n".join(lines)


def benchmarks() -> str:
    results = (HERE.parent / "bench" / "RESULTS.md").read_text()
    body = [
        line
        for line in results.splitlines()
        if not line.startswith("# ") and "RESULTS.png" not in line
    ]
    return (
        "# Benchmarks\n\n"
        "The last full run of `bench/run.py` (`bench/RESULTS.md`, copied here by `docs/gen.py`):\n"
        "each server pinned to one core, the load generator to the other. Compare the ratios;\n"
        "absolute figures move with the machine. `bench/inmemory.py` measures lowserve's own\n"
        "cost per request, for hot-path changes.\n"
        + "\n".join(body)
        + "\n\n"
        + (HERE.parent / "bench" / "PROFILE.md").read_text()
    )


#: The Python the API page is generated (and checked) with: CI's.
GENERATED_ON = (3, 11)

PAGES = {
    HERE / "reference" / "command.md": command_reference,
    HERE / "reference" / "api.md": api_reference,
    HERE / "benchmarks.md": benchmarks,
}


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for path, make in PAGES.items():
        if check and path.name == "api.md" and sys.version_info[:2] != GENERATED_ON:
            continue  # signatures render differently on other Pythons: CI's is the judge
        text = make()
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale (run python docs/gen.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
