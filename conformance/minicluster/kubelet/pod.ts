// One Pod on the fake kubelet's node: its sandbox (a network namespace with a veth on the node's
// bridge and an address from the node's pod CIDR), its volumes, its containers (local binaries
// started inside the namespace, logs captured), readiness, restarts, and its status in the API.
import { spawn, type ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import { existsSync } from "node:fs";
import { mkdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, isNotFound, type Kube } from "../kube.ts";
import { ip } from "../net.ts";
import { processStartTime, type ProcessRecord } from "../proc.ts";
import type { KubeletConfig } from "./config.ts";
import { ContainerConfigError, containerEnv, expand as expandVars, rewritePaths } from "./env.ts";
import { grpcHealthCheck } from "./grpc-health.ts";
import { containerArgv, resolveImage, type ImageRule } from "./images.ts";
import { deleteContainer, runcArgs, runtimeSpec, type UnpackedImage } from "./oci.ts";
import { LogWriter } from "./logs.ts";
import {
  automountsToken,
  mountedServiceAccountDir,
  withBindMount,
  writeServiceAccountFiles,
} from "./serviceaccount.ts";
import type {
  Condition,
  Container,
  ContainerState,
  ContainerStatus,
  DataObject,
  Pod,
  Probe,
} from "./types.ts";
import { containerMounts, materializeVolumes, VolumeError } from "./volumes.ts";

/** What a PodRunner needs from its kubelet. */
export interface PodHost {
  readonly config: KubeletConfig;
  readonly kube: Kube;
  readonly rules: readonly ImageRule[];
  /** An OCI archive unpacked for runc (cached). */
  ociImage(archive: string): Promise<UnpackedImage>;
  allocateIP(uid: string): string;
  releaseIP(uid: string): void;
  event(pod: Pod, type: "Normal" | "Warning", reason: string, message: string): void;
  log(message: string): void;
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function podKey(pod: Pod): string {
  return `${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`;
}

class ContainerRun {
  readonly spec: Container;
  readonly init: boolean;
  binary = "";
  rule: ImageRule | undefined;
  /** For a container of an OCI image: its runc container id (state under the kubelet's run dir). */
  runcId: string | undefined;
  argv: string[] = [];
  env = new Map<string, string>();
  cwd = "";
  child: ChildProcess | undefined;
  record: ProcessRecord | undefined;
  restartCount = 0;
  started = false;
  ready = false;
  state: ContainerState = { waiting: { reason: "ContainerCreating" } };
  lastState: ContainerState = {};
  /** Set while a restart is pending (backoff). */
  restartTimer: NodeJS.Timeout | undefined;
  probeTimer: NodeJS.Timeout | undefined;
  livenessTimer: NodeJS.Timeout | undefined;
  /** The last probe failure logged (a failure is logged when its reason changes). */
  lastProbeFailure = "";
  /** Resolves when the current process has exited. */
  exited: Promise<number | null> = Promise.resolve(null);

  constructor(spec: Container, init: boolean) {
    this.spec = spec;
    this.init = init;
  }

  get running(): boolean {
    return this.state.running !== undefined;
  }

  containerID(uid: string): string {
    return `gatehouse://${uid.slice(0, 8)}-${this.spec.name}-${this.restartCount}`;
  }
}

export class PodRunner {
  pod: Pod;
  readonly uid: string;
  readonly key: string;
  readonly dir: string;
  readonly netns: string;
  readonly veth: string;
  podIP = "";
  readonly #host: PodHost;
  readonly #containers: ContainerRun[];
  readonly #init: ContainerRun[];
  readonly #conditions = new Map<string, Condition>();
  #startTime: string | undefined;
  #sandboxReady = false;
  #initialized = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  #dirty = false;
  #patching = false;
  #phase: "Pending" | "Running" | "Succeeded" | "Failed" = "Pending";
  #message: string | undefined;
  #lastProblem = "";

  constructor(pod: Pod, host: PodHost) {
    this.pod = pod;
    this.uid = pod.metadata.uid;
    this.key = podKey(pod);
    this.#host = host;
    const short = this.uid.replace(/-/g, "").slice(0, 8);
    this.dir = join(
      host.config.runDir,
      "pods",
      `${pod.metadata.namespace ?? "default"}_${pod.metadata.name}_${this.uid}`,
    );
    this.netns = `${host.config.netnsPrefix}${pod.metadata.name.slice(0, 40)}-${short}`;
    this.veth = `${host.config.vethPrefix}${short}`.slice(0, 15);
    this.#containers = pod.spec.containers.map((c) => new ContainerRun(c, false));
    this.#init = (pod.spec.initContainers ?? []).map((c) => new ContainerRun(c, true));
  }

  get hostNetwork(): boolean {
    return this.pod.spec.hostNetwork === true;
  }

  /** The log file of a container (`previous`: of its last run). */
  logFile(container: string, previous: boolean): string | undefined {
    const run = [...this.#containers, ...this.#init].find((c) => c.spec.name === container);
    if (run === undefined) return undefined;
    const n = previous ? run.restartCount - 1 : run.restartCount;
    if (n < 0) return undefined;
    return join(this.dir, "logs", container, `${n}.log`);
  }

  containerNames(): string[] {
    return this.#containers.map((c) => c.spec.name);
  }

  /** True while the container's current process runs (a follow of its log goes on). */
  containerRunning(container: string): boolean {
    return this.#containers.find((c) => c.spec.name === container)?.running ?? false;
  }

  // --- start ---------------------------------------------------------------------------------

  /** Starts the pod; problems that may go away (a missing secret) are retried. */
  async start(): Promise<void> {
    if (this.#stopping) return;
    this.#startTime ??= now();
    const phase = this.pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    try {
      if (!this.#resolveImages()) return;
      await this.#sandbox();
      const volumes = await this.#volumes();
      for (const init of this.#init) {
        if (this.#stopping) return;
        if (init.state.terminated?.exitCode === 0) continue;
        await this.#prepare(init, volumes);
        const code = await this.#run(init);
        if (code !== 0)
          throw new ContainerConfigError(
            `init container ${init.spec.name} exited with ${code ?? "a signal"}`,
          );
      }
      this.#initialized = true;
      for (const container of this.#containers) {
        if (this.#stopping) return;
        if (container.child !== undefined) continue;
        await this.#prepare(container, volumes);
        await this.#run(container);
      }
      this.#message = undefined;
      this.#updateStatus();
    } catch (error) {
      if (this.#stopping) return;
      const message = describe(error);
      const reason =
        error instanceof VolumeError
          ? "FailedMount"
          : error instanceof ContainerConfigError
            ? "Failed"
            : "FailedCreatePodSandBox";
      if (message !== this.#lastProblem) {
        this.#host.event(this.pod, "Warning", reason, message);
        this.#host.log(`${this.key}: ${reason}: ${message}`);
        this.#lastProblem = message;
      }
      for (const c of this.#containers) {
        if (c.child === undefined) {
          c.state = {
            waiting: {
              reason:
                error instanceof ContainerConfigError ? "CreateContainerConfigError" : "ContainerCreating",
              message,
            },
          };
        }
      }
      this.#updateStatus();
      this.#retry = setTimeout(() => void this.start(), 2000);
    }
  }

  #resolveImages(): boolean {
    let ok = true;
    for (const c of [...this.#init, ...this.#containers]) {
      const image = resolveImage(c.spec.image, this.#host.rules, this.#host.config.binaries);
      const argv = !image.ok
        ? image
        : image.rule.archive !== undefined
          ? { ok: true as const, argv: [] }
          : containerArgv(image.binary, c.spec.command, c.spec.args);
      if (!image.ok || !argv.ok) {
        const message = image.ok ? (argv.ok ? "" : argv.message) : image.message;
        c.state = { waiting: { reason: image.ok ? "CreateContainerError" : "ErrImagePull", message } };
        this.#host.event(this.pod, "Warning", "Failed", `container ${c.spec.name}: ${message}`);
        this.#host.log(`${this.key}: container ${c.spec.name}: ${message}`);
        ok = false;
        continue;
      }
      c.binary = image.binary;
      c.rule = image.rule;
      c.argv = argv.argv;
      if (image.rule.archive !== undefined) {
        c.runcId = `${this.uid.slice(0, 8)}-${this.pod.metadata.name.slice(0, 40)}-${c.spec.name}`;
      }
    }
    if (!ok) {
      this.#message = "the fake kubelet cannot run an image of this pod";
      this.#updateStatus();
    }
    return ok;
  }

  async #sandbox(): Promise<void> {
    if (this.#sandboxReady) return;
    await mkdir(join(this.dir, "logs"), { recursive: true });
    const config = this.#host.config;
    if (this.hostNetwork) {
      this.podIP = config.nodeIP;
    } else {
      if (this.podIP === "") this.podIP = this.#host.allocateIP(this.uid);
      const prefix = config.nodeSubnet.split("/")[1] ?? "16";
      // Idempotent: a half-made sandbox of an earlier attempt is removed first.
      await ip("netns", "del", this.netns).catch(() => undefined);
      await ip("link", "del", "dev", this.veth).catch(() => undefined);
      await ip("netns", "add", this.netns);
      await ip("link", "add", this.veth, "type", "veth", "peer", "name", "eth0", "netns", this.netns);
      await ip("link", "set", this.veth, "master", config.bridge, "up");
      // Hairpin (the kubelet's hairpin-veth mode): with br_netfilter, a pod's connection to its own
      // Service is DNATed in the bridge and must leave through the port it came in on.
      await ip("link", "set", this.veth, "type", "bridge_slave", "hairpin", "on");
      await ip("-n", this.netns, "addr", "add", `${this.podIP}/${prefix}`, "dev", "eth0");
      await ip("-n", this.netns, "link", "set", "eth0", "up");
      await ip("-n", this.netns, "link", "set", "lo", "up");
      // No default route: pods reach the node's subnet (the node, other pods) and, through the
      // node, the service CIDR and load-balancer addresses (config.routes), nothing else.
      for (const cidr of config.routes ?? []) {
        await ip("-n", this.netns, "route", "add", cidr, "via", config.nodeIP, "dev", "eth0");
      }
    }
    this.#sandboxReady = true;
    this.#updateStatus();
  }

  async #getObject(kind: "configmaps" | "secrets", name: string): Promise<DataObject | undefined> {
    const ns = this.pod.metadata.namespace ?? "default";
    try {
      return await this.#host.kube.request<DataObject>("GET", `/api/v1/namespaces/${ns}/${kind}/${name}`);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async #volumes(): Promise<Map<string, string>> {
    const ns = this.pod.metadata.namespace ?? "default";
    const sa = this.pod.spec.serviceAccountName ?? "default";
    return materializeVolumes(this.pod, join(this.dir, "volumes"), {
      pod: this.pod,
      podIP: this.podIP,
      hostIP: this.#host.config.nodeIP,
      getConfigMap: (name) => this.#getObject("configmaps", name),
      getSecret: (name) => this.#getObject("secrets", name),
      requestToken: (audience, expirationSeconds) => this.#requestToken(ns, sa, audience, expirationSeconds),
    });
  }

  /** A token of the Pod's ServiceAccount bound to the Pod (the TokenRequest API). */
  async #requestToken(
    ns: string,
    sa: string,
    audience: string | undefined,
    expirationSeconds: number,
  ): Promise<string> {
    const answer = await this.#host.kube.request<{ status: { token: string } }>(
      "POST",
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          ...(audience !== undefined ? { audiences: [audience] } : {}),
          expirationSeconds,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: this.pod.metadata.name, uid: this.uid },
        },
      },
    );
    return answer.status.token;
  }

  /**
   * The host directory with the container's in-cluster credentials (serviceaccount.ts): the volume
   * mounted at /var/run/secrets/kubernetes.io/serviceaccount, or, when automounting is on but the
   * Pod has no such mount, files the kubelet writes itself; undefined when the Pod opts out.
   */
  async #serviceAccountDir(mounts: ReadonlyMap<string, string>): Promise<string | undefined> {
    const mounted = mountedServiceAccountDir(mounts);
    if (mounted !== undefined) return mounted;
    const ns = this.pod.metadata.namespace ?? "default";
    const sa = this.pod.spec.serviceAccountName ?? "default";
    let account: { automountServiceAccountToken?: boolean } | undefined;
    if (this.pod.spec.automountServiceAccountToken === undefined) {
      account = await this.#host.kube.request<{ automountServiceAccountToken?: boolean }>(
        "GET",
        `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`,
      );
    }
    if (!automountsToken(this.pod.spec, account)) return undefined;
    const dir = join(this.dir, "volumes", ".kubelet-serviceaccount");
    await writeServiceAccountFiles(dir, {
      token: await this.#requestToken(ns, sa, undefined, 3607),
      caCert: await readFile(this.#host.config.clientCA, "utf8"),
      namespace: ns,
    });
    return dir;
  }

  async #prepare(c: ContainerRun, volumes: ReadonlyMap<string, string>): Promise<void> {
    if (c.runcId !== undefined) return this.#prepareOci(c, c.runcId, volumes);
    const vars = await containerEnv(c.spec, {
      pod: this.pod,
      podIP: this.podIP,
      hostIP: this.#host.config.nodeIP,
      getConfigMap: (name) => this.#getObject("configmaps", name),
      getSecret: (name) => this.#getObject("secrets", name),
    });
    const mounts = containerMounts(c.spec, volumes);
    const env = new Map<string, string>([["PATH", PATH], ...this.#baseEnv()]);
    for (const [name, value] of vars) env.set(name, rewritePaths(value, mounts));
    c.env = env;
    const expanded = (s: string) => rewritePaths(expandVars(s, vars), mounts);
    const argv = [c.argv[0] ?? c.binary, ...c.argv.slice(1).map(expanded)];
    const credentials = await this.#serviceAccountDir(mounts);
    c.argv = credentials !== undefined ? withBindMount(argv, credentials) : argv;
    const workingDir = c.spec.workingDir !== undefined ? rewritePaths(c.spec.workingDir, mounts) : undefined;
    c.cwd = workingDir !== undefined && existsSync(workingDir) ? workingDir : this.dir;
  }

  /**
   * The kubelet's environment for every container: the `kubernetes` Service when the mini-cluster
   * programs Services (pods that are not hostNetwork), otherwise the API server itself.
   */
  #baseEnv(): Map<string, string> {
    const api = new URL(this.#host.config.apiserverURL);
    const service = this.#host.config.kubernetesService;
    const viaService = service !== undefined && !this.hostNetwork;
    const host = viaService ? service.host : api.hostname;
    const port = viaService ? String(service.port) : api.port || "443";
    return new Map<string, string>([
      ["HOSTNAME", this.pod.spec.hostname ?? this.pod.metadata.name],
      ["KUBERNETES_SERVICE_HOST", host],
      ["KUBERNETES_SERVICE_PORT", port],
      ["KUBERNETES_SERVICE_PORT_HTTPS", port],
      ["KUBERNETES_PORT", `tcp://${host}:${port}`],
      [`KUBERNETES_PORT_${port}_TCP`, `tcp://${host}:${port}`],
      [`KUBERNETES_PORT_${port}_TCP_PROTO`, "tcp"],
      [`KUBERNETES_PORT_${port}_TCP_PORT`, port],
      [`KUBERNETES_PORT_${port}_TCP_ADDR`, host],
    ]);
  }

  /** A container of an OCI image: its runtime spec in its own bundle dir, started by runc. */
  async #prepareOci(c: ContainerRun, id: string, volumes: ReadonlyMap<string, string>): Promise<void> {
    const archive = c.rule?.archive ?? c.binary;
    const image = await this.#host.ociImage(archive);
    const vars = await containerEnv(c.spec, {
      pod: this.pod,
      podIP: this.podIP,
      hostIP: this.#host.config.nodeIP,
      getConfigMap: (name) => this.#getObject("configmaps", name),
      getSecret: (name) => this.#getObject("secrets", name),
    });
    const env = this.#baseEnv();
    for (const [name, value] of vars) env.set(name, value);
    const readOnly = new Set(
      (c.spec.volumeMounts ?? [])
        .filter((mount) => mount.readOnly === true)
        .map((mount) => mount.mountPath.replace(/\/+$/, "") || "/"),
    );
    let spec;
    try {
      spec = runtimeSpec({
        image,
        pod: this.pod.spec,
        container: c.spec,
        env,
        expand: (text) => expandVars(text, vars),
        mounts: containerMounts(c.spec, volumes),
        readOnlyMounts: readOnly,
        netns: this.hostNetwork ? undefined : this.netns,
        hostname: this.pod.spec.hostname ?? this.pod.metadata.name,
      });
    } catch (error) {
      throw new ContainerConfigError(describe(error));
    }
    const bundle = join(this.dir, "bundles", c.spec.name);
    await mkdir(bundle, { recursive: true });
    await writeFile(join(bundle, "config.json"), JSON.stringify(spec, null, 2));
    await deleteContainer(this.#runcRoot, id);
    c.env = new Map([["PATH", PATH]]);
    c.argv = ["runc", ...runcArgs(this.#runcRoot, "run", "--bundle", bundle, id)];
    c.cwd = this.dir;
  }

  get #runcRoot(): string {
    return join(this.#host.config.runDir, "runc");
  }

  /** Starts a container's process; for an init container, resolves with its exit code. */
  async #run(c: ContainerRun): Promise<number | null> {
    const logFile = join(this.dir, "logs", c.spec.name, `${c.restartCount}.log`);
    await mkdir(join(this.dir, "logs", c.spec.name), { recursive: true });
    const writer = new LogWriter(logFile);
    // A runc container joins the Pod's network namespace through its runtime spec.
    const argv =
      this.hostNetwork || c.runcId !== undefined ? c.argv : ["ip", "netns", "exec", this.netns, ...c.argv];
    const child = spawn(argv[0] ?? c.binary, argv.slice(1), {
      env: Object.fromEntries(c.env),
      cwd: c.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    c.child = child;
    const startedAt = now();
    child.stdout?.on("data", (chunk: Buffer) => writer.write("stdout", chunk));
    child.stderr?.on("data", (chunk: Buffer) => writer.write("stderr", chunk));
    c.exited = new Promise((resolve) => {
      child.on("error", (error) => {
        writer.write("stderr", `fake kubelet: cannot start ${argv.join(" ")}: ${error.message}\n`);
      });
      child.on("close", (code, signal) => {
        writer.flush();
        void this.#onExit(c, code, signal, startedAt);
        resolve(code);
      });
    });
    if (child.pid !== undefined) {
      const startTime = processStartTime(child.pid);
      if (startTime !== undefined) {
        c.record = { name: `${this.key}/${c.spec.name}`, pid: child.pid, startTime };
        await writeFile(
          join(this.#host.config.runDir, "pids", `${child.pid}.json`),
          JSON.stringify(c.record),
        ).catch(() => undefined);
      }
    }
    c.state = { running: { startedAt } };
    c.started = c.spec.startupProbe === undefined;
    c.ready = false;
    this.#host.event(
      this.pod,
      "Normal",
      "Started",
      `Started container ${c.spec.name} (${c.binary}, pid ${child.pid ?? "?"})`,
    );
    this.#updateStatus();
    if (c.init) return c.exited;
    this.#watchReadiness(c);
    this.#watchLiveness(c);
    return null;
  }

  async #onExit(
    c: ContainerRun,
    code: number | null,
    signal: NodeJS.Signals | null,
    startedAt: string,
  ): Promise<void> {
    if (c.record !== undefined) {
      await unlink(join(this.#host.config.runDir, "pids", `${c.record.pid}.json`)).catch(() => undefined);
      c.record = undefined;
    }
    if (c.probeTimer !== undefined) clearTimeout(c.probeTimer);
    if (c.livenessTimer !== undefined) clearTimeout(c.livenessTimer);
    // runc exits with its container, or was killed without it: remove (and kill) the container.
    if (c.runcId !== undefined) await deleteContainer(this.#runcRoot, c.runcId);
    c.child = undefined;
    c.ready = false;
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : 15);
    const terminated: ContainerState = {
      terminated: {
        exitCode,
        reason: exitCode === 0 ? "Completed" : "Error",
        startedAt,
        finishedAt: now(),
        containerID: c.containerID(this.uid),
      },
    };
    if (this.#stopping) {
      c.state = terminated;
      return;
    }
    this.#host.log(`${this.key}: container ${c.spec.name} exited with ${exitCode}`);
    const policy = this.pod.spec.restartPolicy ?? "Always";
    const restart = !c.init && (policy === "Always" || (policy === "OnFailure" && exitCode !== 0));
    if (!restart) {
      c.state = terminated;
      this.#updateStatus();
      return;
    }
    c.lastState = terminated;
    const backoff = Math.min(1000 * 2 ** c.restartCount, 30_000);
    c.state = {
      waiting: {
        reason: "CrashLoopBackOff",
        message: `back-off ${backoff / 1000}s restarting failed container=${c.spec.name} pod=${this.pod.metadata.name}`,
      },
    };
    this.#host.event(this.pod, "Warning", "BackOff", `Back-off restarting failed container ${c.spec.name}`);
    this.#updateStatus();
    c.restartTimer = setTimeout(() => {
      c.restartTimer = undefined;
      if (this.#stopping) return;
      c.restartCount++;
      void this.#run(c).catch((error: unknown) =>
        this.#host.log(`${this.key}: restart ${c.spec.name}: ${describe(error)}`),
      );
    }, backoff);
  }

  // --- readiness -----------------------------------------------------------------------------

  #watchReadiness(c: ContainerRun): void {
    const probe = c.spec.readinessProbe;
    const declared = (c.spec.ports ?? [])
      .filter((p) => (p.protocol ?? "TCP") === "TCP")
      .map((p) => p.containerPort);
    const ports = declared.length > 0 ? declared : (c.rule?.readyPorts(Object.fromEntries(c.env)) ?? []);
    const child = c.child;
    let successes = 0;
    let failures = 0;
    const tick = async () => {
      if (this.#stopping || c.child !== child || child === undefined) return;
      let ok: boolean;
      let period: number;
      if (probe !== undefined) {
        ok = await this.#probe(probe, c, "Readiness");
        period = (probe.periodSeconds ?? 10) * 1000;
        if (ok) {
          successes++;
          failures = 0;
        } else {
          failures++;
          successes = 0;
        }
        const ready = c.ready
          ? failures < (probe.failureThreshold ?? 3)
          : successes >= (probe.successThreshold ?? 1);
        // Until the first success, probe quickly so that pods become Ready without waiting a period.
        if (!c.ready && !ready) period = Math.min(period, 500);
        this.#setReady(c, ready);
      } else {
        ok = (await Promise.all(ports.map((p) => tcpCheck(this.podIP, p, 1000)))).every(Boolean);
        if (ok) {
          this.#setReady(c, true);
          return; // no probe: ready once listening, like a container without a readiness probe
        }
        period = 100;
      }
      c.probeTimer = setTimeout(() => void tick(), period);
    };
    const delay = probe !== undefined ? (probe.initialDelaySeconds ?? 0) * 1000 : 0;
    c.probeTimer = setTimeout(() => void tick(), delay);
  }

  /**
   * The livenessProbe: after its initial delay, once the container has started, every period; after
   * failureThreshold failures in a row the container is killed (SIGTERM, SIGKILL after the Pod's
   * grace period) and restarted according to the restartPolicy, as the kubelet does.
   */
  #watchLiveness(c: ContainerRun): void {
    const probe = c.spec.livenessProbe;
    if (probe === undefined) return;
    const child = c.child;
    let failures = 0;
    const period = (probe.periodSeconds ?? 10) * 1000;
    const tick = async () => {
      if (this.#stopping || c.child !== child || child?.pid === undefined) return;
      if (c.started) {
        if (await this.#probe(probe, c, "Liveness")) {
          failures = 0;
        } else if (++failures >= (probe.failureThreshold ?? 3)) {
          if (this.#stopping || c.child !== child) return;
          const message = `Container ${c.spec.name} failed liveness probe, will be restarted`;
          this.#host.event(this.pod, "Normal", "Killing", message);
          this.#host.log(`${this.key}: ${message}`);
          const grace = (this.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
          signal(child.pid, "SIGTERM");
          const exited = await Promise.race([
            c.exited.then(() => true),
            sleep(Math.min(grace, MAX_DELETION_GRACE_MS)).then(() => false),
          ]);
          if (!exited && c.child === child) signal(child.pid, "SIGKILL");
          return; // the restart (#onExit) watches the new process
        }
      }
      c.livenessTimer = setTimeout(() => void tick(), period);
    };
    c.livenessTimer = setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000);
  }

  /** One probe; a failure is logged (and an Unhealthy event sent) when its reason changes. */
  async #probe(probe: Probe, c: ContainerRun, kind: "Readiness" | "Liveness"): Promise<boolean> {
    const reason = await this.#probeOnce(probe, c);
    if (reason === undefined) {
      c.lastProbeFailure = "";
      return true;
    }
    const message = `${kind} probe failed: ${reason}`;
    if (message !== c.lastProbeFailure) {
      c.lastProbeFailure = message;
      this.#host.event(this.pod, "Warning", "Unhealthy", `container ${c.spec.name}: ${message}`);
      this.#host.log(`${this.key}: container ${c.spec.name}: ${message}`);
    }
    return false;
  }

  /** Runs a probe: undefined when it passes, else why it failed. */
  async #probeOnce(probe: Probe, c: ContainerRun): Promise<string | undefined> {
    const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
    const port = (p: number | string): number => {
      if (typeof p === "number") return p;
      const named = c.spec.ports?.find((x) => x.name === p)?.containerPort;
      return named ?? Number(p);
    };
    if (probe.httpGet !== undefined) {
      const h = probe.httpGet;
      const scheme = (h.scheme ?? "HTTP").toLowerCase();
      const url = `${scheme}://${h.host ?? this.podIP}:${port(h.port)}${h.path ?? "/"}`;
      try {
        const headers = Object.fromEntries((h.httpHeaders ?? []).map((x) => [x.name, x.value]));
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
        await res.arrayBuffer();
        return res.status >= 200 && res.status < 400
          ? undefined
          : `HTTP probe failed with statuscode: ${res.status}`;
      } catch (error) {
        return `Get "${url}": ${describe(error)}`;
      }
    }
    if (probe.tcpSocket !== undefined) {
      const host = probe.tcpSocket.host ?? this.podIP;
      const p = port(probe.tcpSocket.port);
      return (await tcpCheck(host, p, timeoutMs)) ? undefined : `dial tcp ${host}:${p} failed`;
    }
    if (probe.grpc !== undefined) {
      const result = await grpcHealthCheck(this.podIP, probe.grpc.port, probe.grpc.service ?? "", timeoutMs);
      return result.ok
        ? undefined
        : `gRPC health check of ${this.podIP}:${probe.grpc.port} (service "${probe.grpc.service ?? ""}"): ${result.reason}`;
    }
    return undefined; // exec probes cannot run here; treat as passing
  }

  #setReady(c: ContainerRun, ready: boolean): void {
    if (c.ready === ready) return;
    c.ready = ready;
    c.started = true;
    this.#updateStatus();
  }

  // --- status --------------------------------------------------------------------------------

  #condition(type: string, ok: boolean, reason?: string): Condition {
    const status = ok ? "True" : "False";
    const previous = this.#conditions.get(type);
    const existing = this.pod.status?.conditions?.find((x) => x.type === type);
    const lastTransitionTime =
      previous?.status === status
        ? previous.lastTransitionTime
        : existing?.status === status && previous === undefined
          ? existing.lastTransitionTime
          : now();
    const condition: Condition = {
      type,
      status,
      lastProbeTime: null,
      ...(lastTransitionTime !== undefined ? { lastTransitionTime } : {}),
      ...(!ok && reason !== undefined ? { reason } : {}),
    };
    this.#conditions.set(type, condition);
    return condition;
  }

  #containerStatus(c: ContainerRun): ContainerStatus {
    return {
      name: c.spec.name,
      image: c.spec.image,
      imageID: c.binary !== "" ? `file://${c.binary}` : "",
      ...(c.state.running !== undefined || c.state.terminated !== undefined
        ? { containerID: c.containerID(this.uid) }
        : {}),
      ready: c.ready,
      started: c.started && c.running,
      restartCount: c.restartCount,
      state: c.state,
      lastState: c.lastState,
    };
  }

  status(): Record<string, unknown> {
    const containers = this.#containers;
    const allReady = containers.every((c) => c.ready);
    const allTerminated = containers.every((c) => c.state.terminated !== undefined);
    if (allTerminated && containers.length > 0) {
      this.#phase = containers.some((c) => (c.state.terminated?.exitCode ?? 0) !== 0)
        ? "Failed"
        : "Succeeded";
    } else if (
      containers.every(
        (c) =>
          c.state.running !== undefined ||
          c.lastState.terminated !== undefined ||
          c.state.terminated !== undefined,
      ) &&
      containers.some((c) => c.state.running !== undefined || c.restartTimer !== undefined)
    ) {
      this.#phase = "Running";
    } else {
      this.#phase = "Pending";
    }
    const podIPs = this.podIP !== "" ? { podIP: this.podIP, podIPs: [{ ip: this.podIP }] } : {};
    return {
      phase: this.#phase,
      hostIP: this.#host.config.nodeIP,
      hostIPs: [{ ip: this.#host.config.nodeIP }],
      ...podIPs,
      ...(this.#startTime !== undefined ? { startTime: this.#startTime } : {}),
      ...(this.#message !== undefined ? { message: this.#message } : {}),
      conditions: [
        this.#condition("PodReadyToStartContainers", this.#sandboxReady),
        this.#condition("Initialized", this.#initialized, "ContainersNotInitialized"),
        this.#condition("Ready", allReady && this.#phase === "Running", "ContainersNotReady"),
        this.#condition("ContainersReady", allReady && this.#phase === "Running", "ContainersNotReady"),
        this.#condition("PodScheduled", true),
      ],
      containerStatuses: containers.map((c) => this.#containerStatus(c)),
      ...(this.#init.length > 0
        ? { initContainerStatuses: this.#init.map((c) => this.#containerStatus(c)) }
        : {}),
    };
  }

  /** Patches pods/status soon; patches are serialized and coalesced. */
  #updateStatus(): void {
    this.#dirty = true;
    if (this.#patching) return;
    this.#patching = true;
    void (async () => {
      try {
        while (this.#dirty && !this.#stopping) {
          this.#dirty = false;
          const ns = this.pod.metadata.namespace ?? "default";
          try {
            const updated = await this.#host.kube.request<Pod>(
              "PATCH",
              `/api/v1/namespaces/${ns}/pods/${this.pod.metadata.name}/status`,
              { metadata: { uid: this.uid }, status: this.status() },
              { contentType: "application/strategic-merge-patch+json" },
            );
            if (updated.metadata.uid === this.uid) this.pod = { ...this.pod, status: updated.status ?? {} };
          } catch (error) {
            if (isNotFound(error)) return;
            this.#host.log(`${this.key}: status update failed: ${describe(error)}`);
            this.#dirty = true;
            await sleep(1000);
          }
        }
      } finally {
        this.#patching = false;
      }
    })();
  }

  /** The pod object changed in the API (labels, deletion...). */
  update(pod: Pod): void {
    this.pod = pod;
  }

  // --- stop ----------------------------------------------------------------------------------

  /**
   * Stops every process (SIGTERM, SIGKILL after the grace period — the Pod's
   * deletionGracePeriodSeconds or terminationGracePeriodSeconds, as the kubelet honours it, at most
   * `maxGraceMs`) and removes the sandbox.
   */
  stop(maxGraceMs = MAX_DELETION_GRACE_MS): Promise<void> {
    this.#stopped ??= this.#stop(maxGraceMs);
    return this.#stopped;
  }

  async #stop(maxGraceMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    const graceSeconds =
      this.pod.metadata.deletionGracePeriodSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
    const graceMs = Math.min(graceSeconds * 1000, maxGraceMs);
    const all = [...this.#init, ...this.#containers];
    if (all.some((c) => c.child !== undefined))
      this.#host.event(this.pod, "Normal", "Killing", "Stopping containers");
    await Promise.all(
      all.map(async (c) => {
        if (c.restartTimer !== undefined) clearTimeout(c.restartTimer);
        if (c.probeTimer !== undefined) clearTimeout(c.probeTimer);
        if (c.livenessTimer !== undefined) clearTimeout(c.livenessTimer);
        const child = c.child;
        if (child?.pid === undefined) return;
        signal(child.pid, "SIGTERM");
        const exited = await Promise.race([c.exited.then(() => true), sleep(graceMs).then(() => false)]);
        if (!exited) {
          signal(child.pid, "SIGKILL");
          await Promise.race([c.exited, sleep(2000)]);
        }
      }),
    );
    if (!this.hostNetwork && this.#sandboxReady) {
      await ip("netns", "del", this.netns).catch((error: unknown) =>
        this.#host.log(`${this.key}: netns del: ${describe(error)}`),
      );
    } else if (!this.hostNetwork) {
      await ip("netns", "del", this.netns).catch(() => undefined);
      await ip("link", "del", "dev", this.veth).catch(() => undefined);
    }
    if (this.podIP !== "" && !this.hostNetwork) this.#host.releaseIP(this.uid);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The longest grace period a deleted Pod gets. The kubelet has no bound; this one has, so that a
 * process ignoring SIGTERM cannot hold a test run for its full period (e.g. the data plane's 615 s,
 * of which it needs ~5 s of drain and its soft stop). It was 5 s, which cut the data plane's drain
 * (--shutdown-drain 5s) short: HAProxy was killed instead of stopping gracefully.
 */
export const MAX_DELETION_GRACE_MS = 60_000;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // gone
    }
  }
}

export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}
