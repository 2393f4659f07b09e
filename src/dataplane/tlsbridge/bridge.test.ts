import assert from "node:assert/strict";
import { test } from "node:test";
import type { PeerCertificate } from "node:tls";
import { sanMismatch } from "./bridge.ts";

const cert = (subjectaltname: string): PeerCertificate => ({ subjectaltname }) as PeerCertificate;

test("sanMismatch: any listed DNS name or URI matches; wildcards cover one label", () => {
  const c = cert("DNS:backend.tls.test, DNS:*.apps.test, URI:spiffe://gatehouse.test/api");
  assert.equal(sanMismatch(c, ["URI:spiffe://gatehouse.test/api"]), undefined);
  assert.equal(sanMismatch(c, ["DNS:Backend.TLS.test"]), undefined);
  assert.equal(sanMismatch(c, ["URI:spiffe://other/x", "DNS:backend.tls.test"]), undefined);
  assert.equal(sanMismatch(c, ["DNS:web.apps.test"]), undefined);
  for (const miss of [
    "DNS:a.web.apps.test",
    "DNS:apps.test",
    "URI:spiffe://gatehouse.test/ap",
    "DNS:other.test",
  ])
    assert.match(sanMismatch(c, [miss]) ?? "", /match none of/, miss);
  assert.match(sanMismatch(cert(""), ["DNS:backend.tls.test"]) ?? "", /\(none\)/);
});
