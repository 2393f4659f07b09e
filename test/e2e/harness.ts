// The end-to-end harness: echo backends, a temporary config directory of YAML resources, and the
// real serve pipeline (file provider → translate → render → HAProxyApplier → a real HAProxy) running
// in this process through startServe, on a loopback address of its own (127.x.y.z) so that several
// test files can run at once without port conflicts. Everything started is stopped, and every
// temporary directory removed, by the `after` hook registered at start (also when a test fails).
//
// Waiting for a change: `write()` writes the files (atomically: a hidden temporary file renamed into
// place), notes how many loads the file provider has started, then writes a marker ConfigMap (so
// that at least one more load follows), and waits for a load started after that point to finish:
// it saw every file written. If it delivered nothing, its input was byte-identical to the last
// update delivered, which therefore already reflects the write. Then it waits until the pipeline
// has processed that update. (A load in flight during the write may have read some files before
// they were written; it is never taken as the answer.)
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { promisify } from "node:util";
import type { ApplyRecord, StatusDocument } from "../../src/admin/state.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { FileProvider } from "../../src/provider/file/provider.ts";
import { startServe, type ServeHandle, type ServeOptions } from "../../src/serve/start.ts";
import type { RestartPolicy } from "../../src/dataplane/haproxy/process/manager.ts";
import { request, type RequestOptions, type Response } from "./client.ts";
import { startEchoBackend, type EchoBackend } from "./echo.ts";
import { docs, NS } from "./resources.ts";

export { docs } from "./resources.ts";

const execFileAsync = promisify(execFile);

export interface HarnessOptions {
  /** Echo backends to start: name → protocol (default http). */
  backends?: Record<string, "http" | "h2c">;
  /** How many listener ports to reserve on the harness address (default 1). */
  ports?: number;
  /** The initial files (path relative to the config directory → YAML text). */
  files?: (h: Harness) => Record<string, string>;
  serverSlots?: number;
  restart?: RestartPolicy;
  /**
   * Run HAProxy through a wrapper that sleeps this long before each master launch (start or
   * restart; not `haproxy -c`, not reloads): widens the window in which HAProxy is starting.
   */
  slowLaunchMs?: number;
  hardStopAfter?: string;
  /** Access logs (default off), passed to startServe. */
  accessLog?: ServeOptions["accessLog"];
  /** A bearer token the admin server requires (written to a token file); default none. */
  adminToken?: string;
}

export interface Applied {
  /** The provider generation that carried the change. */
  generation: number;
  /**
   * How the data plane took the change: the most disruptive of the applies made since the write
   * began (start > reload > runtime > unchanged); undefined when nothing was applied.
   */
  method: string | undefined;
  /** failure when any of those applies failed. */
  result: "success" | "failure" | undefined;
  /** From the files written to the update processed, in ms. */
  ms: number;
}

export class Harness {
  readonly ip: string;
  readonly ports: number[];
  readonly root: string;
  readonly configDir: string;
  readonly stateDir: string;
  readonly backends: Record<string, EchoBackend>;
  readonly logs: string[] = [];
  /** Log lines written since start (`logs` keeps only the recent ones). */
  logLines = 0;
  #serve: ServeHandle | undefined;
  #rev = 0;
  #provider: FileProvider | undefined;
  #processed = 0;
  readonly #waiters = new Set<() => void>();
  readonly #cleanups: Array<() => Promise<void>>;
  /** Every apply the pipeline made, in order. */
  readonly #applies: Array<{ method: string | undefined; result: "success" | "failure" }> = [];

  private constructor(
    ip: string,
    ports: number[],
    root: string,
    backends: Record<string, EchoBackend>,
    cleanups: Array<() => Promise<void>>,
  ) {
    this.#cleanups = cleanups;
    this.ip = ip;
    this.ports = ports;
    this.root = root;
    this.configDir = join(root, "config");
    this.stateDir = join(root, "state");
    this.backends = backends;
  }

  /** Starts everything; on failure, stops what was started and rethrows. Stop with close(). */
  static async start(options: HarnessOptions = {}): Promise<Harness> {
    const cleanups: Array<() => Promise<void>> = [];
    try {
      const root = await mkdtemp(join(tmpdir(), "gh-e2e-"));
      cleanups.push(() => rm(root, { recursive: true, force: true }));
      const ip = await loopbackAddress();
      // Every port of this address at once (distinct), the admin server's included: a port chosen
      // and released earlier could otherwise be handed to a later `listen(0)` on the same address.
      const [adminPort = 0, metricsPort = 0, ...ports] = await freePorts(ip, 2 + (options.ports ?? 1));
      const backends: Record<string, EchoBackend> = {};
      for (const [name, protocol] of Object.entries(options.backends ?? {})) {
        const backend = await startEchoBackend(name, { protocol });
        cleanups.push(() => backend.close());
        backends[name] = backend;
      }
      const h = new Harness(ip, ports, root, backends, cleanups);
      await mkdir(h.configDir, { recursive: true });
      await h.#writeFiles({ ...(options.files?.(h) ?? {}), ...h.#marker() });

      const logger = createLogger({
        format: "text",
        level: "info",
        destination: {
          write: (line: string) => {
            h.logLines++;
            h.logs.push(line.trimEnd());
            if (h.logs.length > 2000) h.logs.splice(0, 500);
            if (process.env["GATEHOUSE_E2E_LOG"] === "1") process.stderr.write(line);
          },
        },
      });
      let haproxy: string | undefined;
      if (options.slowLaunchMs !== undefined) {
        haproxy = join(root, "slow-haproxy.sh");
        const delay = (options.slowLaunchMs / 1000).toFixed(3);
        const real = await findOnPath("haproxy");
        await writeFile(haproxy, `#!/bin/sh\n[ "$1" = "-W" ] && sleep ${delay}\nexec ${real} "$@"\n`, {
          mode: 0o755,
        });
      }
      const provider = new FileProvider({
        path: h.configDir,
        debounceMs: 20,
        onWarning: (message) => logger.warn(message),
      });
      h.#provider = provider;
      const serve = await startServe({
        ...(haproxy !== undefined ? { haproxy } : {}),
        provider,
        stateDir: h.stateDir,
        logger,
        admin: {
          host: ip,
          port: adminPort,
          ...(options.adminToken !== undefined
            ? { tokenFile: await tokenFile(root, options.adminToken) }
            : {}),
        },
        metricsAddress: `${ip}:${metricsPort}`,
        hostAddresses: [ip],
        serverSlots: options.serverSlots ?? 4,
        hardStopAfter: options.hardStopAfter ?? "30s",
        ...(options.restart !== undefined ? { restart: options.restart } : {}),
        ...(options.accessLog !== undefined ? { accessLog: options.accessLog } : {}),
        onProcessed: (generation) => {
          const last = h.#serve?.store.status().dataplane.lastApply;
          if (last?.generation === generation) h.#applies.push({ method: last.method, result: last.result });
          h.#processed = Math.max(h.#processed, generation);
          for (const w of [...h.#waiters]) w();
        },
      });
      h.#serve = serve;
      cleanups.push(() => serve.stop({ graceful: false, timeoutMs: 2000 }));
      await h.#waitProcessed(provider.generation, 20_000);
      return h;
    } catch (err) {
      await runCleanups(cleanups);
      throw err;
    }
  }

  /** Stops HAProxy, the pipeline and the backends; removes the temporary directories. Idempotent. */
  async close(): Promise<void> {
    await runCleanups(this.#cleanups);
  }

  get serve(): ServeHandle {
    if (this.#serve === undefined) throw new Error("not started");
    return this.#serve;
  }

  get port(): number {
    return this.ports[0] ?? 0;
  }

  get adminUrl(): string {
    return this.serve.adminUrl;
  }

  /** An echo backend by name. */
  backend(name: string): EchoBackend {
    const b = this.backends[name];
    if (b === undefined) throw new Error(`no echo backend ${name}`);
    return b;
  }

  /**
   * Writes (or, for `null`, deletes) files under the config directory and waits until the pipeline
   * has processed an update loaded after the write.
   */
  async write(files: Record<string, string | null>, timeoutMs = 15_000): Promise<Applied> {
    const started = performance.now();
    const from = this.#applies.length;
    const provider = this.#provider;
    if (provider === undefined) throw new Error("not started");
    await this.#writeFiles(files);
    const loads = provider.loadCount;
    await this.#writeFiles(this.#marker());
    await this.waitFor(
      "a load of the files written",
      async () => {
        if (provider.loadCount <= loads) return false;
        await provider.whenIdle();
        return true;
      },
      timeoutMs,
      2,
    );
    const generation = await this.#waitProcessed(provider.generation, timeoutMs);
    const ms = performance.now() - started;
    // A load may have started between the files and the marker: the change then came with an
    // earlier generation than the marker's. Report the most disruptive of the applies since.
    const applies = this.#applies.slice(from);
    const rank = (m: string | undefined): number =>
      ["unchanged", "runtime", "reload", "start"].indexOf(m ?? "");
    const method = applies.map((a) => a.method).reduce((a, b) => (rank(b) > rank(a) ? b : a), undefined);
    const result =
      applies.length === 0 ? undefined : applies.some((a) => a.result === "failure") ? "failure" : "success";
    return { generation, method, result, ms };
  }

  /**
   * Waits until the pipeline has processed provider generation `generation` (or a later one);
   * returns the data plane's last apply record then.
   */
  async waitGeneration(generation: number, timeoutMs = 15_000): Promise<ApplyRecord | null> {
    await this.waitFor(
      `generation ${generation} to be processed`,
      () => this.#processed >= generation,
      timeoutMs,
      5,
    );
    return this.serve.store.status().dataplane.lastApply;
  }

  /** Generation of the last provider update the pipeline has processed. */
  get processedGeneration(): number {
    return this.#processed;
  }

  /** One request to the harness address (default: the first port), a new connection each time. */
  get(path: string, options: Partial<RequestOptions> = {}): Promise<Response> {
    return request({ address: this.ip, port: this.port, path, ...options });
  }

  /** The admin server's /status. */
  async status(): Promise<StatusDocument> {
    const res = await fetch(`${this.adminUrl}/status`);
    return (await res.json()) as StatusDocument;
  }

  /** The admin server's /metrics text. */
  async metricsText(): Promise<string> {
    return (await fetch(`${this.adminUrl}/metrics`)).text();
  }

  /** A sample of /metrics (0 when absent): `name{labels}` exactly as exposed, e.g. `x{result="success"}`. */
  async metric(series: string): Promise<number> {
    const text = await this.metricsText();
    for (const line of text.split("\n")) {
      if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
    }
    return 0;
  }

  /** The HAProxy master's reload counter (`show proc`). */
  async masterReloads(): Promise<number> {
    return (await this.serve.haproxy.processes()).master.reloads;
  }

  /** Polls `check` until it returns true (or a value other than false/undefined). */
  async waitFor<T>(
    what: string,
    check: () => Promise<T | false | undefined> | T | false | undefined,
    timeoutMs = 10_000,
    intervalMs = 25,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      try {
        const value = await check();
        if (value !== false && value !== undefined) return value;
      } catch (err) {
        lastError = err;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}` +
            (lastError instanceof Error ? ` (last error: ${lastError.message})` : "") +
            `\n--- gatehouse log tail ---\n${this.logs.slice(-30).join("\n")}`,
        );
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  #marker(): Record<string, string> {
    this.#rev++;
    return {
      "zz-e2e-marker.yaml": docs({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "e2e-marker", namespace: NS },
        data: { rev: String(this.#rev) },
      }),
    };
  }

  async #writeFiles(files: Record<string, string | null>): Promise<void> {
    for (const [name, content] of Object.entries(files)) {
      const path = join(this.configDir, name);
      if (content === null) {
        await rm(path, { force: true });
        continue;
      }
      await mkdir(dirname(path), { recursive: true });
      const temporary = join(dirname(path), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
      await writeFile(temporary, content);
      await rename(temporary, path);
    }
  }

  /** Waits until the pipeline has processed provider generation `generation` (or a later one). */
  #waitProcessed(generation: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.#processed < generation) return;
        done();
        resolve(generation);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `generation ${generation} was not processed within ${timeoutMs} ms` +
              `\n--- gatehouse log tail ---\n${this.logs.slice(-30).join("\n")}`,
          ),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }
}

/**
 * Starts a harness in a `before` hook of the current suite and closes it in an `after` hook (which
 * runs even when a test or the start failed). Returns an accessor for the tests.
 */
async function tokenFile(root: string, token: string): Promise<string> {
  const path = join(root, "admin-token");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return path;
}

export function useHarness(options: HarnessOptions): () => Harness {
  let harness: Harness | undefined;
  before(async () => {
    harness = await Harness.start(options);
  });
  after(async () => {
    await harness?.close();
  });
  return () => {
    if (harness === undefined) throw new Error("the harness did not start");
    return harness;
  };
}

async function runCleanups(cleanups: Array<() => Promise<void>>): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (err) {
      process.stderr.write(`e2e cleanup failed: ${String(err)}\n`);
    }
  }
}

/** A random address in 127.0.0.0/8 (not 127.0.0.x) that can be bound. */
export async function loopbackAddress(): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = (n: number): number => Math.floor(Math.random() * n);
    const ip = `127.${100 + r(150)}.${r(256)}.${1 + r(253)}`;
    try {
      await freePort(ip);
      return ip;
    } catch {
      continue;
    }
  }
  throw new Error("no bindable loopback address");
}

async function findOnPath(binary: string): Promise<string> {
  const { stdout } = await execFileAsync("sh", ["-c", `command -v ${binary}`]);
  return stdout.trim();
}

/** A port that was free on `address` a moment ago. */
/** `n` distinct free ports of `address`: all are held open until every one is chosen. */
export async function freePorts(address: string, n: number): Promise<number[]> {
  const servers: Array<ReturnType<typeof createServer>> = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, address, resolve);
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

export async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A throwaway self-signed certificate (P-256) for `names` (the first is the CN; `URI:...` entries are URI SANs). */
export async function selfSignedCert(dir: string, names: string[]): Promise<{ cert: string; key: string }> {
  const base = join(dir, `cert-${names[0] ?? "x"}`);
  await execFileAsync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${names[0] ?? "x"}`,
    "-addext",
    `subjectAltName=${names.map((n) => (n.startsWith("URI:") ? n : `DNS:${n}`)).join(",")}`,
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.crt`,
  ]);
  return { cert: await readFile(`${base}.crt`, "utf8"), key: await readFile(`${base}.key`, "utf8") };
}

/** Sends `count` requests, at most `concurrency` at a time; returns them in order. */
export async function many<T>(
  count: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = new Array<T>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return out;
}

const GATEHOUSE_BIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../bin/gatehouse.js");

/** A `gatehouse` command running as a child process (see runGatehouse). */
export interface GatehouseProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout and stderr lines so far. */
  readonly lines: string[];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Waits for an output line matching `pattern` (rejects if the process exits first). */
  line(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/**
 * Runs `gatehouse <args>` (bin/gatehouse.js, with this Node) in its own process group (as a shell
 * runs a command: `process.kill(-pid, ...)` signals the group, like a terminal's Ctrl-C). Killed
 * with SIGKILL after the test if still running.
 */
export function runGatehouse(
  t: { after(fn: () => unknown): void },
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): GatehouseProcess {
  const child = spawn(process.execPath, [GATEHOUSE_BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    env,
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8").on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      lines.push(...parts);
      if (process.env["GATEHOUSE_E2E_LOG"] === "1") for (const l of parts) process.stderr.write(`${l}\n`);
      for (const w of [...waiters]) w();
    });
  }
  let done = false;
  const exited = new Promise<number | string>((resolveExit) =>
    child.once("exit", (code, signal) => {
      done = true;
      for (const w of [...waiters]) w();
      resolveExit(code ?? signal ?? "?");
    }),
  );
  t.after(() => {
    if (!done) child.kill("SIGKILL");
  });
  const line = (pattern: RegExp, timeoutMs = 30_000): Promise<string> =>
    new Promise((resolveLine, reject) => {
      const check = (): void => {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) finish(() => resolveLine(found));
        else if (done)
          finish(() =>
            reject(new Error(`gatehouse exited before ${String(pattern)}:\n${lines.slice(-20).join("\n")}`)),
          );
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(`no line ${String(pattern)} within ${timeoutMs} ms:\n${lines.slice(-20).join("\n")}`),
            ),
          ),
        timeoutMs,
      );
      const finish = (fn: () => void): void => {
        clearTimeout(timer);
        waiters.delete(check);
        fn();
      };
      waiters.add(check);
      check();
    });
  return { child, pid: child.pid ?? 0, lines, exited, line };
}
