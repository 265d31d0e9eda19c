"""HTTP/2 in headless Chromium over TLS: a page and a ``fetch``, each ``h2`` by the
browser's own account (``nextHopProtocol`` of the Navigation and Resource Timing
entries), served by the same handler as HTTP/1.1. Skipped without Chromium."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from lowserve import web

from test_chat_browser import CHROMIUM, chromium

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")

PAGE = """<!doctype html><title>h2</title><body>
<p id="v">…</p>
<script>
fetch('/api?x=1', {method: 'POST', body: 'ping'}).then(r => r.json()).then(j => {
  document.getElementById('v').textContent = JSON.stringify(j);
  document.body.dataset.done = 'yes';
});
</script>"""


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == "/api":
        body = await request.text()
        return web.json_response({"version": list(request.version), "body": body})
    return web.Response(text=PAGE, content_type="text/html")


async def test_chromium_speaks_h2_over_tls(tmp_path: Any) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = web.Server(handler, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with chromium("--ignore-certificate-errors") as browser:
            tab = await browser.open(f"https://127.0.0.1:{port}/")
            await browser.wait_for(tab, "document.body && document.body.dataset.done === 'yes'")
            assert await browser.eval(tab, "document.getElementById('v').textContent") == (
                '{"version":[2,0],"body":"ping"}'  # as JSON.stringify writes it
            )
            page = await browser.eval(
                tab, "performance.getEntriesByType('navigation')[0].nextHopProtocol"
            )
            api = await browser.eval(
                tab,
                "performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api'))[0].nextHopProtocol",
            )
            assert (page, api) == ("h2", "h2")
    finally:
        await runner.cleanup()
