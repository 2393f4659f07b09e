// Unit tests of what the fake kubelet needs for the Inference Extension suite's Pods: the gRPC
// health check of `grpc` probes (against a real gRPC server, etcd's grpc.health.v1.Health, and a
// minimal HTTP/2 server for the answers etcd never gives), the in-cluster ServiceAccount files
// (automount rules, the private mount namespace bind mount) and the image mappings.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Http2Server } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  decodeHealthCheckResponse,
  encodeHealthCheckRequest,
  grpcHealthCheck,
} from "../../conformance/minicluster/kubelet/grpc-health.ts";
import { BUILTIN_IMAGES, containerArgv, resolveImage } from "../../conformance/minicluster/kubelet/images.ts";
import {
  automountsToken,
  mountedServiceAccountDir,
  SERVICE_ACCOUNT_DIR,
  withBindMount,
  writeServiceAccountFiles,
} from "../../conformance/minicluster/kubelet/serviceaccount.ts";
import { freePort } from "../../conformance/minicluster/net.ts";
import { run } from "../../conformance/minicluster/proc.ts";
import { findControlPlaneBinaries } from "../../src/provider/kubernetes/testing/apiserver.ts";

const tmp = await mkdtemp(join(tmpdir(), "gh-kubelet-inference-test-"));
after(() => rm(tmp, { recursive: true, force: true }));

/** A gRPC response body: one length-prefixed message. */
function frame(payload: number[]): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, Buffer.from(payload)]);
}

describe("gRPC health messages", () => {
  test("HealthCheckRequest: field 1 (string), length-prefixed; empty service is an empty message", () => {
    assert.deepEqual(
      encodeHealthCheckRequest("inference-extension"),
      Buffer.concat([Buffer.from([0, 0, 0, 0, 21, 0x0a, 19]), Buffer.from("inference-extension")]),
    );
    assert.deepEqual(encodeHealthCheckRequest(""), Buffer.from([0, 0, 0, 0, 0]));
    // A 200-byte name needs a two-byte varint length (200 = 0xc8 0x01).
    const long = encodeHealthCheckRequest("x".repeat(200));
    assert.deepEqual([...long.subarray(0, 8)], [0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
  });

  test("HealthCheckResponse: status field, unknown fields skipped, default UNKNOWN, errors", () => {
    assert.equal(decodeHealthCheckResponse(frame([0x08, 0x01])), 1);
    assert.equal(decodeHealthCheckResponse(frame([0x08, 0x02])), 2);
    assert.equal(decodeHealthCheckResponse(frame([])), 0);
    // field 2 (string "ab"), field 3 (varint 300), then status SERVING
    assert.equal(decodeHealthCheckResponse(frame([0x12, 0x02, 0x61, 0x62, 0x18, 0xac, 0x02, 0x08, 0x01])), 1);
    assert.throws(() => decodeHealthCheckResponse(Buffer.from([0, 0, 0])), /no gRPC message/);
    assert.throws(() => decodeHealthCheckResponse(Buffer.from([0, 0, 0, 0, 4, 0x08])), /truncated message/);
    assert.throws(() => decodeHealthCheckResponse(Buffer.from([1, 0, 0, 0, 0])), /compressed/);
    assert.throws(() => decodeHealthCheckResponse(frame([0x12, 0x05, 0x61])), /truncated/);
  });
});

describe("gRPC health check against etcd (a real grpc.health.v1 server)", () => {
  const bins = findControlPlaneBinaries();
  let etcd: ChildProcess | undefined;
  let port = 0;

  before(async () => {
    if ("skip" in bins) return;
    port = await freePort("127.0.0.1");
    const peer = await freePort("127.0.0.1");
    etcd = spawn(
      join(bins.dir, "etcd"),
      [
        "--name=grpc-health-test",
        `--data-dir=${join(tmp, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${port}`,
        `--advertise-client-urls=http://127.0.0.1:${port}`,
        `--listen-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
        `--initial-cluster=grpc-health-test=http://127.0.0.1:${peer}`,
        "--unsafe-no-fsync",
        "--log-level=error",
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 100; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.ok) return;
      } catch {
        // not yet
      }
      await sleep(100);
    }
    throw new Error("etcd did not come up");
  });
  after(() => etcd?.kill("SIGKILL"));

  const skip = "skip" in bins ? bins.skip : false;

  test('the server as a whole (service "") is SERVING', { skip }, async () => {
    assert.deepEqual(await grpcHealthCheck("127.0.0.1", port, "", 2000), { ok: true, status: "SERVING" });
  });

  test("an unknown service fails with the server's gRPC status (NOT_FOUND)", { skip }, async () => {
    const result = await grpcHealthCheck("127.0.0.1", port, "inference-extension", 2000);
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.reason, /^grpc-status 5\b/);
  });

  test("nothing listening: a connection error", async () => {
    const closed = await freePort("127.0.0.1");
    const result = await grpcHealthCheck("127.0.0.1", closed, "", 1000);
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.reason, /ECONNREFUSED/);
  });
});

describe("gRPC health check: answers etcd does not give", () => {
  let server: Http2Server;
  let port = 0;
  const seen: Array<{ path: string; service: string; contentType: string; te: string }> = [];
  let answer: (service: string) => { status?: number; grpcStatus?: string; hang?: boolean } = () => ({});

  before(async () => {
    server = createServer();
    server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        const service = body.subarray(7).toString("utf8");
        seen.push({
          path: String(headers[":path"]),
          service,
          contentType: String(headers["content-type"]),
          te: String(headers["te"]),
        });
        const a = answer(service);
        if (a.hang === true) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": a.grpcStatus ?? "0" }));
        stream.end(a.status !== undefined ? frame([0x08, a.status]) : Buffer.alloc(0));
      });
    });
    port = await freePort("127.0.0.1");
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  });
  after(() => {
    server.close();
  });

  test("the request: path, content type, te: trailers, the probe's service name", async () => {
    answer = () => ({ status: 1 });
    assert.deepEqual(await grpcHealthCheck("127.0.0.1", port, "inference-extension", 1000), {
      ok: true,
      status: "SERVING",
    });
    assert.deepEqual(seen.at(-1), {
      path: "/grpc.health.v1.Health/Check",
      service: "inference-extension",
      contentType: "application/grpc",
      te: "trailers",
    });
  });

  test("NOT_SERVING, an empty answer (UNKNOWN) and a missing message fail", async () => {
    answer = () => ({ status: 2 });
    assert.deepEqual(await grpcHealthCheck("127.0.0.1", port, "x", 1000), {
      ok: false,
      reason: "NOT_SERVING",
      status: "NOT_SERVING",
    });
    answer = () => ({ status: 0 });
    assert.equal((await grpcHealthCheck("127.0.0.1", port, "x", 1000)).ok, false);
    answer = () => ({});
    const missing = await grpcHealthCheck("127.0.0.1", port, "x", 1000);
    assert.match(missing.ok ? "" : missing.reason, /bad HealthCheckResponse/);
  });

  test("a non-zero grpc-status fails even with a SERVING message; a silent server times out", async () => {
    answer = () => ({ status: 1, grpcStatus: "14" });
    const unavailable = await grpcHealthCheck("127.0.0.1", port, "x", 1000);
    assert.match(unavailable.ok ? "" : unavailable.reason, /^grpc-status 14/);
    answer = () => ({ hang: true });
    const started = Date.now();
    const hung = await grpcHealthCheck("127.0.0.1", port, "x", 300);
    assert.match(hung.ok ? "" : hung.reason, /timeout after 300 ms/);
    assert.ok(Date.now() - started < 2000);
  });
});

describe("in-cluster ServiceAccount files", () => {
  test("automount: the Pod's field, else the ServiceAccount's, else on", () => {
    const spec = { containers: [] };
    assert.equal(automountsToken(spec, undefined), true);
    assert.equal(automountsToken(spec, {}), true);
    assert.equal(automountsToken(spec, { automountServiceAccountToken: false }), false);
    assert.equal(
      automountsToken(
        { ...spec, automountServiceAccountToken: true },
        { automountServiceAccountToken: false },
      ),
      true,
    );
    assert.equal(automountsToken({ ...spec, automountServiceAccountToken: false }, {}), false);
  });

  test("the volume mounted at the ServiceAccount path is the source", () => {
    const mounts = new Map([
      [SERVICE_ACCOUNT_DIR, "/pods/x/volumes/kube-api-access-abcde"],
      ["/etc/config", "/pods/x/volumes/config"],
    ]);
    assert.equal(mountedServiceAccountDir(mounts), "/pods/x/volumes/kube-api-access-abcde");
    assert.equal(mountedServiceAccountDir(new Map([["/etc/config", "/c"]])), undefined);
  });

  test(
    "a program in the private mount namespace reads the files at the in-cluster path",
    { skip: process.getuid?.() === 0 ? false : "needs root (mount namespaces)" },
    async () => {
      const dir = join(tmp, "sa");
      await writeServiceAccountFiles(dir, { token: "tok-123", caCert: "CA PEM\n", namespace: "ns1" });
      assert.equal(await readFile(join(dir, "namespace"), "utf8"), "ns1");
      const script = join(tmp, "read.sh");
      await writeFile(
        script,
        `cat ${SERVICE_ACCOUNT_DIR}/token ${SERVICE_ACCOUNT_DIR}/namespace; echo; touch ${SERVICE_ACCOUNT_DIR}/x 2>/dev/null && echo writable || echo read-only\n`,
      );
      const argv = withBindMount(["/bin/sh", script], dir);
      const out = await run(argv[0] ?? "", argv.slice(1), { timeoutMs: 10_000 });
      assert.equal(out, "tok-123ns1\nread-only\n");
      // The mount stays inside the namespace: the host's directory is still empty.
      const host = await run("ls", ["-A", SERVICE_ACCOUNT_DIR]);
      assert.equal(host, "");
    },
  );
});

describe("the suite's images", () => {
  const binaries = { "echo-basic": "/bin/echo-basic", lwepp: "/bin/lwepp", coredns: "/bin/coredns" };

  test("lwepp and the suite's echo-basic tag map to the built binaries", () => {
    const lwepp = resolveImage(
      "registry.k8s.io/gateway-api-inference-extension/lwepp:v1.6.0",
      BUILTIN_IMAGES,
      binaries,
    );
    assert.ok(lwepp.ok);
    assert.equal(lwepp.ok && lwepp.binary, "/bin/lwepp");
    const echo = resolveImage(
      "gcr.io/k8s-staging-gateway-api/echo-basic:v20251106-v1.3.0-263-g47c3435c",
      BUILTIN_IMAGES,
      binaries,
    );
    assert.equal(echo.ok && echo.binary, "/bin/echo-basic");
    const missing = resolveImage(
      "registry.k8s.io/gateway-api-inference-extension/lwepp:v1.6.0",
      BUILTIN_IMAGES,
      {},
    );
    assert.match(missing.ok ? "" : missing.message, /maps to "lwepp", which is not built/);
    assert.equal(
      resolveImage("registry.k8s.io/gateway-api-inference-extension/epp:v1.6.0", BUILTIN_IMAGES, binaries).ok,
      false,
    );
  });

  test("lwepp gets the manifest's args", () => {
    const args = [
      "--pool-name",
      "primary-inference-pool",
      "--grpc-port",
      "9002",
      "--grpc-health-port",
      "9003",
    ];
    assert.deepEqual(containerArgv("/bin/lwepp", undefined, args), {
      ok: true,
      argv: ["/bin/lwepp", ...args],
    });
  });
});
