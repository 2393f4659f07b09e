import assert from "node:assert/strict";
import { test } from "node:test";
import { joinHostPort, parseHostPort } from "./hostport.ts";

test("parseHostPort: names, IPv4, bracketed IPv6", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:9901"), { host: "127.0.0.1", port: 9901 });
  assert.deepEqual(parseHostPort("gatehouse.svc:443"), { host: "gatehouse.svc", port: 443 });
  assert.deepEqual(parseHostPort("[::1]:80"), { host: "::1", port: 80 });
  assert.deepEqual(parseHostPort(" 0.0.0.0:0 "), { host: "0.0.0.0", port: 0 });
});

test("parseHostPort: a bare port or an empty host only with a default host", () => {
  assert.equal(parseHostPort("9901"), undefined);
  assert.equal(parseHostPort(":9901"), undefined);
  assert.deepEqual(parseHostPort("9901", { defaultHost: "127.0.0.1" }), { host: "127.0.0.1", port: 9901 });
  assert.deepEqual(parseHostPort(":9901", { defaultHost: "127.0.0.1" }), { host: "127.0.0.1", port: 9901 });
});

test("parseHostPort: refuses what is not an address", () => {
  for (const bad of ["", "host", "host:", "host:65536", "::1:80", "[::1]", "a b:1", "[x]:1"])
    assert.equal(parseHostPort(bad), undefined, JSON.stringify(bad));
});

test("joinHostPort brackets IPv6 and round-trips", () => {
  assert.equal(joinHostPort("::1", 80), "[::1]:80");
  assert.equal(joinHostPort("10.0.0.1", 80), "10.0.0.1:80");
  for (const a of ["[::1]:80", "10.0.0.1:8080", "name:1"]) {
    const p = parseHostPort(a);
    assert.ok(p);
    assert.equal(joinHostPort(p.host, p.port), a);
  }
});
