// BackendTLSPolicy through a real HAProxy: a TLS backend (node:https, a throwaway self-signed
// certificate for backend.tls.test, which is its own CA) behind Services with policies. HAProxy must
// send the policy's hostname as SNI and verify the certificate against it with the policy's CA;
// anything that does not verify, and a policy without a valid CA, answers 5xx without reaching it.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { TLSSocket } from "node:tls";
import { Harness, selfSignedCert } from "./harness.ts";
import { startTLSBackend, type TLSBackend } from "./tls-backend.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, prefix, ref, service, type Obj } from "./resources.ts";

function configMap(name: string, data: Record<string, string>): Obj {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: NS }, data };
}

function policy(name: string, target: string, hostname: string, caConfigMap: string): Obj {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "BackendTLSPolicy",
    metadata: { name, namespace: NS },
    spec: {
      targetRefs: [{ group: "", kind: "Service", name: target }],
      validation: { hostname, caCertificateRefs: [{ group: "", kind: "ConfigMap", name: caConfigMap }] },
    },
  };
}

describe("BackendTLSPolicy", { concurrency: false }, () => {
  let h: Harness | undefined;
  let server: TLSBackend | undefined;
  let dir: string | undefined;
  /** SNI of each TLS request the backend answered, in order. */
  const seen: string[] = [];
  let ca = "";
  let otherCa = "";
  let endpoint = "";

  const files = (caData: string): Record<string, string> => ({
    "all.yaml": docs(
      gatewayClass(),
      gateway("gw", h?.ip ?? "127.0.0.1", [{ name: "http", port: h?.ports[0] ?? 0, protocol: "HTTP" }]),
      configMap("backend-ca", { "ca.crt": caData }),
      configMap("other-ca", { "ca.crt": otherCa }),
      ...["good", "host-mismatch", "wrong-ca", "missing-ca"].map((s) =>
        service(s, { endpoints: [endpoint] }),
      ),
      policy("good", "good", "backend.tls.test", "backend-ca"),
      policy("host-mismatch", "host-mismatch", "other.tls.test", "backend-ca"),
      policy("wrong-ca", "wrong-ca", "backend.tls.test", "other-ca"),
      policy("missing-ca", "missing-ca", "backend.tls.test", "nowhere"),
      httpRoute("r", {
        rules: ["good", "host-mismatch", "wrong-ca", "missing-ca"].map((s) => ({
          matches: [prefix(`/${s}`)],
          backendRefs: [ref(s)],
        })),
      }),
    ),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-btls-"));
    // Same name, another key (selfSignedCert names its files after the first name: two directories).
    await mkdir(join(dir, "other"));
    const [mine, other] = await Promise.all([
      selfSignedCert(dir, ["backend.tls.test"]),
      selfSignedCert(join(dir, "other"), ["backend.tls.test"]),
    ]);
    assert.notEqual(mine.cert, other.cert);
    ca = mine.cert;
    otherCa = other.cert;
    server = await startTLSBackend({ cert: mine.cert, key: mine.key }, (req, res) => {
      seen.push(req.socket instanceof TLSSocket ? String(req.socket.servername) : "");
      res.writeHead(200, { "content-type": "text/plain", "x-backend": "tls" });
      res.end("tls backend");
    });
    endpoint = server.endpoint;
    h = await Harness.start({ ports: 1, files: () => ({}) });
    await h.write(files(ca));
  });
  after(async () => {
    await h?.close();
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    if (h === undefined) throw new Error("no harness");
    return h.get(path, { host: "app.test" });
  };

  test("a valid policy: TLS to the backend with the hostname as SNI", async () => {
    const before = seen.length;
    const res = await get("/good");
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-backend"], "tls");
    assert.deepEqual(seen.slice(before), ["backend.tls.test"]);
  });

  test("a certificate that does not match the hostname, or another CA: 5xx, nothing answered", async () => {
    const before = seen.length;
    for (const path of ["/host-mismatch", "/wrong-ca"]) {
      const res = await get(path);
      assert.ok(res.status >= 500 && res.status < 600, `${path}: ${res.status}`);
    }
    assert.equal(seen.length, before);
  });

  test("a policy without a valid CA fails its requests; its status says why", async () => {
    if (h === undefined) throw new Error("no harness");
    const res = await get("/missing-ca");
    assert.equal(res.status, 500);
    const status = await h.status();
    const text = JSON.stringify(status);
    assert.match(text, /NoValidCACertificate/);
    assert.match(text, /ConfigMap default\/nowhere not found/);
  });

  test("a CA ConfigMap emptied and restored: requests fail, then succeed again", async () => {
    if (h === undefined) throw new Error("no harness");
    await h.write(files(""));
    assert.equal((await get("/good")).status, 500);
    await h.write(files(ca));
    assert.equal((await get("/good")).status, 200);
  });
});
