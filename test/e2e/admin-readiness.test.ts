// The admin API on the real pipeline: /ready says 503 with a reason when no listener is
// programmed (every file deleted) and 200 again once one is; with an HTTPS listener, neither
// /config, /status nor the log carries the private key (/config shows its fingerprint).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { keyFingerprint } from "../../src/admin/redact.ts";
import { selfSignedCert, useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, tlsSecret } from "./resources.ts";

const harness = useHarness({
  backends: { echo: "http" },
  ports: 2,
  files: (h) => ({ "gateway.yaml": gatewayFile(h), "route.yaml": routeFile() }),
});

function gatewayFile(h: Harness, https = false): string {
  return docs(
    gatewayClass(),
    gateway("gw", h.ip, [
      { name: "http", port: h.ports[0] ?? 0 },
      ...(https
        ? [{ name: "https", port: h.ports[1] ?? 0, protocol: "HTTPS" as const, certificates: ["admin-tls"] }]
        : []),
    ]),
    service("echo", { endpoints: [h.backend("echo").endpoint] }),
  );
}

function routeFile(): string {
  return docs(httpRoute("web", { hostnames: ["admin.test"], rules: [{ backendRefs: [ref("echo")] }] }));
}

async function ready(h: Harness): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const response = await fetch(`${h.adminUrl}/ready`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; reason?: string } };
}

describe("admin /ready", () => {
  test("503 with a reason once every file is deleted, 200 again when a listener is back", async () => {
    const h = harness();
    assert.deepEqual(await ready(h), { status: 200, body: { ready: true } });

    await h.write({ "gateway.yaml": null, "route.yaml": null });
    const empty = await ready(h);
    assert.equal(empty.status, 503);
    assert.equal(empty.body.ready, false);
    assert.match(empty.body.reason ?? "", /^no listener is programmed: generation \d+ has no listener$/);
    assert.equal((await fetch(`${h.adminUrl}/healthz`)).status, 200, "alive, just not ready");

    await h.write({ "gateway.yaml": gatewayFile(h), "route.yaml": routeFile() });
    assert.deepEqual(await ready(h), { status: 200, body: { ready: true } });
    assert.equal((await h.get("/", { host: "admin.test" })).status, 200);
  });
});

describe("admin: no key material", () => {
  test("/config shows the key's fingerprint; /config, /status and the log never the key", async () => {
    const h = harness();
    const { cert, key } = await selfSignedCert(h.root, ["admin.test"]);
    await h.write({
      "gateway.yaml": gatewayFile(h, true),
      "tls.yaml": docs(tlsSecret("admin-tls", cert, key)),
    });
    const config = await (await fetch(`${h.adminUrl}/config`)).text();
    assert.ok(config.includes(`"keySha256": "${keyFingerprint(key)}"`), "the fingerprint is shown");
    const status = await (await fetch(`${h.adminUrl}/status`)).text();
    for (const [what, text] of [
      ["/config", config],
      ["/status", status],
      ["the log", h.logs.join("\n")],
    ] as const) {
      assert.doesNotMatch(text, /PRIVATE KEY/, what);
      assert.ok(!text.includes(key.split("\n")[1] ?? "-"), `${what} holds no line of the key`);
    }
  });
});
