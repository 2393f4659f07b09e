// BackendTLSPolicy subjectAltNames (BackendTLSPolicySANValidation) through a real HAProxy and the
// TLS bridge: a TLS backend whose certificate carries DNS:backend.tls.test and
// URI:spiffe://gatehouse.test/api. A policy whose subjectAltNames match (URI, or a DNS name other than
// the SNI) reaches it; one whose subjectAltNames do not match gets 5xx and the backend sees no
// request at all (the check happens before HAProxy sends a byte).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Harness, selfSignedCert } from "./harness.ts";
import { startTLSBackend, type TLSBackend } from "./tls-backend.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, prefix, ref, service, type Obj } from "./resources.ts";

function policy(name: string, sans: Obj[]): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "BackendTLSPolicy",
    metadata: { name, namespace: NS },
    spec: {
      targetRefs: [{ group: "", kind: "Service", name }],
      validation: {
        // The SNI; with subjectAltNames the certificate need not carry it.
        hostname: "sni.tls.test",
        caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "backend-ca" }],
        subjectAltNames: sans,
      },
    },
  };
}

const CASES: Record<string, Obj[]> = {
  "uri-ok": [{ type: "URI", uri: "spiffe://gatehouse.test/api" }],
  "dns-ok": [{ type: "Hostname", hostname: "backend.tls.test" }],
  "multi-ok": [
    { type: "URI", uri: "spiffe://gatehouse.test/other" },
    { type: "Hostname", hostname: "backend.tls.test" },
  ],
  "uri-wrong": [{ type: "URI", uri: "spiffe://gatehouse.test/other" }],
  "dns-wrong": [{ type: "Hostname", hostname: "other.tls.test" }],
};

describe("BackendTLSPolicy subjectAltNames (TLS bridge)", { concurrency: false }, () => {
  let h: Harness | undefined;
  let server: TLSBackend | undefined;
  let dir: string | undefined;
  let requests = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-san-"));
    const cert = await selfSignedCert(dir, ["backend.tls.test", "URI:spiffe://gatehouse.test/api"]);
    server = await startTLSBackend({ cert: cert.cert, key: cert.key }, (_req, res) => {
      requests++;
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("san backend");
    });
    const endpoint = server.endpoint;
    h = await Harness.start({ ports: 1, files: () => ({}) });
    const applied = await h.write({
      "all.yaml": docs(
        gatewayClass(),
        gateway("gw", h.ip, [{ name: "http", port: h.port }]),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "backend-ca", namespace: NS },
          data: { "ca.crt": cert.cert },
        },
        ...Object.keys(CASES).map((name) => service(name, { endpoints: [endpoint] })),
        ...Object.entries(CASES).map(([name, sans]) => policy(name, sans)),
        httpRoute("r", {
          rules: Object.keys(CASES).map((name) => ({
            matches: [prefix(`/${name}`)],
            backendRefs: [ref(name)],
          })),
        }),
      ),
    });
    assert.equal(applied.result, "success", JSON.stringify(applied));
  });

  after(async () => {
    await h?.close();
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  for (const name of ["uri-ok", "dns-ok", "multi-ok"]) {
    test(`${name}: a matching subjectAltName reaches the backend`, async () => {
      if (h === undefined) throw new Error("no harness");
      const res = await h.get(`/${name}`, { host: "app.test" });
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, "san backend");
    });
  }

  for (const name of ["uri-wrong", "dns-wrong"]) {
    test(`${name}: no matching subjectAltName, 5xx and not one request reaches the backend`, async () => {
      if (h === undefined) throw new Error("no harness");
      const before = requests;
      const res = await h.get(`/${name}`, { host: "app.test" });
      assert.ok(res.status >= 500 && res.status < 600, `status ${res.status}`);
      assert.equal(requests, before);
    });
  }

  test("the policies are Accepted", async () => {
    if (h === undefined) throw new Error("no harness");
    const status = await h.status();
    for (const name of Object.keys(CASES)) {
      const p = status.objects.find((o) => o.kind === "BackendTLSPolicy" && o.metadata.name === name);
      const ancestors = p?.status["ancestors"] as Array<{
        conditions: Array<{ type: string; status: string }>;
      }>;
      assert.equal(ancestors[0]?.conditions.find((c) => c.type === "Accepted")?.status, "True", name);
    }
  });
});
