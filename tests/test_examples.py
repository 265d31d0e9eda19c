"""Every example runs: the handler modules serve, the systemd units parse."""

from __future__ import annotations

import configparser
import importlib.util
import sys
from pathlib import Path

from conftest import exchange, parse_responses, serve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_hello() -> None:
    hello = load("hello")
    async with serve(hello.handler) as s:
        out = await exchange(s.port, b"PUT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    [(status, _, body)] = parse_responses(out)
    assert status == 200 and body == b"Hello from lowserve: PUT /x\n"


def test_systemd_units_parse() -> None:
    for unit in ("lowserve.service", "lowserve.socket"):
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(ROOT / "deploy" / unit)
        assert parser.sections()
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(ROOT / "deploy" / "lowserve.service")
    assert service["Service"]["Type"] == "notify"
    assert "--check" in service["Service"]["ExecStartPre"]
