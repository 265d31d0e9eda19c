"""A WebSocket server's own cost per echoed message, without sockets.

The bench handler (bench/servers.py's ``/ws`` echo) runs on uvloop behind a
connection fed client frames through ``data_received``, writing into a counter: the
figure is the server's Python (and C) per message, with no kernel and no client.
It is the instrument for a change on the WebSocket path, where the socket
scenarios of ``bench/run.py`` (``ws-small``, ``ws-fragmented``, ``ws-compressed``)
move 10-20% between runs on a shared machine.

    python bench/ws_inmemory.py                              # lowserve and aiohttp, timed
    python bench/ws_inmemory.py --instructions               # callgrind instructions/message
    python bench/ws_inmemory.py --tree /tmp/before/src --tree src --instructions

The scenarios match ``bench/node/ws_cpu.js``: ``small`` (34-byte text messages),
``fragmented`` (256 KiB text messages in 1,024 fragments of 256 bytes, fed 16 KiB
at a time) and ``compressed`` (1 KiB JSON-like text, permessage-deflate with context
takeover, as the Node client sends it). ``--instructions`` counts CPU instructions
under valgrind's callgrind, the difference between two run lengths so start-up
cancels out: the same figure for the same tree whatever the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from inmemory import callgrind_instructions  # bench/ is the script's directory

HERE = Path(__file__).resolve().parent
SCENARIOS = ("small", "fragmented", "compressed")
#: messages per measured run: (short, long) for --instructions, and the timed count
COUNTS = {"small": (2000, 4000, 20000), "fragmented": (4, 8, 40), "compressed": (1000, 2000, 10000)}

CHILD = r"""
import asyncio, base64, json, os, sys, time, zlib
tree, kind, scenario, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
timed = len(sys.argv) > 5
if tree != "-":
    sys.path.insert(0, tree)
sys.path.insert(0, sys.argv[0] if sys.argv[0] != "-c" else "")
import uvloop
from servers import make_handler

if kind == "aiohttp":
    from aiohttp import web
    from aiohttp.web_server import Server
else:
    from lowserve import web
    Server = web.Server

if scenario == "fragmented":
    message, fragment = b"0123456789abcdef" * (16 * 1024), 256
elif scenario == "compressed":
    items = ", ".join(
        f'{{"n": {i}, "ok": {str(i % 2 == 0).lower()}, "label": "item-{i}"}}' for i in range(14)
    )
    message = f'{{"id": 12345, "name": "lowserve", "items": [{items}]}}'.ljust(1024).encode()
    fragment = 0
else:
    message, fragment = b"hello, lowserve! " * 2, 0
MASK = b"\x12\x34\x56\x78"

def masked(first, payload):
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0xFE)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0xFF)) + n.to_bytes(8, "big")
    key = (MASK * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + MASK + body

class Transport:
    def __init__(self):
        self.out = 0
        self.writes = 0
    def write(self, data):
        self.out += len(data)
        self.writes += 1
    def writelines(self, parts):
        for p in parts:
            self.write(p)
    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)
    def is_closing(self): return False
    def pause_reading(self): pass
    def resume_reading(self): pass
    def can_write_eof(self): return True
    def write_eof(self): pass
    def close(self): pass
    def abort(self): pass
    def set_write_buffer_limits(self, high=None, low=None): pass
    def get_write_buffer_size(self): return 0
    def get_write_buffer_limits(self): return (0, 0)

async def main():
    loop = asyncio.get_running_loop()
    handler = make_handler(web)
    server = Server(handler, access_log=None) if kind == "lowserve" else Server(handler, loop=loop)
    proto = server()
    transport = Transport()
    proto.connection_made(transport)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = ""
    if scenario == "compressed":
        ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    proto.data_received(
        f"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n".encode()
    )
    for _ in range(10):
        await asyncio.sleep(0)
    assert transport.writes, "no handshake answer"
    if fragment:
        frames = []
        for at in range(0, len(message), fragment):
            first = (0 if at else 0x01) | (0x80 if at + fragment >= len(message) else 0)
            frames.append(masked(first, message[at : at + fragment]))
        raw = b"".join(frames)
        chunks = [raw[i : i + 16384] for i in range(0, len(raw), 16384)]
        make = lambda: chunks
    elif scenario == "compressed":
        comp = zlib.compressobj(1, zlib.DEFLATED, -12)  # context takeover, as Node's ws
        def make():
            data = comp.compress(message) + comp.flush(zlib.Z_SYNC_FLUSH)
            return [masked(0xC1, data[:-4])]
    else:
        one = [masked(0x81, message)]
        make = lambda: one
    # the first messages warm up (caches, specialisation); then n measured
    for _ in range(3):
        for chunk in make():
            proto.data_received(chunk)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    before = transport.writes
    t0 = time.perf_counter()
    for _ in range(n):
        for chunk in make():
            proto.data_received(chunk)
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    elapsed = time.perf_counter() - t0
    assert transport.writes - before >= n, (transport.writes - before, n)
    print(json.dumps({"us": elapsed / n * 1e6}))
    proto.connection_lost(None)
    await asyncio.sleep(0)

uvloop.run(main())
"""


def child(tree: str, kind: str, scenario: str, n: int, *extra: str) -> list[str]:
    return [sys.executable, "-c", CHILD, tree, kind, scenario, str(n), *extra]


def timed(tree: str, kind: str, scenario: str) -> float:
    out = subprocess.run(
        child(tree, kind, scenario, COUNTS[scenario][2], "timed"),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=HERE,
    )
    us: float = json.loads(out.stdout.strip().splitlines()[-1])["us"]
    return us


def instructions(tree: str, kind: str, scenario: str) -> float:
    """Instructions per message (callgrind; the difference of two run lengths)."""
    short, long_, _ = COUNTS[scenario]
    counts = [
        callgrind_instructions(child(tree, kind, scenario, n), 1800, cwd=HERE)
        for n in (short, long_)
    ]
    return (counts[1] - counts[0]) / (long_ - short)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tree", action="append", help="a src/ directory (default: the installed)")
    ap.add_argument("--peer", action="append", choices=("lowserve", "aiohttp"))
    ap.add_argument("--scenario", action="append", choices=SCENARIOS)
    ap.add_argument("--instructions", action="store_true", help="count instructions (callgrind)")
    ap.add_argument("--rounds", type=int, default=3, help="timed runs (the best is shown)")
    args = ap.parse_args()
    runs = (
        [("lowserve", t) for t in args.tree or ["-"]]
        if "lowserve" in (args.peer or ("lowserve", "aiohttp"))
        else []
    )
    if "aiohttp" in (args.peer or ("lowserve", "aiohttp")):
        runs.append(("aiohttp", "-"))
    names = [k if t == "-" else f"{k} `{t}`" for k, t in runs]
    unit = "instructions/msg" if args.instructions else "µs/msg (best)"
    print(f"| scenario ({unit}) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(runs))
    for scenario in args.scenario or SCENARIOS:
        if args.instructions:
            cells = [f"{instructions(t, k, scenario):,.0f}" for k, t in runs]
        else:
            cells = [
                f"{min(timed(t, k, scenario) for _ in range(args.rounds)):.2f}" for k, t in runs
            ]
        print(f"| {scenario} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
