// WebSocket echo load for the server-CPU-per-message scenarios.
// Usage: node ws_cpu.js URL CONNECTIONS SECONDS MODE; prints one JSON line with the
// messages echoed back over the whole run (bench/run.py divides the server's CPU by it).
//   small       34-byte text messages, no compression
//   fragmented  256 KiB text messages sent as 1,024 fragments of 256 bytes, no compression
//   compressed  1 KiB JSON-like text messages with permessage-deflate
"use strict";
const WebSocket = require("ws");

const [url, conns = "32", seconds = "5", mode = "small"] = process.argv.slice(2);
const connections = Number(conns);
let message = "hello, lowserve! ".repeat(2);
let fragment = 0;
if (mode === "fragmented") {
  message = "0123456789abcdef".repeat(16 * 1024);
  fragment = 256;
} else if (mode === "compressed") {
  const items = [];
  for (let i = 0; i < 14; i++) items.push(`{"n": ${i}, "ok": ${i % 2 === 0}, "label": "item-${i}"}`);
  message = `{"id": 12345, "name": "lowserve", "items": [${items.join(", ")}]}`.padEnd(1024, " ");
}
let received = 0;
let errors = 0;
let open = 0;
const sockets = [];

function send(ws) {
  if (!fragment) return ws.send(message, { compress: mode === "compressed" });
  for (let at = 0; at < message.length; at += fragment) {
    ws.send(message.slice(at, at + fragment), { fin: at + fragment >= message.length, compress: false });
  }
}

function start() {
  const t0 = process.hrtime.bigint();
  setTimeout(() => {
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ messages: received, seconds: elapsed, rate: received / elapsed, errors }));
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }, Number(seconds) * 1000);
}

for (let i = 0; i < connections; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: mode === "compressed" });
  sockets.push(ws);
  ws.on("open", () => {
    open += 1;
    send(ws);
    if (open === connections) start();
  });
  ws.on("message", (data) => {
    if (data.length !== message.length) errors += 1;
    received += 1;
    send(ws);
  });
  ws.on("error", () => { errors += 1; });
}
setTimeout(() => { if (open < connections) { console.error("connections did not open"); process.exit(1); } }, 10000);
