// The config stream end to end on loopback, with real HAProxy: a ConfigDistributor and the mTLS
// distribution server in-process (the controller's side), the `gatehouse dataplane` agent
// in-process for Gateway default/gw-a (the pod's side), real echo backends. The Gateway has no
// addresses (as in --infrastructure kubernetes): HAProxy binds all interfaces on a free port.
import assert from "node:assert/strict";
import { connect, type ClientHttp2Session } from "node:http2";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { startAgent, type AgentHandle } from "../../src/dataplane/agent/agent.ts";
import { CertificateAuthority } from "../../src/distribute/ca.ts";
import { FileCAStore } from "../../src/distribute/castore.ts";
import { ConfigDistributor } from "../../src/distribute/distributor.ts";
import { NdjsonDecoder } from "../../src/distribute/ndjson.ts";
import { streamPath } from "../../src/distribute/protocol.ts";
import { startDistributionServer, type DistributionServer } from "../../src/distribute/server.ts";
import { gatewayObjects, irOf, type TestGateway } from "../../src/distribute/testing.ts";
import type { IR } from "../../src/ir/types.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { request } from "./client.ts";
import { startEchoBackend, type EchoBackend } from "./echo.ts";
import { freePort } from "./harness.ts";

const log = createLogger({ level: process.env["GATEHOUSE_E2E_LOG"] === "1" ? "debug" : "silent" });
const GW_A = "default/gw-a";

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("config stream → gatehouse dataplane (real HAProxy)", { timeout: 120_000 }, () => {
  let dir = "";
  let ca: CertificateAuthority;
  let distributor: ConfigDistributor;
  let server: DistributionServer | undefined;
  let serverPort = 0;
  let agent: AgentHandle | undefined;
  const backends: Record<string, EchoBackend> = {};
  let port = 0;
  let gateways: TestGateway[] = [];
  let secretCert: { certPem: string; keyPem: string };
  let reloads = 0;
  // The agent's access log (JSON lines), as a pod's stdout would carry it.
  const accessLines: string[] = [];
  const accessSink = new PassThrough();
  accessSink.on("data", (chunk: Buffer) => accessLines.push(...chunk.toString().split("\n").filter(Boolean)));

  const irWith = (endpointA: string): IR =>
    irOf(gatewayObjects([{ ...(gateways[0] as TestGateway), endpoint: endpointA }, ...gateways.slice(1)]));
  const get = (host = "a.test") => request({ address: "127.0.0.1", port, host, path: "/x", timeoutMs: 3000 });
  const tlsDir = async (name: string, issuer: CertificateAuthority, gw: string): Promise<string> => {
    const d = join(dir, `tls-${name}`);
    await mkdir(d, { recursive: true });
    const [namespace = "", gwName = ""] = gw.split("/");
    const issued = await issuer.issueClient({ namespace, name: gwName });
    await writeFile(join(d, "tls.crt"), issued.certPem);
    await writeFile(join(d, "tls.key"), issued.keyPem, { mode: 0o600 });
    await writeFile(join(d, "ca.crt"), ca.caPem);
    return d;
  };
  const startServer = async (): Promise<void> => {
    server = await startDistributionServer({
      listen: { host: "127.0.0.1", port: serverPort },
      ca,
      distributor,
      serverNames: { dnsNames: ["gatehouse.test"], ipAddresses: ["127.0.0.1"] },
      logger: log,
      heartbeatMs: 300,
      peerTimeoutMs: 1500,
    });
    serverPort = server.address.port;
  };
  const startTheAgent = async (stateDir: string): Promise<AgentHandle> =>
    startAgent({
      controller: `127.0.0.1:${serverPort}`,
      gateway: { namespace: "default", name: "gw-a" },
      tlsDir: join(dir, "tls-a"),
      admin: { host: "127.0.0.1", port: 0 },
      stateDir,
      shutdownDrainMs: 1500,
      logger: log,
      serverSlots: 4,
      spareBackends: 2,
      hardStopAfter: "5s",
      metricsAddress: `127.0.0.1:${await freePort("127.0.0.1")}`,
      pod: "default/gw-a-pod",
      persistedAfterMs: 300,
      backoff: { initialMs: 100, maxMs: 500 },
      heartbeatMs: 300,
      peerTimeoutMs: 1500,
      accessLog: { format: { kind: "json" }, output: { kind: "stdout" }, stdout: accessSink },
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-agent-e2e-"));
    ca = await CertificateAuthority.open(new FileCAStore(join(dir, "ca")));
    for (const name of ["a1", "a2", "b"]) backends[name] = await startEchoBackend(name);
    port = await freePort("0.0.0.0");
    secretCert = await ca.issueServer({ dnsNames: ["s.test"], ipAddresses: [] });
    gateways = [
      { name: "gw-a", port, host: "a.test", endpoint: backends["a1"]?.endpoint ?? "" },
      { name: "gw-b", port: port + 1, host: "b.test", endpoint: backends["b"]?.endpoint ?? "" },
      {
        name: "gw-s",
        port: port + 2,
        host: "s.test",
        endpoint: backends["b"]?.endpoint ?? "",
        tls: secretCert,
      },
    ];
    distributor = new ConfigDistributor({ logger: log });
    distributor.publish(irWith(backends["a1"]?.endpoint ?? ""));
    await startServer();
    await tlsDir("a", ca, GW_A);
    await tlsDir("b", ca, "default/gw-b");
  });
  after(async () => {
    await agent?.stop();
    await server?.close();
    for (const b of Object.values(backends)) await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("the agent applies its Gateway's config and traffic flows; /ready and /metrics answer", async () => {
    const ready0 = Date.now();
    agent = await startTheAgent(join(dir, "state"));
    agent.haproxy.on((e) => {
      if (e.type === "reloaded") reloads++;
    });
    await waitFor("agent ready", () => agent?.ready);
    const res = await waitFor("an answer from a1", async () => {
      const r = await get();
      return r.status === 200 && r.echo?.backend === "a1" ? r : undefined;
    });
    assert.equal(res.status, 200);
    const ready = await fetch(`${agent.adminUrl}/ready`);
    assert.equal(ready.status, 200);
    const metrics = await (await fetch(`${agent.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_dataplane_controller_connected 1/);
    assert.match(metrics, /haproxy_process_/, "HAProxy's exporter is included");
    assert.ok(!metrics.includes("PRIVATE KEY"));
    const state = await waitFor("the pod's report", () => {
      const s = distributor.gateway(GW_A);
      return s.pods[0]?.applied === true ? s : undefined;
    });
    assert.equal(state.pods[0]?.hash, state.hash);
    assert.equal(state.pods[0]?.pod, "default/gw-a-pod");
    assert.equal(agent.appliedHash, state.hash);
    // Per-route metrics on the pod's /metrics, counted by HAProxy, in Gateway API terms.
    const series =
      'gatehouse_route_requests_total{gateway_namespace="default",gateway="gw-a",listener="l",' +
      'route_kind="HTTPRoute",route_namespace="default",route="gw-a-route",rule="0",backend="default/gw-a-svc:80"}';
    const count = async (): Promise<number> => {
      const text = await (await fetch(`${agent?.adminUrl}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    const before = await count();
    for (let i = 0; i < 3; i++) assert.equal((await get()).status, 200);
    assert.equal(await count(), before + 3);
    // The access log names the Gateway, route and rule of each request.
    const logged = await waitFor("the access log of gw-a-route", () =>
      accessLines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e["route"] === "gw-a-route" && e["status"] === 200),
    );
    assert.equal(logged["gateway"], "default/gw-a");
    assert.equal(logged["listener"], "l");
    assert.equal(logged["host"], "a.test");
    // The Gateway B does not get served here: its port is not bound by this pod.
    await assert.rejects(request({ address: "127.0.0.1", port: port + 1, host: "b.test", timeoutMs: 1000 }));
    console.log(`# ready after ${Date.now() - ready0} ms`);
  });

  test("a change propagates with 0 failed requests under steady load", async () => {
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const loops = [0, 1].map(async () => {
      while (running) {
        try {
          const r = await get();
          if (r.status === 200 && (r.echo?.backend === "a1" || r.echo?.backend === "a2")) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          failures.push(String(err));
        }
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const before = distributor.gateway(GW_A).hash;
    assert.deepEqual(distributor.publish(irWith(backends["a2"]?.endpoint ?? "")), [GW_A]);
    await waitFor("answers from a2", async () => ((await get()).echo?.backend === "a2" ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(loops);
    assert.notEqual(distributor.gateway(GW_A).hash, before);
    assert.deepEqual(failures, []);
    assert.ok(ok > 20, `${ok} requests`);
    await waitFor("report of the new hash", () => {
      const s = distributor.gateway(GW_A);
      return s.pods[0]?.hash === s.hash && s.pods[0]?.applied === true ? true : undefined;
    });
  });

  test("controller away: the agent keeps serving; back: re-sync without a reload (same hash)", async () => {
    const hash = distributor.gateway(GW_A).hash;
    const connections = agent?.client.connections ?? 0;
    const reloadsBefore = reloads;
    await server?.close();
    await waitFor("the agent notices", () => (agent?.client.connected === false ? true : undefined));
    for (let i = 0; i < 5; i++) assert.equal((await get()).echo?.backend, "a2");
    assert.equal(agent?.ready, true, "still ready: it serves its last config");
    // A new controller (fresh distributor, same input) on the same port.
    distributor = new ConfigDistributor({ logger: log });
    distributor.publish(irWith(backends["a2"]?.endpoint ?? ""));
    assert.equal(distributor.gateway(GW_A).hash, hash, "the hash is stable across controllers");
    await startServer();
    await waitFor("reconnected", () => ((agent?.client.connections ?? 0) > connections ? true : undefined));
    await waitFor("re-synced", () =>
      distributor.gateway(GW_A).pods[0]?.applied === true ? true : undefined,
    );
    assert.equal(distributor.gateway(GW_A).pods[0]?.hash, hash);
    assert.equal(reloads, reloadsBefore, "no reload");
    const metrics = await (await fetch(`${agent?.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_dataplane_configs_total\{result="unchanged"\} [1-9]/);
  });

  test("Gateway B's certificate cannot get Gateway A's (or S's) config, and B's own never holds S's certificate", async () => {
    const b = await openStream(join(dir, "tls-b"), streamPath({ namespace: "default", name: "gw-a" }));
    assert.equal(b.status, 403);
    b.close();
    const s = await openStream(join(dir, "tls-b"), streamPath({ namespace: "default", name: "gw-s" }));
    assert.equal(s.status, 403);
    s.close();
    const own = await openStream(join(dir, "tls-b"), streamPath({ namespace: "default", name: "gw-b" }));
    assert.equal(own.status, 200);
    const first = (await own.next()) as { type: string; hash: string; ir: IR };
    assert.equal(first.type, "config");
    assert.deepEqual(
      first.ir.gateways.map((g) => g.id),
      ["default/gw-b"],
    );
    const text = JSON.stringify(first.ir);
    assert.ok(
      !text.includes("PRIVATE KEY") && !text.includes("CERTIFICATE"),
      "no certificate or key of another Gateway",
    );
    // A report about a hash this stream was not sent is ignored; the right one is taken.
    own.send({
      type: "report",
      pod: "default/gw-b-pod",
      hash: "f".repeat(64),
      applied: true,
      unavailableListeners: [],
    });
    await waitFor("B named", () =>
      distributor.gateway("default/gw-b").pods[0]?.pod === "default/gw-b-pod" ? true : undefined,
    );
    assert.equal(distributor.gateway("default/gw-b").pods[0]?.hash, "", "the unknown hash was ignored");
    own.send({
      type: "report",
      pod: "default/gw-b-pod",
      hash: first.hash,
      applied: true,
      unavailableListeners: [],
    });
    await waitFor("B's report", () =>
      distributor.gateway("default/gw-b").pods[0]?.hash === first.hash ? true : undefined,
    );
    own.close();
  });

  test("a client certificate from another CA is refused at the TLS handshake", async () => {
    const other = await CertificateAuthority.open(new FileCAStore(join(dir, "other-ca")));
    const d = await tlsDir("rogue", other, GW_A);
    await assert.rejects(openStream(d, streamPath({ namespace: "default", name: "gw-a" })), (err: Error) => {
      assert.doesNotMatch(err.message, /status/);
      return true;
    });
  });

  test("a config HAProxy refuses is reported with HAProxy's message; the old one keeps serving", async () => {
    const served = agent?.appliedHash;
    const ir = irWith(backends["a2"]?.endpoint ?? "");
    const gw = ir.gateways.find((g) => g.id === GW_A);
    assert.ok(gw !== undefined);
    const bogus = "-----BEGIN CERTIFICATE-----\nTUlJQm9ndXM=\n-----END CERTIFICATE-----\n";
    const key = "-----BEGIN PRIVATE KEY-----\nTUlJQm9ndXM=\n-----END PRIVATE KEY-----\n";
    gw.listeners.push({
      id: `${GW_A}/bad`,
      name: "bad",
      port: await freePort("0.0.0.0"),
      protocol: "HTTPS",
      tls: {
        mode: "Terminate",
        certificates: [{ id: "default/bad", certPem: bogus, keyPem: key, dnsNames: ["bad.test"] }],
      },
      virtualHosts: [],
    });
    distributor.publish(ir);
    const report = await waitFor("the refusal", () => {
      const p = distributor.gateway(GW_A).pods[0];
      return p !== undefined && p.hash === distributor.gateway(GW_A).hash && !p.applied ? p : undefined;
    });
    assert.match(report.error ?? "", /HAProxy rejected.*unable to load certificate/);
    assert.ok(!(report.error ?? "").includes("TUlJQm9ndXM="), "no PEM content in the report");
    assert.equal(agent?.appliedHash, served);
    assert.equal((await get()).echo?.backend, "a2");
    // Back to a good config.
    distributor.publish(irWith(backends["a1"]?.endpoint ?? ""));
    await waitFor("a1 again", async () => ((await get()).echo?.backend === "a1" ? true : undefined));
  });

  test("shutdown: /ready is 503 at once while HAProxy still serves, then HAProxy stops", async () => {
    const a = agent;
    assert.ok(a !== undefined);
    const adminUrl = a.adminUrl;
    const done = a.shutdown();
    const ready = await fetch(`${adminUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.equal((await get()).status, 200, "still serving during the drain");
    await done;
    agent = undefined;
    await assert.rejects(request({ address: "127.0.0.1", port, host: "a.test", timeoutMs: 1000 }));
  });

  test("restart while the controller is unreachable: the last applied config is served from the state dir", async () => {
    await server?.close();
    server = undefined;
    agent = await startTheAgent(join(dir, "state"));
    await waitFor("ready from the kept config", () => agent?.ready);
    assert.equal((await get()).echo?.backend, "a1");
    assert.equal(agent.client.connected, false);
  });

  async function openStream(
    tls: string,
    path: string,
  ): Promise<{ status: number; next(): Promise<unknown>; send(v: unknown): void; close(): void }> {
    const { readFile } = await import("node:fs/promises");
    const session: ClientHttp2Session = connect(`https://127.0.0.1:${serverPort}`, {
      cert: await readFile(join(tls, "tls.crt")),
      key: await readFile(join(tls, "tls.key")),
      ca: await readFile(join(tls, "ca.crt")),
    });
    return new Promise((resolve, reject) => {
      session.on("error", reject);
      session.on("close", () => reject(new Error("connection closed before any response")));
      const stream = session.request({ ":method": "POST", ":path": path }, { endStream: false });
      stream.on("error", reject);
      stream.on("close", () => reject(new Error("stream closed before any response")));
      const values: unknown[] = [];
      const waiters: Array<() => void> = [];
      const decoder = new NdjsonDecoder(64 * 1024 * 1024);
      stream.on("data", (chunk: Buffer) => {
        for (const v of decoder.push(chunk))
          if ((v as { type?: string }).type !== "heartbeat") values.push(v);
        for (const w of waiters.splice(0)) w();
      });
      stream.on("response", (headers) =>
        resolve({
          status: Number(headers[":status"]),
          next: async () => {
            while (values.length === 0) await new Promise<void>((r) => waiters.push(r));
            return values.shift();
          },
          send: (v) => void stream.write(`${JSON.stringify(v)}\n`),
          close: () => session.destroy(),
        }),
      );
    });
  }
});
