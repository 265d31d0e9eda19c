"""A broadcast chat: a small page at ``/`` and a WebSocket at ``/ws``.

lowserve examples.chat:handler --port 8080    # then open http://127.0.0.1:8080/
"""

from __future__ import annotations

import json

from lowserve import web

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lowserve chat</title>
<style>
 body { font: 15px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
 #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
 #log p { margin: .2em 0; } form { display: flex; gap: .5em; margin-top: .5em; }
 input { flex: 1; padding: .4em; }
</style></head>
<body>
<h1>lowserve chat</h1>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="Say something">
<button>Send</button></form>
<script>
const log = document.getElementById("log");
const scheme = location.protocol === "https:" ? "wss" : "ws";
const ws = new WebSocket(`${scheme}://${location.host}/ws`);
function show(text) {
  const p = document.createElement("p");
  p.textContent = text;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
}
ws.onopen = () => document.body.dataset.state = "open";
ws.onclose = () => document.body.dataset.state = "closed";
ws.onmessage = (event) => {
  const msg = JSON.parse(event.data);
  show(msg.from + ": " + msg.text);
};
function send(text) { ws.send(text); }
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  if (input.value) { send(input.value); input.value = ""; }
};
</script>
</body></html>
"""

clients: set[web.WebSocketResponse] = set()


async def handler(request: web.BaseRequest) -> web.StreamResponse:
    """``/``: the page; ``/ws``: the chat itself."""
    if request.path == "/":
        return web.Response(text=PAGE, content_type="text/html")
    if request.path != "/ws":
        raise web.HTTPNotFound()
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
    await ws.prepare(request)
    name = f"guest-{id(ws) % 10000}"
    clients.add(ws)
    try:
        async for msg in ws:
            if msg.type is not web.WSMsgType.TEXT:
                continue
            # The page shows messages with textContent, so markup stays text.
            payload = json.dumps({"from": name, "text": msg.data[:500]})
            for peer in list(clients):
                try:
                    await peer.send_str(payload)
                except ConnectionError:
                    clients.discard(peer)
    finally:
        clients.discard(ws)
    return ws


if __name__ == "__main__":
    web.run(handler, host="127.0.0.1", port=8080)
