// HTTPS listeners through a real HAProxy, with throwaway certificates made by openssl at test time:
// one listener holding two certificates picked by SNI, and two listeners on one port each with its
// own hostname and certificate.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect } from "node:tls";
import { Harness, selfSignedCert } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, tlsSecret } from "./resources.ts";

describe("HTTPS", { concurrency: true }, () => {
  let h: Harness | undefined;
  let certs: Record<"one" | "two" | "three", { cert: string; key: string }>;
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-certs-"));
    const [one, two, three] = await Promise.all([
      selfSignedCert(dir, ["one.tls.test"]),
      selfSignedCert(dir, ["two.tls.test", "*.two.tls.test"]),
      selfSignedCert(dir, ["three.tls.test"]),
    ]);
    certs = { one, two, three };
    h = await Harness.start({
      backends: { echo: "http" },
      ports: 2,
      files: (x) => ({
        "gateway.yaml": docs(
          gatewayClass(),
          gateway("gw", x.ip, [
            { name: "multi", port: x.ports[0] ?? 0, protocol: "HTTPS", certificates: ["one", "two"] },
            {
              name: "by-host-two",
              port: x.ports[1] ?? 0,
              protocol: "HTTPS",
              hostname: "two.tls.test",
              certificates: ["two"],
            },
            {
              name: "by-host-three",
              port: x.ports[1] ?? 0,
              protocol: "HTTPS",
              hostname: "three.tls.test",
              certificates: ["three"],
            },
          ]),
          tlsSecret("one", one.cert, one.key),
          tlsSecret("two", two.cert, two.key),
          tlsSecret("three", three.cert, three.key),
          service("echo", { endpoints: [x.backend("echo").endpoint] }),
          httpRoute("secure", {
            hostnames: ["one.tls.test", "two.tls.test", "x.two.tls.test", "three.tls.test"],
            rules: [{ backendRefs: [ref("echo")] }],
          }),
        ),
      }),
    });
  });
  after(async () => {
    await h?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const get = async (port: number, sni: string, host = sni) => {
    if (h === undefined) throw new Error("no harness");
    const ca = [certs.one.cert, certs.two.cert, certs.three.cert];
    return h.get("/", { port, host, tls: { servername: sni, ca } });
  };

  test("one listener, two certificates: the SNI picks the certificate", async () => {
    const port = h?.ports[0] ?? 0;
    const one = await get(port, "one.tls.test");
    assert.equal(one.status, 200);
    assert.equal(one.peerCN, "one.tls.test");
    assert.equal(one.echo?.backend, "echo");
    const two = await get(port, "two.tls.test");
    assert.equal(two.status, 200);
    assert.equal(two.peerCN, "two.tls.test");
    const wild = await get(port, "x.two.tls.test");
    assert.equal(wild.status, 200);
    assert.equal(wild.peerCN, "two.tls.test");
    // A lone catch-all HTTPS listener with plain routes routes fast (src/.../render/fast.ts).
    const config = await readFile(join(h?.stateDir ?? "", "haproxy.cfg"), "utf8");
    const multi = config.split("\n\n").find((s) => s.includes("# listener default/gw/multi "));
    assert.ok(multi?.includes("# fast routing"), multi);
  });

  test("one listener: an unknown SNI gets the first (default) certificate", async () => {
    const port = h?.ports[0] ?? 0;
    const cn = await new Promise<unknown>((resolve, reject) => {
      const socket = connect({
        host: h?.ip,
        port,
        servername: "unknown.tls.test",
        rejectUnauthorized: false,
      });
      socket.on("secureConnect", () => {
        resolve(socket.getPeerCertificate().subject.CN);
        socket.destroy();
      });
      socket.on("error", reject);
    });
    assert.equal(cn, "one.tls.test");
  });

  test("two listeners on one port, each with its hostname and certificate", async () => {
    const port = h?.ports[1] ?? 0;
    const two = await get(port, "two.tls.test");
    assert.equal(two.status, 200);
    assert.equal(two.peerCN, "two.tls.test");
    const three = await get(port, "three.tls.test");
    assert.equal(three.status, 200);
    assert.equal(three.peerCN, "three.tls.test");
  });

  test("a Host that belongs to another listener than the SNI is refused (421)", async () => {
    const res = await get(h?.ports[1] ?? 0, "two.tls.test", "three.tls.test");
    assert.equal(res.status, 421);
  });
});
