// Smoke test of the OCI image (`npm run image:smoke`, after `npm run image`; root, runc and umoci
// needed). Not part of `npm test`: CI runs it after building the image.
//
// Unpacks dist/gatehouse.oci.tar into a runtime bundle with umoci, then runs it under runc the way
// a restrictive Kubernetes pod would: uid 65532, read-only root filesystem, no capabilities at all,
// no_new_privs, state in a tmpfs volume. It checks `gatehouse --version`, that the image's HAProxy
// is the one the tests run against, and `gatehouse serve` on a one-route config mounted read-only:
// the container gets a network namespace of its own (a veth pair to the host), listens on port 80
// through the net.ipv4.ip_unprivileged_port_start sysctl (no capability), and curl on the host
// gets a 200 from a backend on the host side of the veth through it. Everything it makes (netns,
// veth, containers, bundle) is removed, also on failure.
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const ROOT = resolve(import.meta.dirname, "../..");
const ARCHIVE = process.env.GATEHOUSE_IMAGE ?? join(ROOT, "dist", "gatehouse.oci.tar");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const UID = 65532;
const ID = `ghsmoke${process.pid}`;
const NETNS = `ghsmoke-${process.pid}`;
const VETH_HOST = `ghs${process.pid}h`.slice(0, 15);
const VETH_CONT = `ghs${process.pid}c`.slice(0, 15);
// A /30 per run, from a range nothing else on this machine uses (the minicluster takes
// 10.244-10.246, the host infrastructure's default pool 10.200).
const NET = `10.253.${process.pid % 250}`;
const HOST_IP = `${NET}.1`;
const CONT_IP = `${NET}.2`;

function sh(file: string, args: readonly string[]): string {
  return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}
function quiet(file: string, args: readonly string[]): void {
  spawnSync(file, args, { stdio: "ignore" });
}

interface OciSpec {
  process: {
    terminal: boolean;
    args: string[];
    user: { uid: number; gid: number };
    capabilities?: Record<string, string[]>;
    noNewPrivileges?: boolean;
  };
  root: { path: string; readonly?: boolean };
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { namespaces: { type: string; path?: string }[]; sysctl?: Record<string, string> };
}

let work = "";
let bundle = "";
let baseSpec: OciSpec;
const containers = new Set<string>();

/** Writes the bundle's config.json for `args` and returns the container id. */
function configure(name: string, args: readonly string[], network: boolean): string {
  const spec = structuredClone(baseSpec);
  spec.process.terminal = false;
  spec.process.args = [...args];
  assert.deepEqual(spec.process.user, { uid: UID, gid: UID }, "the image runs as 65532:65532");
  spec.process.capabilities = { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] };
  spec.process.noNewPrivileges = true;
  spec.root.readonly = true;
  spec.mounts = spec.mounts.filter((mount) => mount.destination !== "/var/lib/gatehouse");
  spec.mounts.push(
    {
      destination: "/var/lib/gatehouse",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "noexec", "mode=0700", `uid=${UID}`, `gid=${UID}`, "size=64m"],
    },
    { destination: "/config", type: "bind", source: join(work, "config"), options: ["rbind", "ro"] },
  );
  if (network) {
    spec.linux.namespaces = spec.linux.namespaces.map((ns) =>
      ns.type === "network" ? { type: "network", path: `/var/run/netns/${NETNS}` } : ns,
    );
    spec.linux.sysctl = { "net.ipv4.ip_unprivileged_port_start": "0" };
  }
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec, null, 2));
  return `${ID}-${name}`;
}

/** Runs a container to completion and returns its stdout. */
function runToEnd(name: string, args: readonly string[]): string {
  const id = configure(name, args, false);
  containers.add(id);
  const result = spawnSync("runc", ["run", "--bundle", bundle, id], { encoding: "utf8", timeout: 60_000 });
  containers.delete(id);
  assert.equal(result.status, 0, `runc run ${args.join(" ")}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((done) => setTimeout(done, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** curl, asynchronously: the backend answering it runs in this process. */
async function curl(args: readonly string[]): Promise<{ code: string; body: string }> {
  const { stdout: text } = await execFileAsync(
    "curl",
    ["-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", ...args],
    {
      encoding: "utf8",
    },
  ).catch((error: unknown) => ({ stdout: (error as { stdout?: string }).stdout ?? "" }));
  const cut = text.lastIndexOf("\n");
  return { body: text.slice(0, cut), code: text.slice(cut + 1) };
}

const skip = (() => {
  if (process.getuid?.() !== 0) return "needs root (runc, network namespaces)";
  for (const tool of ["runc", "umoci", "ip", "curl"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  if (!existsSync(ARCHIVE)) return `${ARCHIVE} is missing: run npm run image first`;
  return false;
})();
if (skip !== false && process.env.CI === "true")
  throw new Error(`image smoke test cannot run in CI: ${skip}`);

void describe("OCI image under runc", { skip }, () => {
  before(() => {
    work = mkdtempSync(join(tmpdir(), "gatehouse-image-smoke-"));
    const layout = join(work, "layout");
    mkdirSync(layout);
    sh("tar", ["-xf", ARCHIVE, "-C", layout]);
    const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    const ref = index.manifests[0]?.annotations?.["org.opencontainers.image.ref.name"];
    assert.equal(ref, `gatehouse:${VERSION}`, "index.json names the image gatehouse:<version>");
    bundle = join(work, "bundle");
    sh("umoci", ["unpack", "--image", `${layout}:${ref}`, bundle]);
    baseSpec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8")) as OciSpec;
    mkdirSync(join(work, "config"));
  });

  after(() => {
    for (const id of containers) {
      quiet("runc", ["kill", id, "KILL"]);
      quiet("runc", ["delete", "--force", id]);
    }
    quiet("ip", ["link", "del", VETH_HOST]);
    quiet("ip", ["netns", "del", NETNS]);
    if (work !== "") rmSync(work, { recursive: true, force: true });
  });

  void test("gatehouse --version", () => {
    assert.equal(runToEnd("version", ["/usr/local/bin/gatehouse", "--version"]), `gatehouse ${VERSION}\n`);
  });

  void test("the image's HAProxy is the tests' HAProxy", () => {
    const firstLine = (text: string): string => text.split("\n")[0] ?? "";
    const inImage = firstLine(runToEnd("haproxy", ["/usr/sbin/haproxy", "-v"]));
    assert.match(inImage, /^HAProxy version 2\.6\./);
    const onHost = spawnSync("haproxy", ["-v"], { encoding: "utf8" });
    if (onHost.status === 0) assert.equal(inImage, firstLine(onHost.stdout));
  });

  void test("gatehouse serve routes a request to a backend", async (t) => {
    // The backend, on the host side of the veth.
    const backend: Server = createServer((request, response) => {
      response.writeHead(200, { "content-type": "text/plain" });
      response.end(`backend saw ${request.headers.host ?? ""} ${request.url ?? ""}\n`);
    });
    t.after(() => void backend.close());

    quiet("ip", ["netns", "del", NETNS]);
    sh("ip", ["netns", "add", NETNS]);
    sh("ip", ["link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_CONT]);
    sh("ip", ["link", "set", VETH_CONT, "netns", NETNS]);
    sh("ip", ["addr", "add", `${HOST_IP}/30`, "dev", VETH_HOST]);
    sh("ip", ["link", "set", VETH_HOST, "up"]);
    sh("ip", ["-n", NETNS, "addr", "add", `${CONT_IP}/30`, "dev", VETH_CONT]);
    sh("ip", ["-n", NETNS, "link", "set", VETH_CONT, "up"]);
    sh("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
    await new Promise<void>((done) => backend.listen(0, HOST_IP, done));
    const address = backend.address();
    assert.ok(address !== null && typeof address === "object");

    writeFileSync(
      join(work, "config", "gateway.yaml"),
      `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: web
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: http
      port: 80
      protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: app
spec:
  parentRefs:
    - name: web
  hostnames:
    - app.example
  rules:
    - backendRefs:
        - name: app
          port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: app
  annotations:
    gatehouse.dev/endpoints: "${HOST_IP}:${address.port}"
spec:
  ports:
    - port: 8080
`,
    );

    const token = "smoke-test-admin-token-0123456789";
    writeFileSync(join(work, "config", "admin-token"), `${token}\n`);
    const id = configure(
      "serve",
      [
        "/usr/local/bin/gatehouse",
        "serve",
        "--config=/config",
        "--admin=0.0.0.0:9901",
        // The admin API beyond loopback needs a bearer token (the file provider reads only YAML).
        "--admin-token-file=/config/admin-token",
        "--state-dir=/var/lib/gatehouse",
        "--log-format=text",
      ],
      true,
    );
    containers.add(id);
    let logs = "";
    const container: ChildProcess = spawn("runc", ["run", "--bundle", bundle, id], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    container.stdout?.on("data", (chunk: Buffer) => (logs += chunk.toString()));
    container.stderr?.on("data", (chunk: Buffer) => (logs += chunk.toString()));
    const exited = new Promise<number | null>((done) => container.on("exit", (code) => done(code)));
    t.after(async () => {
      quiet("runc", ["kill", id, "TERM"]);
      const code = await Promise.race([exited, new Promise((done) => setTimeout(done, 10_000, "timeout"))]);
      if (code === "timeout") quiet("runc", ["kill", id, "KILL"]);
      quiet("runc", ["delete", "--force", id]);
      containers.delete(id);
    });

    try {
      await waitFor(
        "/ready",
        async () => (await fetch(`http://${CONT_IP}:9901/ready`, { signal: AbortSignal.timeout(2000) })).ok,
        30_000,
      );
      const answer = await curl(["-H", "Host: app.example", `http://${CONT_IP}/hello`]);
      assert.equal(answer.code, "200");
      assert.equal(answer.body, "backend saw app.example /hello\n");
      const missing = await curl(["-H", "Host: other.example", `http://${CONT_IP}/`]);
      assert.equal(missing.code, "404");
      // /status needs the token; /ready did not.
      const status = (auth?: string) =>
        fetch(`http://${CONT_IP}:9901/status`, {
          signal: AbortSignal.timeout(2000),
          ...(auth !== undefined ? { headers: { authorization: auth } } : {}),
        });
      assert.equal((await status()).status, 401);
      assert.equal((await status(`Bearer ${token}`)).status, 200);
    } catch (error) {
      process.stderr.write(`container output:\n${logs}\n`);
      throw error;
    }
  });
});
