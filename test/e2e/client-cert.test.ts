// Frontend client certificate validation through a real HAProxy, with throwaway certificates made by
// openssl at test time: a CA and a client certificate it signed, and a client certificate of
// another (self-signed) issuer. The Gateway's default validation is AllowValidOnly; its second port
// uses AllowInsecureFallback (spec.tls.frontend.perPort).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { Harness, selfSignedCert } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, ref, service, tlsSecret } from "./resources.ts";

const execFileAsync = promisify(execFile);

interface KeyPair {
  cert: string;
  key: string;
}

/** A CA and a client certificate it signed (P-256, 2 days). */
async function caAndClient(dir: string): Promise<{ ca: KeyPair; client: KeyPair }> {
  const p = (name: string): string => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await execFileAsync("openssl", [
    "req", "-x509", ...ec, "-days", "2", "-subj", "/CN=client-cert test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
    "-keyout", p("ca.key"), "-out", p("ca.crt"),
  ]); // prettier-ignore
  await execFileAsync("openssl", [
    "req", "-new", ...ec, "-subj", "/CN=good client", "-keyout", p("client.key"), "-out", p("client.csr"),
  ]); // prettier-ignore
  await writeFile(p("client.ext"), "extendedKeyUsage=clientAuth\n");
  await execFileAsync("openssl", [
    "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
    "-CAcreateserial", "-days", "2", "-extfile", p("client.ext"), "-out", p("client.crt"),
  ]); // prettier-ignore
  const read = (name: string): Promise<string> => readFile(p(name), "utf8");
  return {
    ca: { cert: await read("ca.crt"), key: await read("ca.key") },
    client: { cert: await read("client.crt"), key: await read("client.key") },
  };
}

describe("frontend client certificate validation", { concurrency: true }, () => {
  let h: Harness | undefined;
  let dir: string | undefined;
  let server: KeyPair;
  let good: KeyPair;
  let foreign: KeyPair;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-clientcert-"));
    const made = await caAndClient(dir);
    [server, foreign] = await Promise.all([
      selfSignedCert(dir, ["cc.tls.test"]),
      selfSignedCert(dir, ["foreign client"]),
    ]);
    good = made.client;
    h = await Harness.start({
      backends: { echo: "http" },
      ports: 2,
      files: (x) => {
        const gw = gateway("gw", x.ip, [
          { name: "strict", port: x.ports[0] ?? 0, protocol: "HTTPS", certificates: ["server"] },
          { name: "fallback", port: x.ports[1] ?? 0, protocol: "HTTPS", certificates: ["server"] },
        ]);
        const caRefs = [{ group: "", kind: "ConfigMap", name: "client-ca" }];
        (gw["spec"] as Record<string, unknown>)["tls"] = {
          frontend: {
            default: { validation: { caCertificateRefs: caRefs } },
            perPort: [
              {
                port: x.ports[1] ?? 0,
                tls: { validation: { mode: "AllowInsecureFallback", caCertificateRefs: caRefs } },
              },
            ],
          },
        };
        return {
          "gateway.yaml": docs(
            gatewayClass(),
            gw,
            tlsSecret("server", server.cert, server.key),
            {
              apiVersion: "v1",
              kind: "ConfigMap",
              metadata: { name: "client-ca", namespace: NS },
              data: { "ca.crt": made.ca.cert },
            },
            service("echo", { endpoints: [x.backend("echo").endpoint] }),
            httpRoute("secure", { hostnames: ["cc.tls.test"], rules: [{ backendRefs: [ref("echo")] }] }),
          ),
        };
      },
    });
  });
  after(async () => {
    await h?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** GET / with SNI and Host cc.tls.test, presenting `client` (or no certificate): status or error. */
  const get = (port: number, client: KeyPair | undefined): Promise<number | Error> =>
    new Promise((resolve) => {
      const req = request({
        host: h?.ip,
        port,
        path: "/",
        servername: "cc.tls.test",
        headers: { host: "cc.tls.test" },
        ca: server.cert,
        agent: false,
        ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
      });
      req.setTimeout(5000, () => req.destroy(new Error("timeout")));
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", (error) => resolve(error));
      req.end();
    });

  test("AllowValidOnly: only a certificate of the configured CA is accepted", async () => {
    const port = h?.ports[0] ?? 0;
    assert.equal(await get(port, good), 200);
    assert.ok((await get(port, foreign)) instanceof Error, "a certificate of another issuer is refused");
    assert.ok((await get(port, undefined)) instanceof Error, "a client without certificate is refused");
  });

  test("AllowInsecureFallback: valid, invalid and missing certificates are all accepted", async () => {
    const port = h?.ports[1] ?? 0;
    assert.equal(await get(port, good), 200);
    assert.equal(await get(port, foreign), 200);
    assert.equal(await get(port, undefined), 200);
    // The fallback port still asks for a certificate and verifies it, ignoring the errors.
    const config = await readFile(join(h?.stateDir ?? "", "haproxy.cfg"), "utf8");
    assert.match(config, new RegExp(`:${port} ssl crt-list \\S+ ca-ignore-err all crt-ignore-err all`));
  });
});
