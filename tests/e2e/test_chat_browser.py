"""The chat example in headless Chromium, driven over the DevTools protocol.

Two browser tabs load the page from lowserve; one sends a message through the page's
own form, and both show the broadcast. Skipped where Chromium is not installed
(``.ci/run`` installs Debian's ``chromium``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from conftest import serve
from test_examples import load

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


class DevTools:
    """Just enough of the DevTools protocol: targets and Runtime.evaluate."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.ids = itertools.count(1)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.conn.send(json.dumps(msg))
        while True:
            reply = json.loads(await self.conn.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise AssertionError(reply["error"])
                return reply["result"]

    async def open(self, url: str) -> str:
        target = await self.call("Target.createTarget", url=url)
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        return str(attached["sessionId"])

    async def eval(self, session: str, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate",
            session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        return result["result"].get("value")

    async def wait_for(self, session: str, expression: str, timeout: float = 10) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.eval(session, expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def chromium(*flags: str) -> AsyncIterator[DevTools]:
    # Chromium's helper processes may still write to the profile as it goes: the whole
    # process group is stopped, and a straggler's file does not fail the test.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                CHROMIUM or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                *flags,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            url = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while url is None and loop.time() < deadline:
                line = await loop.run_in_executor(None, proc.stderr.readline)
                if not line:
                    break
                if m := re.search(r"DevTools listening on (ws://\S+)", line):
                    url = m.group(1)
            assert url, "chromium did not start"
            async with websockets.connect(url, max_size=None) as conn:
                yield DevTools(conn)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def test_chat_in_two_browser_tabs() -> None:
    chat = load("chat")
    async with serve(chat.handler) as s, chromium() as browser:
        page = f"http://127.0.0.1:{s.port}/"
        alice = await browser.open(page)
        bob = await browser.open(page)
        for tab in (alice, bob):
            await browser.wait_for(tab, "document.body && document.body.dataset.state === 'open'")
        await browser.eval(
            alice,
            """
            document.getElementById('text').value = 'hello from <b>alice</b>';
            document.getElementById('form').requestSubmit();
        """,
        )
        for tab in (alice, bob):
            text = await browser.wait_for(
                tab, "[...document.querySelectorAll('#log p')].map(p => p.textContent).join('|')"
            )
            assert text.endswith(": hello from <b>alice</b>")
            assert await browser.eval(tab, "document.querySelectorAll('#log b').length") == 0
        assert len(chat.clients) == 2


async def test_sse_with_chromiums_eventsource() -> None:
    sse = load("sse")
    async with serve(sse.handler) as s, chromium() as browser:
        tab = await browser.open(f"http://127.0.0.1:{s.port}/")
        await browser.wait_for(tab, "document.body && document.body.dataset.done === 'yes'")
        items = await browser.eval(
            tab, "[...document.querySelectorAll('#log li')].map(li => li.textContent).join(',')"
        )
        assert items == "0,1,2"
