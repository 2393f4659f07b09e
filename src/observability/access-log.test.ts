import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "node:net";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { UsageError } from "../errors.ts";
import {
  AccessLogReceiver,
  formatEntry,
  parseAccessLogFormat,
  parseAccessLogOutput,
  parseRecord,
  toEntry,
  type HAProxyRecord,
} from "./access-log.ts";

// A line as HAProxy 2.6 writes it with the rendered log-format (json() converter on captured
// headers, the E flag on the path): the X-Request-Id held `a"b\c` and a control character.
const DATAGRAM =
  '{"k":"TOKEN","ts":1796294152,"ms":780,"rid":"rb541ecc2b3e0","fe":"fe_any_80","be":"service:default:web:80","srv":"s1","sip":"127.0.0.1","sport":"18081","status":200,"TR":0,"Tw":0,"Tc":1,"Tr":4,"Ta":6,"Tt":6,"in":80,"out":500,"ci":"127.0.0.1","cp":39816,"method":"GET","path":"/a\\]b\\\\]","query":"?q=1","version":"HTTP/1.1","host":"shop.test","xrid":"a\\"b\\\\c\\u0001","ua":"-","id":"7F00","term":"--","retries":0}';

const identity = {
  gateway: "default/gw",
  listener: "http",
  hostname: "shop.test",
  routeKind: "HTTPRoute",
  routeNamespace: "default",
  routeName: "shop",
  rule: "cart",
  backends: ["default/web:80"],
  irRule: "httproute/default/shop/rule/0/match/0",
};

test("a line is decoded, HAProxy's \\] escape included", () => {
  const r = parseRecord(DATAGRAM);
  assert.equal(r.path, "/a]b\\]");
  assert.equal(r.xrid, 'a"b\\c\u0001');
  assert.throws(() => parseRecord('{"status":200,"x":"\\'), /unparsable/);
});

test("the accept milliseconds zero-padded and redispatched retries ('+1') are read as numbers", () => {
  // HAProxy writes %ms as "064" and %rc as "+1": both are quoted in the log-format (logging.ts).
  const line = DATAGRAM.replace('"ms":780', '"ms":"064"').replace('"retries":0', '"retries":"+1"');
  const e = toEntry(parseRecord(line), identity);
  assert.equal(e.time, new Date(1796294152 * 1000 + 64).toISOString());
  assert.equal(e.retries, 1);
  assert.equal(toEntry(parseRecord(DATAGRAM.replace('"retries":0', '"retries":"0"')), identity).retries, 0);
});

test("entries carry the Gateway API identity, timings and the client's request id", () => {
  const e = toEntry(parseRecord(DATAGRAM), identity);
  assert.equal(e.time, "2026-12-03T10:35:52.780Z");
  assert.equal(e.route, "shop");
  assert.equal(e.rule, "cart");
  assert.equal(e.backend, "default/web:80");
  assert.equal(e.endpoint, "127.0.0.1:18081");
  assert.equal(e.ttfb_ms, 5);
  assert.equal(e.duration_ms, 6);
  assert.equal(e.request_id, 'a"b\\c\u0001');
  assert.equal(e.user_agent, null);
  const noResponse = toEntry({ ...parseRecord(DATAGRAM), Tr: -1 }, undefined);
  assert.equal(noResponse.ttfb_ms, null);
  assert.equal(noResponse.route, null);
});

test("no format lets a value break its line", () => {
  const e = toEntry(parseRecord(DATAGRAM), identity);
  for (const format of [
    parseAccessLogFormat("json"),
    parseAccessLogFormat("text"),
    parseAccessLogFormat("custom:{request_id} {path}"),
  ]) {
    const line = formatEntry(e, format) ?? "";
    assert.ok(!Array.from(line, (c) => c.charCodeAt(0)).some((code) => code < 0x20), line);
  }
  assert.equal(
    formatEntry(e, parseAccessLogFormat("custom:{request_id}|{route}")),
    "a\\x22b\\x5cc\\x01|shop",
  );
  const json = JSON.parse(formatEntry(e, { kind: "json" }) ?? "") as { request_id: string };
  assert.equal(json.request_id, 'a"b\\c\u0001');
  assert.equal(formatEntry(e, { kind: "off" }), undefined);
});

test("flags: formats and outputs", () => {
  assert.throws(() => parseAccessLogFormat("xml"), UsageError);
  assert.throws(() => parseAccessLogFormat("custom:{nope}"), UsageError);
  assert.deepEqual(parseAccessLogOutput("file:/var/log/a.log"), { kind: "file", path: "/var/log/a.log" });
  assert.deepEqual(parseAccessLogOutput("syslog:10.0.0.1:514"), {
    kind: "syslog",
    host: "10.0.0.1",
    port: 514,
  });
  assert.throws(() => parseAccessLogOutput("syslog:host"), UsageError);
});

test("the receiver skips internal frontends, lines without its token and unparsable lines", () => {
  const lines: string[] = [];
  const seen: HAProxyRecord[] = [];
  const r = new AccessLogReceiver({
    format: { kind: "json" },
    sink: { write: (l) => lines.push(...l), close: async () => {} },
    identity: () => identity,
    onRecord: (rec) => seen.push(rec),
  });
  const mine = DATAGRAM.replace("TOKEN", r.token);
  r.handle(mine);
  r.handle(mine.replace('"fe_any_80"', '"gh_mirror"'));
  r.handle("garbage");
  r.handle(DATAGRAM); // another token: not HAProxy's line
  assert.equal(lines.length, 1);
  assert.equal(seen.length, 1);
  assert.equal(r.unparsable, 2);
});

test("the entry time is HAProxy's accept date in RFC 3339, as Date would print it", () => {
  for (const [ts, ms] of [
    [1764780000, "064"],
    [1764780000, "999"],
    [1764780001, 0],
    [0, "000"],
    [1764780000, 5],
  ] as const) {
    const e = toEntry({ ...parseRecord(DATAGRAM), ts, ms }, undefined);
    assert.equal(e.time, new Date(ts * 1000 + Number(ms)).toISOString());
  }
});

test("the receiver reads lines split across TCP chunks and writes each chunk's entries in one write", async () => {
  const writes: string[][] = [];
  const r = new AccessLogReceiver({
    format: { kind: "json" },
    sink: { write: (l) => writes.push([...l]), close: async () => {} },
    identity: () => identity,
  });
  const address = await r.start();
  const [host, port] = address.split(":");
  const mine = DATAGRAM.replace("TOKEN", r.token);
  const socket = connect(Number(port), host);
  await once(socket, "connect");
  // Three lines in one write, then a line in two halves.
  socket.write(`${mine}\n${mine}\n${mine}\n`);
  while (r.received < 3) await sleep(5);
  socket.write(mine.slice(0, 40));
  await sleep(50);
  socket.end(`${mine.slice(40)}\n`);
  while (r.received < 4) await sleep(5);
  await r.close();
  assert.equal(r.unparsable, 0);
  assert.deepEqual(
    writes.map((w) => w.length),
    [3, 1],
  );
  for (const line of writes.flat())
    assert.equal((JSON.parse(line) as { route: string }).route, identity.routeName);
});
