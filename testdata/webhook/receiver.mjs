// A webhook receiver that checks each POST with the standardwebhooks
// package, independently of otpgate's Go code. Usage:
//
//	node receiver.mjs <whsec_secret>
//
// It listens on a free loopback port and prints one JSON line per event:
// {"listening": port} first, then for every request
// {"ok": true, "id": "<webhook-id>", "payload": {...}} (answered 204) or
// {"ok": false, "error": "..."} (answered 401).
import http from "node:http";
import { Webhook } from "standardwebhooks";

const secret = process.argv[2];
if (!secret) {
  console.error("usage: node receiver.mjs <whsec_secret>");
  process.exit(2);
}
const wh = new Webhook(secret);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    try {
      const payload = wh.verify(body, req.headers);
      console.log(JSON.stringify({ ok: true, id: req.headers["webhook-id"], method: req.method, payload }));
      res.writeHead(204).end();
    } catch (e) {
      console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e) }));
      res.writeHead(401, { "Content-Type": "application/json" }).end('{"error":"invalid signature"}');
    }
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
