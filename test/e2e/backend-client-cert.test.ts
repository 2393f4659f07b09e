// GatewayBackendClientCertificate through a real HAProxy: a TLS backend (node:https) that requires a
// client certificate issued by its client CA. A Gateway whose spec.tls.backend.clientCertificateRef
// names that certificate reaches it; a second Gateway routing to the same Service without one is
// refused by the backend (5xx, nothing answered). /config shows the key's fingerprint, never the key.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TLSSocket } from "node:tls";
import { Harness, selfSignedCert } from "./harness.ts";
import { startTLSBackend, type TLSBackend } from "./tls-backend.ts";
import {
  docs,
  gateway,
  gatewayClass,
  httpRoute,
  NS,
  ref,
  service,
  tlsSecret,
  type Obj,
} from "./resources.ts";

const GROUP = "gateway.networking.k8s.io/v1";

describe("GatewayBackendClientCertificate", { concurrency: false }, () => {
  let h: Harness | undefined;
  let server: TLSBackend | undefined;
  let dir: string | undefined;
  /** Subject CN of the client certificate of each request the backend answered. */
  const seen: string[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-bcc-"));
    await mkdir(join(dir, "client"));
    const [backend, client] = await Promise.all([
      selfSignedCert(dir, ["backend.tls.test"]),
      selfSignedCert(join(dir, "client"), ["gateway.client.test"]),
    ]);
    server = await startTLSBackend(
      { cert: backend.cert, key: backend.key, ca: client.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = req.socket instanceof TLSSocket ? req.socket.getPeerCertificate() : undefined;
        seen.push(typeof peer?.subject?.CN === "string" ? peer.subject.CN : "");
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("mtls backend");
      },
    );
    const endpoint = server.endpoint;
    h = await Harness.start({ ports: 2, files: () => ({}) });
    const withCert = gateway("gw", h.ip, [{ name: "http", port: h.ports[0] ?? 0 }]);
    (withCert["spec"] as Obj)["tls"] = { backend: { clientCertificateRef: { name: "gateway-client" } } };
    const applied = await h.write({
      "all.yaml": docs(
        gatewayClass(),
        withCert,
        gateway("plain", h.ip, [{ name: "http", port: h.ports[1] ?? 0 }]),
        tlsSecret("gateway-client", client.cert, client.key),
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "backend-ca", namespace: NS },
          data: { "ca.crt": backend.cert },
        },
        service("mtls", { endpoints: [endpoint] }),
        {
          apiVersion: GROUP,
          kind: "BackendTLSPolicy",
          metadata: { name: "mtls", namespace: NS },
          spec: {
            targetRefs: [{ group: "", kind: "Service", name: "mtls" }],
            validation: {
              hostname: "backend.tls.test",
              caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "backend-ca" }],
            },
          },
        },
        httpRoute("via-gw", { parentRefs: [{ name: "gw" }], rules: [{ backendRefs: [ref("mtls")] }] }),
        httpRoute("via-plain", { parentRefs: [{ name: "plain" }], rules: [{ backendRefs: [ref("mtls")] }] }),
      ),
    });
    assert.equal(applied.result, "success", JSON.stringify(applied));
  });

  after(async () => {
    await h?.close();
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test("the Gateway with the certificate presents it; the backend answers", async () => {
    if (h === undefined) throw new Error("no harness");
    const before = seen.length;
    const res = await h.get("/", { host: "app.test", port: h.ports[0] ?? 0 });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, "mtls backend");
    assert.deepEqual(seen.slice(before), ["gateway.client.test"]);
    const status = await h.status();
    const gw = status.objects.find((o) => o.kind === "Gateway" && o.metadata.name === "gw");
    const resolved = (gw?.status["conditions"] as Array<{ type: string; status: string }>).find(
      (c) => c.type === "ResolvedRefs",
    );
    assert.equal(resolved?.status, "True");
  });

  test("a Gateway without it reaches the same Service without a certificate: refused, 5xx", async () => {
    if (h === undefined) throw new Error("no harness");
    const before = seen.length;
    const res = await h.get("/", { host: "app.test", port: h.ports[1] ?? 0 });
    assert.ok(res.status >= 500 && res.status < 600, `status ${res.status}`);
    assert.equal(seen.length, before);
  });

  test("/config carries the key's fingerprint, not the key", async () => {
    if (h === undefined) throw new Error("no harness");
    const config = await (await fetch(`${h.adminUrl}/config`)).text();
    assert.match(config, /clientcert/);
    assert.match(config, /"keySha256": ?"sha256:[0-9a-f]{64}"/);
    assert.doesNotMatch(config, /PRIVATE KEY/);
  });
});
