// The fake kubelet: registers the node and keeps its Ready condition and Lease fresh, schedules
// every unscheduled Pod onto it (pods/binding), runs the Pods bound to it (PodRunner), finishes
// deleted Pods (stop, then delete with grace period 0), and serves container logs over HTTPS.
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { Server } from "node:https";
import { arch, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, isConflict, isNotFound, KubeError, type Kube } from "../kube.ts";
import { intToIpv4, ipv4ToInt, parseCidr } from "../net.ts";
import type { KubeletConfig } from "./config.ts";
import { BUILTIN_IMAGES, parseImageRules, type ImageRule } from "./images.ts";
import { unpackImage, type UnpackedImage } from "./oci.ts";
import { podKey, PodRunner, type PodHost } from "./pod.ts";
import { startLogServer } from "./server.ts";
import type { List, Pod } from "./types.ts";

const HEARTBEAT_MS = 10_000;

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
}

function microTime(): string {
  return new Date().toISOString().replace(/Z$/, "000Z");
}

export class Kubelet implements PodHost {
  readonly config: KubeletConfig;
  readonly kube: Kube;
  readonly rules: readonly ImageRule[];
  readonly #log: (message: string) => void;
  /** Latest object of every pod we know (all namespaces), by uid. */
  readonly #pods = new Map<string, Pod>();
  readonly #runners = new Map<string, PodRunner>();
  readonly #byKey = new Map<string, PodRunner>();
  readonly #queues = new Map<string, Promise<void>>();
  readonly #ips = new Map<string, number>();
  #nextIP: number;
  readonly #firstIP: number;
  readonly #lastIP: number;
  #server: Server | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(config: KubeletConfig, kube: Kube, log: (message: string) => void) {
    this.config = config;
    this.kube = kube;
    this.rules = [...parseImageRules(config.images), ...BUILTIN_IMAGES];
    this.#log = log;
    const cidr = parseCidr(config.podCIDR);
    const base = ipv4ToInt(cidr.network);
    this.#firstIP = base + 2; // .1 stays free (a gateway by convention)
    this.#lastIP = base + 2 ** (32 - cidr.prefix) - 2;
    this.#nextIP = this.#firstIP;
  }

  log(message: string): void {
    this.#log(message);
  }

  // --- PodHost -------------------------------------------------------------------------------

  readonly #images = new Map<string, Promise<UnpackedImage>>();

  /** An OCI archive unpacked for runc, once per kubelet (and per manifest digest on disk). */
  ociImage(archive: string): Promise<UnpackedImage> {
    let image = this.#images.get(archive);
    if (image === undefined) {
      image = unpackImage(archive, join(this.config.runDir, "images"));
      image.catch(() => this.#images.delete(archive));
      this.#images.set(archive, image);
    }
    return image;
  }

  allocateIP(uid: string): string {
    const existing = this.#ips.get(uid);
    if (existing !== undefined) return intToIpv4(existing);
    const used = new Set(this.#ips.values());
    const size = this.#lastIP - this.#firstIP + 1;
    for (let i = 0; i < size; i++) {
      const candidate = this.#firstIP + ((this.#nextIP - this.#firstIP + i) % size);
      if (!used.has(candidate)) {
        this.#ips.set(uid, candidate);
        this.#nextIP = candidate + 1 > this.#lastIP ? this.#firstIP : candidate + 1;
        return intToIpv4(candidate);
      }
    }
    throw new Error(`pod CIDR ${this.config.podCIDR} is full`);
  }

  releaseIP(uid: string): void {
    this.#ips.delete(uid);
  }

  event(pod: Pod, type: "Normal" | "Warning", reason: string, message: string, component = "kubelet"): void {
    const ns = pod.metadata.namespace ?? "default";
    const time = now();
    const body = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${pod.metadata.name}.${randomBytes(8).toString("hex")}`, namespace: ns },
      involvedObject: {
        apiVersion: "v1",
        kind: "Pod",
        namespace: ns,
        name: pod.metadata.name,
        uid: pod.metadata.uid,
      },
      reason,
      message,
      type,
      source: { component, host: this.config.nodeName },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      reportingComponent: component,
      reportingInstance: this.config.nodeName,
    };
    this.kube.request("POST", `/api/v1/namespaces/${ns}/events`, body).catch((error: unknown) => {
      if (!isNotFound(error)) this.#log(`event ${reason} for ${podKey(pod)}: ${describe(error)}`);
    });
  }

  /** The runner of a pod by namespace/name (for the log server). */
  runner(namespace: string, name: string): PodRunner | undefined {
    return this.#byKey.get(`${namespace}/${name}`);
  }

  // --- node ----------------------------------------------------------------------------------

  async #registerNode(): Promise<void> {
    const name = this.config.nodeName;
    const nodeArch = arch() === "x64" ? "amd64" : arch();
    try {
      await this.kube.request("GET", `/api/v1/nodes/${name}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.kube.request("POST", "/api/v1/nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name,
          labels: {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": nodeArch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": nodeArch,
          },
        },
        spec: { podCIDR: this.config.podCIDR, podCIDRs: [this.config.podCIDR] },
      });
      this.#log(`registered node ${name}`);
    }
    await this.#nodeStatus();
  }

  async #nodeStatus(): Promise<void> {
    const time = now();
    const condition = (type: string, status: "True" | "False", reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: time,
      lastTransitionTime: this.#started,
    });
    const capacity = {
      cpu: String(cpus().length),
      memory: `${Math.floor(totalmem() / 1024)}Ki`,
      pods: "250",
      "ephemeral-storage": "100Gi",
    };
    await this.kube.request(
      "PATCH",
      `/api/v1/nodes/${this.config.nodeName}/status`,
      {
        status: {
          conditions: [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "fake kubelet"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "fake kubelet"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "fake kubelet"),
            condition("Ready", "True", "KubeletReady", "gatehouse fake kubelet is posting ready status"),
          ],
          addresses: [
            { type: "InternalIP", address: this.config.nodeIP },
            { type: "Hostname", address: this.config.nodeName },
          ],
          daemonEndpoints: { kubeletEndpoint: { Port: this.config.port } },
          capacity,
          allocatable: capacity,
          nodeInfo: {
            machineID: "",
            systemUUID: "",
            bootID: "",
            kernelVersion: "",
            osImage: "gatehouse mini-cluster",
            containerRuntimeVersion: "gatehouse-fake-kubelet://0.1.0",
            kubeletVersion: this.config.kubeletVersion,
            kubeProxyVersion: "",
            operatingSystem: "linux",
            architecture: arch() === "x64" ? "amd64" : arch(),
          },
        },
      },
      { contentType: "application/strategic-merge-patch+json" },
    );
  }

  readonly #started = now();

  async #renewLease(): Promise<void> {
    const name = this.config.nodeName;
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`;
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: microTime() };
    try {
      await this.kube.request("PATCH", path, { spec });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      const node = await this.kube.request<{ metadata: { uid: string } }>("GET", `/api/v1/nodes/${name}`);
      await this.kube.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
        apiVersion: "coordination.k8s.io/v1",
        kind: "Lease",
        metadata: {
          name,
          namespace: "kube-node-lease",
          ownerReferences: [{ apiVersion: "v1", kind: "Node", name, uid: node.metadata.uid }],
        },
        spec,
      });
    }
  }

  #startHeartbeat(): void {
    const beat = async () => {
      try {
        await this.#nodeStatus();
        await this.#renewLease();
      } catch (error) {
        if (isNotFound(error)) {
          this.#log("node object is gone; registering again");
          await this.#registerNode().catch((e: unknown) => this.#log(`register: ${describe(e)}`));
        } else {
          this.#log(`heartbeat: ${describe(error)}`);
        }
      }
      this.#heartbeat = setTimeout(() => void beat(), HEARTBEAT_MS);
    };
    this.#heartbeat = setTimeout(() => void beat(), HEARTBEAT_MS);
  }

  // --- pods ----------------------------------------------------------------------------------

  #enqueue(uid: string): void {
    const previous = this.#queues.get(uid) ?? Promise.resolve();
    const next = previous
      .then(() => this.#sync(uid))
      .catch((error: unknown) => this.#log(`sync ${uid}: ${describe(error)}`));
    this.#queues.set(uid, next);
    void next.then(() => {
      if (this.#queues.get(uid) === next) this.#queues.delete(uid);
    });
  }

  async #sync(uid: string): Promise<void> {
    const pod = this.#pods.get(uid);
    const runner = this.#runners.get(uid);
    if (pod === undefined) {
      if (runner !== undefined) await this.#finish(runner);
      return;
    }
    if (pod.spec.nodeName === undefined || pod.spec.nodeName === "") {
      if (pod.metadata.deletionTimestamp === undefined) await this.#bind(pod);
      return;
    }
    if (pod.spec.nodeName !== this.config.nodeName) return;
    if (pod.metadata.deletionTimestamp !== undefined) {
      if (runner !== undefined) await this.#finish(runner);
      await this.#delete(pod);
      return;
    }
    if (runner === undefined) {
      const created = new PodRunner(pod, this);
      this.#runners.set(uid, created);
      this.#byKey.set(created.key, created);
      this.#log(`starting ${created.key} (${pod.spec.containers.map((c) => c.image).join(", ")})`);
      void created.start();
    } else {
      runner.update(pod);
    }
  }

  async #finish(runner: PodRunner): Promise<void> {
    await runner.stop();
    this.#runners.delete(runner.uid);
    if (this.#byKey.get(runner.key) === runner) this.#byKey.delete(runner.key);
    this.#log(`stopped ${runner.key}`);
  }

  async #bind(pod: Pod): Promise<void> {
    const scheduler = pod.spec.schedulerName ?? "default-scheduler";
    if (scheduler !== "default-scheduler") return;
    const ns = pod.metadata.namespace ?? "default";
    try {
      await this.kube.request("POST", `/api/v1/namespaces/${ns}/pods/${pod.metadata.name}/binding`, {
        apiVersion: "v1",
        kind: "Binding",
        metadata: { name: pod.metadata.name, namespace: ns, uid: pod.metadata.uid },
        target: { apiVersion: "v1", kind: "Node", name: this.config.nodeName },
      });
      this.event(
        pod,
        "Normal",
        "Scheduled",
        `Successfully assigned ${ns}/${pod.metadata.name} to ${this.config.nodeName}`,
        "default-scheduler",
      );
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) return;
      throw error;
    }
  }

  async #delete(pod: Pod): Promise<void> {
    const ns = pod.metadata.namespace ?? "default";
    try {
      await this.kube.request("DELETE", `/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
        preconditions: { uid: pod.metadata.uid },
      });
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return;
      throw error;
    }
  }

  #onPod(type: string, pod: Pod): void {
    const uid = pod.metadata.uid;
    if (type === "DELETED") this.#pods.delete(uid);
    else this.#pods.set(uid, pod);
    this.#enqueue(uid);
  }

  async #list(): Promise<string> {
    const seen = new Set<string>();
    let resourceVersion = "";
    let next: string | undefined;
    do {
      const page = await this.kube.request<List<Pod>>("GET", "/api/v1/pods", undefined, {
        query: { limit: 500, continue: next },
      });
      for (const pod of page.items) {
        seen.add(pod.metadata.uid);
        this.#onPod("ADDED", pod);
      }
      resourceVersion = page.metadata.resourceVersion;
      next =
        page.metadata.continue !== undefined && page.metadata.continue !== ""
          ? page.metadata.continue
          : undefined;
    } while (next !== undefined);
    for (const [uid, pod] of [...this.#pods]) if (!seen.has(uid)) this.#onPod("DELETED", pod);
    return resourceVersion;
  }

  async #watchPods(signal: AbortSignal): Promise<void> {
    let resourceVersion: string | undefined;
    while (!signal.aborted) {
      try {
        resourceVersion ??= await this.#list();
        await this.kube.watch<Pod>(
          "/api/v1/pods",
          { resourceVersion, timeoutSeconds: 300 },
          (event) => {
            const rv = event.object.metadata.resourceVersion;
            if (rv !== undefined) resourceVersion = rv;
            if (event.type !== "BOOKMARK") this.#onPod(event.type, event.object);
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted) return;
        if (!(error instanceof KubeError && error.status === 410)) this.#log(`pod watch: ${describe(error)}`);
        resourceVersion = undefined;
        await sleep(1000);
      }
    }
  }

  // --- lifecycle -----------------------------------------------------------------------------

  /** Runs until `signal` aborts, then stops every pod and cleans up. */
  async run(signal: AbortSignal): Promise<void> {
    await mkdir(join(this.config.runDir, "pids"), { recursive: true });
    await mkdir(join(this.config.runDir, "pods"), { recursive: true });
    this.#server = await startLogServer(this.config, this);
    this.#log(`log server on https://${this.config.nodeIP}:${this.config.port}`);
    await this.#registerNode();
    await this.#renewLease();
    this.#startHeartbeat();
    this.#log(`node ${this.config.nodeName} ready (pod CIDR ${this.config.podCIDR})`);
    await this.#watchPods(signal);
    await this.shutdown();
  }

  async shutdown(): Promise<void> {
    if (this.#heartbeat !== undefined) clearTimeout(this.#heartbeat);
    const runners = [...this.#runners.values()];
    if (runners.length > 0) this.#log(`stopping ${runners.length} pods`);
    await Promise.all(
      runners.map((r) =>
        r.stop(2000).catch((error: unknown) => this.#log(`stop ${r.key}: ${describe(error)}`)),
      ),
    );
    this.#runners.clear();
    this.#byKey.clear();
    await new Promise<void>((resolve) => {
      if (this.#server === undefined) resolve();
      else {
        this.#server.closeAllConnections();
        this.#server.close(() => resolve());
      }
    });
  }
}
