"""Server-sent events with StreamResponse: ``lowserve examples.sse:handler``.

``GET /events?n=5`` streams *n* events (at most 100) a tenth of a second apart; ``GET /`` is a page
whose EventSource shows them.
"""

import asyncio

from lowserve import web

MAX_EVENTS = 100

PAGE = """<!doctype html><meta charset="utf-8"><title>SSE</title><ol id="log"></ol>
<script>
const source = new EventSource("/events?n=3");
source.onmessage = (e) => { const li = document.createElement("li");
  li.textContent = e.data; document.getElementById("log").append(li);
  if (e.data === "2") { source.close(); document.body.dataset.done = "yes"; } };
</script>"""


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == "/":
        return web.Response(text=PAGE, content_type="text/html")
    if request.path != "/events":
        raise web.HTTPNotFound()
    n = request.query.get("n", "5")  # checked before prepare(): a bad n is a 400, not a cut stream
    if not (n.isascii() and n.isdigit() and len(n) <= 3 and int(n) <= MAX_EVENTS):
        raise web.HTTPBadRequest(text=f"n must be a whole number from 0 to {MAX_EVENTS}\n")
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await resp.prepare(request)
    for i in range(int(n)):
        await resp.write(f"id: {i}\ndata: {i}\n\n".encode())
        await asyncio.sleep(0.1)
    await resp.write_eof()
    return resp
