// The mini-cluster's service networking (test infrastructure; there is no kube-proxy and no cloud
// provider): watches Services and EndpointSlices; assigns load-balancer addresses
// (`status.loadBalancer.ingress[{ip, ipMode: VIP}]`, see lb.ts) and programs the node's nftables
// table (rules.ts) and routes (host.ts). Changes are coalesced: one sync at most every
// `coalesceMs` (default 20 ms), so a change is programmed within ~100 ms.
import { randomBytes } from "node:crypto";
import { describe, isConflict, isNotFound, type Kube } from "../kube.ts";
import { cidrContains, parseCidr } from "../net.ts";
import { Informer } from "./informer.ts";
import { isOurs, planAddresses, requestOf, type LoadBalancerOptions } from "./lb.ts";
import { renderRuleset, servicePorts, type Endpoint, type RulesetOptions } from "./rules.ts";
import type { EndpointSlice, Service } from "./types.ts";

/** Configuration of the services process (`<run dir>/services.json`). */
export interface ServicesConfig {
  kubeconfig: string;
  /** nftables table (family ip), e.g. gatehouse_mc_default. */
  table: string;
  bridge: string;
  nodeIP: string;
  /** The bridge subnet, e.g. 10.244.0.0/16. */
  nodeSubnet: string;
  serviceCIDR: string;
  /** The API server (the `kubernetes` Service's endpoint). */
  apiserver: Endpoint;
  /** Automatic load-balancer addresses (default 10.245.0.0/24). */
  loadBalancerPool: string;
  /** Requested addresses (`spec.loadBalancerIP`) are honoured here (default 10.245.0.0/16). */
  loadBalancerRange: string;
  /** Services with this loadBalancerClass are served too (those without a class always). */
  loadBalancerClass: string;
  /** Masquerade all service traffic (set when bridged traffic bypasses conntrack). */
  masqueradeAll: boolean;
}

export const DEFAULT_LB_POOL = "10.245.0.0/24";
export const DEFAULT_LB_RANGE = "10.245.0.0/16";
export const DEFAULT_LB_CLASS = "gatehouse.dev/minicluster";

/** What the proxy does to the host (host.ts in production). */
export interface Dataplane {
  apply(script: string, loadBalancerIPs: readonly string[]): Promise<void>;
}

export class ServiceProxy {
  readonly #config: ServicesConfig;
  readonly #kube: Kube;
  readonly #dataplane: Dataplane;
  readonly #log: (line: string) => void;
  readonly #services: Informer<Service>;
  readonly #slices: Informer<EndpointSlice>;
  readonly #lb: LoadBalancerOptions;
  readonly #ruleset: RulesetOptions;
  readonly #coalesceMs: number;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  #again = false;
  #applied: string | undefined;
  /** Problems reported per Service (an Event once per distinct problem). */
  readonly #problems = new Map<string, string>();
  /** Services we gave an address (to clear it when one stops being ours). */
  readonly #assigned = new Set<string>();
  #onSynced: (() => void) | undefined;
  readonly synced: Promise<void>;

  constructor(
    config: ServicesConfig,
    kube: Kube,
    dataplane: Dataplane,
    log: (line: string) => void,
    coalesceMs = 20,
  ) {
    this.#config = config;
    this.#kube = kube;
    this.#dataplane = dataplane;
    this.#log = log;
    this.#coalesceMs = coalesceMs;
    this.#lb = {
      pool: parseCidr(config.loadBalancerPool),
      range: parseCidr(config.loadBalancerRange),
      loadBalancerClass: config.loadBalancerClass,
    };
    this.#ruleset = {
      table: config.table,
      bridge: config.bridge,
      nodeSubnet: config.nodeSubnet,
      nodeIP: config.nodeIP,
      masqueradeAll: config.masqueradeAll,
    };
    const changed = () => this.#schedule();
    this.#services = new Informer<Service>(kube, "/api/v1/services", changed, log);
    this.#slices = new Informer<EndpointSlice>(
      kube,
      "/apis/discovery.k8s.io/v1/endpointslices",
      changed,
      log,
    );
    this.synced = new Promise((resolve) => (this.#onSynced = resolve));
  }

  /** Runs until `signal` aborts (the caller tears the dataplane down). */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#services.run(signal), this.#slices.run(signal)]);
    clearTimeout(this.#timer);
    clearTimeout(this.#retry);
    await this.#syncing;
    clearTimeout(this.#retry);
  }

  #schedule(): void {
    if (this.#syncing !== undefined) {
      this.#again = true;
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#syncing = this.#sync()
        .catch((error: unknown) => {
          this.#log(`sync: ${describe(error)}; retrying in 1 s`);
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => this.#schedule(), 1000);
        })
        .finally(() => {
          this.#syncing = undefined;
          if (this.#again) {
            this.#again = false;
            this.#schedule();
          }
        });
    }, this.#coalesceMs);
  }

  async #sync(): Promise<void> {
    if (!this.#services.synced || !this.#slices.synced) return;
    const services = this.#services.items();
    await this.#assignAddresses(services);
    const rules = servicePorts(services, this.#slices.items(), {
      apiserver: this.#config.apiserver,
      loadBalancerRange: this.#lb.range,
    });
    const script = renderRuleset(rules, this.#ruleset);
    const lbIPs = new Set<string>();
    for (const service of services) {
      if (service.spec.type !== "LoadBalancer") continue;
      for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
        if (ingress.ip !== undefined && cidrContains(this.#lb.range, ingress.ip)) lbIPs.add(ingress.ip);
      }
    }
    if (script !== this.#applied) {
      await this.#dataplane.apply(script, [...lbIPs].sort());
      this.#applied = script;
      const endpoints = rules.reduce((n, r) => n + r.endpoints.length, 0);
      this.#log(
        `programmed ${rules.length} service ports, ${endpoints} endpoints, ${lbIPs.size} load-balancer IPs`,
      );
    }
    this.#onSynced?.();
  }

  async #assignAddresses(services: readonly Service[]): Promise<void> {
    const ours = services.filter((s) => isOurs(s, this.#lb.loadBalancerClass));
    const plans = planAddresses(ours.map(requestOf), this.#lb);
    const keys = new Set<string>();
    for (const service of ours) {
      const key = `${service.metadata.namespace ?? "default"}/${service.metadata.name}`;
      keys.add(key);
      const plan = plans.get(key);
      const current = (service.status?.loadBalancer?.ingress ?? []).map(
        (i) => `${i.ip ?? ""}/${i.ipMode ?? ""}`,
      );
      if (plan === undefined) continue;
      if ("ip" in plan) {
        this.#problems.delete(key);
        this.#assigned.add(key);
        if (current.length === 1 && current[0] === `${plan.ip}/VIP`) continue;
        await this.#setIngress(service, [{ ip: plan.ip, ipMode: "VIP" }]);
        this.#log(`${key}: load-balancer address ${plan.ip}`);
        // The status update comes back through the watch and triggers the next sync.
      } else {
        if (this.#problems.get(key) !== plan.problem) {
          this.#problems.set(key, plan.problem);
          this.#log(`${key}: no load-balancer address: ${plan.problem}`);
          this.#event(service, "AllocationFailed", `no load-balancer address: ${plan.problem}`);
        }
        if (current.length > 0) await this.#setIngress(service, []);
      }
    }
    for (const service of services) {
      const key = `${service.metadata.namespace ?? "default"}/${service.metadata.name}`;
      if (keys.has(key) || !this.#assigned.has(key)) continue;
      this.#assigned.delete(key);
      if ((service.status?.loadBalancer?.ingress ?? []).length > 0) await this.#setIngress(service, []);
    }
    for (const key of [...this.#assigned]) {
      if (!services.some((s) => `${s.metadata.namespace ?? "default"}/${s.metadata.name}` === key)) {
        this.#assigned.delete(key);
        this.#problems.delete(key);
      }
    }
  }

  async #setIngress(service: Service, ingress: Array<{ ip: string; ipMode: "VIP" }>): Promise<void> {
    const ns = service.metadata.namespace ?? "default";
    try {
      await this.#kube.request(
        "PATCH",
        `/api/v1/namespaces/${ns}/services/${service.metadata.name}/status`,
        { status: { loadBalancer: ingress.length > 0 ? { ingress } : {} } },
        { contentType: "application/merge-patch+json" },
      );
    } catch (error) {
      if (isNotFound(error) || isConflict(error)) return;
      throw error;
    }
  }

  #event(service: Service, reason: string, message: string): void {
    const ns = service.metadata.namespace ?? "default";
    const time = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
    const body = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${service.metadata.name}.${randomBytes(8).toString("hex")}`, namespace: ns },
      involvedObject: {
        apiVersion: "v1",
        kind: "Service",
        namespace: ns,
        name: service.metadata.name,
        ...(service.metadata.uid !== undefined ? { uid: service.metadata.uid } : {}),
      },
      reason,
      message,
      type: "Warning",
      source: { component: "minicluster-loadbalancer" },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      reportingComponent: "minicluster-loadbalancer",
      reportingInstance: this.#config.nodeIP,
    };
    this.#kube.request("POST", `/api/v1/namespaces/${ns}/events`, body).catch((error: unknown) => {
      if (!isNotFound(error)) this.#log(`event ${reason}: ${describe(error)}`);
    });
  }
}
