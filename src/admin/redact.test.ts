import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { keyFingerprint, REDACTED_KEY, redactIR, redactText } from "./redact.ts";
import { irWithKey, keysOf } from "./testing.ts";

describe("redactIR", () => {
  test("replaces every private key by its fingerprint and keeps the certificate", async () => {
    const ir = await irWithKey();
    const keys = keysOf(ir);
    assert.ok(keys.length > 0 && keys.every((k) => k.includes("PRIVATE KEY")), "the input carries a key");
    const redacted = redactIR(ir);
    const json = JSON.stringify(redacted);
    assert.doesNotMatch(json, /PRIVATE KEY/);
    assert.doesNotMatch(json, /keyPem/);
    const certificate = redacted.gateways[0]?.listeners.find((l) => l.tls !== undefined)?.tls
      ?.certificates[0];
    assert.ok(certificate !== undefined);
    assert.match(certificate.certPem, /BEGIN CERTIFICATE/);
    assert.equal(certificate.keySha256, keyFingerprint(keys[0] ?? ""));
    assert.deepEqual(keysOf(ir), keys, "the IR itself is left alone");
  });

  test("the fingerprint is sha256 of the trimmed PEM", () => {
    const pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n";
    const hex = createHash("sha256").update(pem.trim()).digest("hex");
    assert.equal(keyFingerprint(pem), `sha256:${hex}`);
  });
});

describe("redactText", () => {
  const pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\nAoGCCqGSM49\n-----END EC PRIVATE KEY-----";

  test("a PEM key, plain or JSON-escaped, whole or cut off", () => {
    assert.equal(redactText(`before ${pem} after`), `before ${REDACTED_KEY} after`);
    assert.equal(
      redactText(JSON.stringify({ m: `x ${pem} y` })),
      JSON.stringify({ m: `x ${REDACTED_KEY} y` }),
    );
    const cut = "-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMG\\nByqGSM49";
    assert.equal(redactText(`{"msg":"${cut}","level":"info"}`), `{"msg":"${REDACTED_KEY}","level":"info"}`);
  });

  test("a base64-encoded PEM key (Secret data), but not other base64", () => {
    const b64 = Buffer.from(`${pem}\n`).toString("base64");
    assert.equal(redactText(`tls.key: ${b64}`), `tls.key: ${REDACTED_KEY}`);
    const cert = Buffer.from("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").toString(
      "base64",
    );
    assert.equal(redactText(`tls.crt: ${cert}`), `tls.crt: ${cert}`);
  });

  test("text without keys is returned as is, certificates included", () => {
    const text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nno key here";
    assert.equal(redactText(text), text);
  });
});
