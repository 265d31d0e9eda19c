// WebSocket echo load: N connections, each keeping DEPTH small text messages in flight.
// Usage: node ws_echo.js URL CONNECTIONS SECONDS [DEPTH]; prints one JSON line.
"use strict";
const WebSocket = require("ws");

const [url, conns = "32", seconds = "5", depthArg = "1"] = process.argv.slice(2);
const connections = Number(conns);
const depth = Number(depthArg);
const message = "hello, lowserve! ".repeat(2); // 34 bytes
let received = 0;
let errors = 0;
let open = 0;
let measuring = false;
const sockets = [];

function start() {
  measuring = true;
  const t0 = process.hrtime.bigint();
  setTimeout(() => {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ messages: received, seconds: elapsed, rate: received / elapsed, errors }));
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }, Number(seconds) * 1000);
}

for (let i = 0; i < connections; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(ws);
  ws.on("open", () => {
    open += 1;
    for (let d = 0; d < depth; d++) ws.send(message);
    if (open === connections) start();
  });
  ws.on("message", () => {
    if (measuring) received += 1;
    ws.send(message);
  });
  ws.on("error", () => { errors += 1; });
}
setTimeout(() => { if (!measuring) { console.error("connections did not open"); process.exit(1); } }, 10000);
