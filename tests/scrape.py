"""Scraping the admin listener in tests: GET /metrics (or a health path) and read it
with prometheus_client's own parser, which refuses bad exposition text."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape_text(where: int | str, path: str = "/metrics") -> tuple[int, str, str]:
    """GET *path* from the admin listener (a port, or a UNIX socket file): status,
    Content-Type, body."""
    if isinstance(where, int):
        sock = socket.create_connection(("127.0.0.1", where), timeout=5)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(5)
        sock.connect(where)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    ctype = next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("content-type:")), ""
    )
    return int(lines[0].split()[1]), ctype, body.decode()


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels (the parser refuses bad text)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(where: int | str) -> Samples:
    status, ctype, body = scrape_text(where)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    return parse(body)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of *name* whose labels include *labels*."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def wait_until(check: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.05)


def settled(admin: int) -> float:
    """The request count once every worker has reported it: unchanged for longer
    than a worker's report interval (1 s)."""
    seen, since = total(scrape(admin), "lowserve_requests_total"), time.monotonic()
    deadline = since + 20
    while time.monotonic() - since < 1.5:
        assert time.monotonic() < deadline, "the request count never settled"
        time.sleep(0.1)
        now = total(scrape(admin), "lowserve_requests_total")
        if now != seen:
            seen, since = now, time.monotonic()
    return seen
