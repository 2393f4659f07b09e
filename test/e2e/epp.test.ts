// InferencePool endpoint picker (Gateway API Inference Extension v1.6.0) end to end: a real HAProxy
// in `serve` mode, model servers on loopback addresses, and the REAL reference picker `lwepp`
// (built by conformance/scripts/build.sh, the same binary the conformance suite deploys), which
// watches its InferencePool and Pods on a real kube-apiserver (src/provider/kubernetes/testing).
// lwepp serves ext_proc over TLS with a self-signed certificate; it honours the conformance header
// `test-epp-endpoint-selection` (the candidates it may pick from), and answers the response phase with
// `x-conformance-test-served-endpoint` from the served-endpoint metadata. A second picker written
// here (h2c) answers every request with an immediate response, which lwepp never does.
//
// This test does not skip: without lwepp, kube-apiserver or etcd it fails, naming the build script.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createH2Server, type Http2Server } from "node:http2";
import { createServer as createNetServer, connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  BUILD_SCRIPT,
  findControlPlaneBinaries,
  startTestApiServer,
  type TestApiServer,
} from "../../src/provider/kubernetes/testing/apiserver.ts";
import {
  Deframer,
  decodeProcessingRequest,
  encodeProcessingResponse,
  frame,
} from "../../src/dataplane/epp/extproc.ts";
import { useHarness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, NS, service, type Obj } from "./resources.ts";

const SELECT = "test-epp-endpoint-selection";
const SERVED = "x-conformance-test-served-endpoint";
const PODS = ["model-0", "model-1", "model-2"] as const;
const BODY = JSON.stringify({
  model: "conformance-fake-model",
  prompt: "Write as if you were a critic: San Francisco",
});

interface ModelReply {
  pod: string;
  port: number;
  headers: Record<string, string | string[] | undefined>;
  bodyLength: number;
  body: string;
}

const models: { port: number; ips: string[]; servers: Server[] } = { port: 0, ips: [], servers: [] };
let apiserver: TestApiServer | undefined;
let lwepp: ChildProcess | undefined;
const lweppLog: string[] = [];
let grpcPort = 0;
/**
 * A second picker, written here, over h2c: it sheds every request (immediate_response 429), which
 * lwepp never does.
 */
let shedder: Http2Server | undefined;
let shedPort = 0;

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function listen(server: Server, port: number, ip: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, ip, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** A model server: answers with its Pod's name, the request headers and the body it received. */
function modelServer(pod: string): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const reply: ModelReply = {
        pod,
        port: (req.socket.address() as AddressInfo).port,
        headers: req.headers,
        bodyLength: body.length,
        body: body.subarray(0, 256).toString("utf8"),
      };
      res.writeHead(200, { "content-type": "application/json", "x-backend": pod }).end(JSON.stringify(reply));
    });
  });
}

function lweppBinary(): string {
  const bins = findControlPlaneBinaries();
  if ("skip" in bins) throw new Error(`${bins.skip}; also lwepp: bash ${BUILD_SCRIPT} lwepp`);
  const path = join(bins.dir, "lwepp");
  if (!existsSync(path))
    throw new Error(`lwepp not found in ${bins.dir}: build it with bash ${BUILD_SCRIPT} lwepp`);
  return path;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${lweppLog.slice(-30).join("")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });

before(async () => {
  const binary = lweppBinary();
  // Model servers: one port number, one random 127/8 address per Pod.
  for (let attempt = 0; attempt < 20 && models.servers.length < PODS.length; attempt++) {
    for (const s of models.servers.splice(0)) s.close();
    models.ips = [];
    const base = `127.${10 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}`;
    try {
      for (const [i, pod] of PODS.entries()) {
        const ip = `${base}.${i + 1}`;
        const server = modelServer(pod);
        models.servers.push(server);
        models.port = await listen(server, i === 0 ? 0 : models.port, ip);
        models.ips.push(ip);
      }
    } catch {
      // That port is taken on one of the addresses: try others.
    }
  }
  assert.equal(models.servers.length, PODS.length, "model servers could not bind");

  // The API server lwepp watches: the pool and its Pods, Ready at the model servers' addresses.
  const srv = await startTestApiServer();
  apiserver = srv;
  await srv.apply([
    // No controller-manager here: the ServiceAccount admission wants the namespace's default one.
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: NS } },
    poolObject("llm", "FailClose"),
  ]);
  for (const [i, name] of PODS.entries()) {
    await srv.apply([
      {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: NS, labels: { app: "model" } },
        spec: { automountServiceAccountToken: false, containers: [{ name: "model", image: "model-server" }] },
      },
    ]);
    const path = `/api/v1/namespaces/${NS}/pods/${name}`;
    const stored = await srv.admin.request<Record<string, unknown>>("GET", path);
    await srv.admin.request("PUT", `${path}/status`, {
      ...stored,
      status: {
        phase: "Running",
        podIP: models.ips[i],
        podIPs: [{ ip: models.ips[i] }],
        conditions: [{ type: "Ready", status: "True" }],
      },
    });
  }
  grpcPort = await freePort();
  const kubeconfig = await srv.writeKubeconfig();
  lwepp = spawn(
    binary,
    [
      `--kubeconfig=${kubeconfig}`,
      "--pool-name=llm",
      `--pool-namespace=${NS}`,
      `--grpc-port=${grpcPort}`,
      `--grpc-health-port=${await freePort()}`,
      `--metrics-port=${await freePort()}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const keep = (c: Buffer): void => {
    lweppLog.push(c.toString());
    if (lweppLog.length > 200) lweppLog.shift();
  };
  lwepp.stdout?.on("data", keep);
  lwepp.stderr?.on("data", keep);
  await waitFor("lwepp's ext_proc port", () => accepts(grpcPort));

  const h2 = createH2Server();
  shedder = h2;
  h2.on("stream", (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
    s.on("error", () => undefined);
    const deframer = new Deframer();
    s.on("data", (chunk: Buffer) => {
      for (const m of deframer.push(chunk)) {
        if (decodeProcessingRequest(m).kind !== "requestHeaders") continue;
        const body = Buffer.from("shed by the picker\n");
        s.end(
          frame(
            encodeProcessingResponse({
              kind: "immediate",
              status: 429,
              headers: { set: [{ name: "Retry-After", value: "7", action: "set" }], remove: [] },
              body,
              details: "",
            }),
          ),
        );
      }
    });
  });
  await new Promise<void>((r) => h2.listen(0, "127.0.0.1", () => r()));
  shedPort = (h2.address() as AddressInfo).port;
});

after(async () => {
  if (lwepp !== undefined && lwepp.exitCode === null) {
    const exited = new Promise<void>((r) => lwepp?.once("exit", () => r()));
    lwepp.kill("SIGTERM");
    await exited;
  }
  await apiserver?.stop();
  await new Promise<void>((r) => (shedder === undefined ? r() : shedder.close(() => r())));
  for (const s of models.servers) s.close();
});

function poolObject(name: string, failureMode: "FailOpen" | "FailClose", picker = "epp"): Obj {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name, namespace: NS },
    spec: {
      selector: { matchLabels: { app: "model" } },
      targetPorts: [{ number: models.port }],
      endpointPickerRef: { name: picker, port: { number: 9002 }, failureMode },
    },
  };
}

function poolFiles(): string {
  return docs(
    poolObject("llm", "FailClose"),
    poolObject("llm-open", "FailOpen"),
    poolObject("shed", "FailOpen", "shedder"),
    // The shedding picker serves cleartext HTTP/2: the Service port says so.
    service("shedder", {
      port: 9002,
      endpoints: [`127.0.0.1:${shedPort}`],
      appProtocol: "kubernetes.io/h2c",
    }),
    // The picker's Service: its endpoint is lwepp's ext_proc port (TLS, the default appProtocol).
    service("epp", { port: 9002, endpoints: [`127.0.0.1:${grpcPort}`] }),
    ...PODS.map((name, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: NS, labels: { app: "model" } },
      status: { phase: "Running", podIP: models.ips[i], conditions: [{ type: "Ready", status: "True" }] },
    })),
  );
}

// The harness's hooks may run before this file's: the pools (which need lwepp's port and the model
// servers' addresses) are written in the suite's own before hook.
const harness = useHarness({
  files: (h) => ({
    "gateway.yaml": docs(gatewayClass(), gateway("gw", h.ip, [{ name: "http", port: h.port }])),
    "routes.yaml": docs(
      httpRoute("llm", {
        hostnames: ["llm.test"],
        rules: [
          { backendRefs: [{ group: "inference.networking.k8s.io", kind: "InferencePool", name: "llm" }] },
        ],
      }),
      httpRoute("shed", {
        hostnames: ["shed.test"],
        rules: [
          { backendRefs: [{ group: "inference.networking.k8s.io", kind: "InferencePool", name: "shed" }] },
        ],
      }),
      httpRoute("llm-open", {
        hostnames: ["open.test"],
        rules: [
          {
            backendRefs: [{ group: "inference.networking.k8s.io", kind: "InferencePool", name: "llm-open" }],
          },
        ],
      }),
    ),
  }),
});

async function completion(
  host: string,
  headers: Record<string, string>,
  body = BODY,
): Promise<{ status: number; served: unknown; reply: ModelReply | undefined; text: string }> {
  const res = await harness().get("/v1/completions", {
    host,
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  const reply = res.status === 200 ? (JSON.parse(res.body) as ModelReply) : undefined;
  return { status: res.status, served: res.headers[SERVED], reply, text: res.body };
}

describe("InferencePool endpoint picker (the real lwepp)", () => {
  before(async () => {
    const applied = await harness().write({ "pools.yaml": poolFiles() });
    assert.equal(applied.result, "success");
  });

  test("the picker's choice is honoured, for every Pod, with a JSON body", async () => {
    // lwepp learns its Pods from the API server: wait until it routes the first one.
    await waitFor("lwepp routing to model-0", async () => {
      const r = await completion("llm.test", { [SELECT]: models.ips[0] ?? "" });
      return r.reply?.pod === "model-0";
    });
    for (const [i, pod] of PODS.entries()) {
      for (let n = 0; n < 5; n++) {
        const r = await completion("llm.test", { [SELECT]: models.ips[i] ?? "" });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.reply?.pod, pod);
        // The body went through whole, and the picker's header mutations reached the model server.
        assert.equal(r.reply?.bodyLength, Buffer.byteLength(BODY));
        assert.equal(r.reply?.headers["x-gateway-destination-endpoint"], `${models.ips[i]}:${models.port}`);
      }
    }
  });

  test("a choice among two Pods stays within them", async () => {
    const seen = new Set<string>();
    for (let n = 0; n < 12; n++) {
      const r = await completion("llm.test", { [SELECT]: `${models.ips[0]},${models.ips[1]}` });
      assert.equal(r.status, 200, r.text);
      seen.add(r.reply?.pod ?? "");
    }
    assert.deepEqual([...seen].sort(), ["model-0", "model-1"]);
  });

  test("the served endpoint goes back to the picker, whose response header says it", async () => {
    const r = await completion("llm.test", { [SELECT]: models.ips[2] ?? "" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.served, `${models.ips[2]}:${models.port}`);
  });

  test("a larger body (64 KiB, beyond HAProxy's buffer) still reaches the model server whole", async () => {
    const big = JSON.stringify({ model: "conformance-fake-model", prompt: "x".repeat(64 * 1024) });
    const r = await completion("llm.test", { [SELECT]: models.ips[1] ?? "" }, big);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.reply?.pod, "model-1");
    assert.equal(r.reply?.bodyLength, Buffer.byteLength(big));
  });

  test("the picker failing the request (no candidate): FailClose answers 503, FailOpen balances", async () => {
    // An address of no Pod: lwepp has no candidate and ends the stream with an error.
    const close = await completion("llm.test", { [SELECT]: "192.0.2.1" });
    assert.equal(close.status, 503);
    const open = await completion("open.test", { [SELECT]: "192.0.2.1" });
    assert.equal(open.status, 200, open.text);
    assert.ok(PODS.includes(open.reply?.pod as (typeof PODS)[number]));
  });

  test("an immediate response of the picker (429, over h2c) is the client's answer", async () => {
    const res = await harness().get("/v1/completions", {
      host: "shed.test",
      method: "POST",
      headers: { "content-type": "application/json" },
      body: BODY,
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers["retry-after"], "7");
    assert.equal(res.body, "shed by the picker\n");
  });

  test("the picker stopped: FailOpen balances over the ready endpoints, FailClose answers 503", async () => {
    const proc = lwepp;
    assert.ok(proc !== undefined && proc.exitCode === null, "lwepp is running");
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    await exited;
    const seen = new Set<string>();
    for (let n = 0; n < 9; n++) {
      const r = await completion("open.test", { [SELECT]: models.ips[0] ?? "" });
      assert.equal(r.status, 200, r.text);
      seen.add(r.reply?.pod ?? "");
      assert.equal(r.served, undefined);
    }
    // HAProxy's own balancing: not only the Pod the header asked for.
    assert.ok(seen.size > 1, JSON.stringify([...seen]));
    const close = await completion("llm.test", { [SELECT]: models.ips[0] ?? "" });
    assert.equal(close.status, 503);
  });
});
