// `--infrastructure kubernetes`: every accepted Gateway gets its own data-plane pods (a Deployment
// running `gatehouse dataplane`), a Service, a ServiceAccount and the Secret with its client
// certificate (desired.ts), applied by the reconciler (reconciler.ts). The pods receive their
// Gateway's configuration from the controller (src/distribute); this step reports what they did
// with it.
//
// Per Gateway in the statuses (the translator's: our classes only):
// - Accepted True (listeners valid or not): its objects are applied.
// - Accepted False (e.g. InvalidParameters): its existing objects are left as they are (the pods keep
//   serving what they have), none are created.
// - Gateways no longer ours (class changed or gone, Gateway deleted): their objects are deleted (the
//   garbage collector also does it for a deleted Gateway through the owner references).
// Status of an accepted Gateway:
// - status.addresses: the Service's addresses (LoadBalancer: status.loadBalancer.ingress, IP →
//   IPAddress, hostname → Hostname; ClusterIP and NodePort: the cluster IPs);
// - Programmed True only when the Service has an address and a connected pod applied the Gateway's
//   current configuration (configHash(irForGateway(ir, id))); else False: the API's message when its
//   objects could not be applied, AddressNotUsable (a requested address the Service cannot take, or
//   the load balancer gave another), AddressNotAssigned (no address yet), Invalid (a pod reported an
//   error for the current configuration), Pending (no pod has applied it yet). A Gateway the
//   translator did not program (no programmed listener) keeps the translator's Programmed False.
// - Listeners the pods report unavailable for the current configuration go through withFeedback.
// The IR is returned with no addresses: the pods listen on all their interfaces.
import type {
  ClientCertificateIssuer,
  DataplaneStateSource,
  IssuedCertificate,
} from "../../distribute/contract.ts";
import { configHash, irForGateway } from "../../distribute/contract.ts";
import type { IR, IRGateway } from "../../ir/types.ts";
import type { KubeApi } from "../../provider/kubernetes/client.ts";
import { describeError } from "../../provider/kubernetes/client.ts";
import type { Gateway } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import { withFeedback, type UnavailableListener } from "../../status/feedback.ts";
import type { Condition, StatusEntry } from "../../status/types.ts";
import { classParameters, gatewayParameters } from "../../translate/parameters.ts";
import type { GatewayInfrastructure, InfrastructureInput, InfrastructureOutput } from "../types.ts";
import {
  desiredObjects,
  gatewayLabelValue,
  objectName,
  type DesiredOptions,
  type DesiredPort,
} from "./desired.ts";
import { InfrastructureReconciler } from "./reconciler.ts";

export interface KubernetesInfrastructureOptions {
  api: KubeApi;
  issuer: ClientCertificateIssuer;
  dataplane: DataplaneStateSource;
  /** The data-plane image (`repository:tag`). */
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  imagePullSecrets?: readonly string[];
  /** `host:port` of the controller's config stream, as the pods reach it. */
  controllerAddress: string;
  /** The controller's namespace (default "gatehouse-system"). */
  controllerNamespace?: string;
  /** SSA field manager (default "gatehouse"). */
  fieldManager?: string;
  log?: { info(message: string): void; warn(message: string): void };
  /** The clock for certificate renewal (default Date.now). */
  now?: () => number;
  /**
   * Objects are applied in the background (statuses never wait for the API server); called when a
   * round of applies ends with other failures than before, so the statuses can be refreshed.
   */
  onReconciled?: () => void;
}

type ProgrammedProblem = { reason: string; message: string };

/** Renew a client certificate in the last third of its lifetime. */
export function needsRenewal(cert: Pick<IssuedCertificate, "notBefore" | "notAfter">, now: number): boolean {
  const start = cert.notBefore.getTime();
  const end = cert.notAfter.getTime();
  return now >= start + ((end - start) * 2) / 3;
}

/** A message from a pod or the API, trimmed and on one line. */
export function oneLine(text: string, max = 300): string {
  const flat = text
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f]+/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** The listener ports of a Gateway: its own listeners', and those of its IR (ListenerSets'). */
export function listenerPorts(gateway: Gateway, ir: IRGateway | undefined): DesiredPort[] {
  const ports: DesiredPort[] = [];
  const add = (protocol: string, port: number): void => {
    if (["HTTP", "HTTPS", "TLS", "TCP"].includes(protocol)) ports.push({ port, protocol: "TCP" });
    else if (protocol === "UDP") ports.push({ port, protocol: "UDP" });
  };
  for (const l of gateway.spec.listeners) add(l.protocol, l.port);
  for (const l of ir?.listeners ?? []) add(l.protocol, l.port);
  return ports;
}

interface ServiceView {
  spec?: { type?: string; clusterIP?: string; clusterIPs?: string[] };
  status?: { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } };
}

/** The addresses of a Gateway's Service as status.addresses entries. */
export function serviceAddresses(service: ServiceView | undefined): Array<{ type: string; value: string }> {
  if (service === undefined) return [];
  const type = service.spec?.type ?? "ClusterIP";
  if (type === "LoadBalancer") {
    return (service.status?.loadBalancer?.ingress ?? []).flatMap((i) =>
      i.ip !== undefined && i.ip !== ""
        ? [{ type: "IPAddress", value: i.ip }]
        : i.hostname !== undefined && i.hostname !== ""
          ? [{ type: "Hostname", value: i.hostname }]
          : [],
    );
  }
  const ips =
    service.spec?.clusterIPs ?? (service.spec?.clusterIP !== undefined ? [service.spec.clusterIP] : []);
  return ips.filter((ip) => ip !== "" && ip !== "None").map((value) => ({ type: "IPAddress", value }));
}

export class KubernetesInfrastructure implements GatewayInfrastructure {
  readonly #o: KubernetesInfrastructureOptions;
  readonly #reconciler: InfrastructureReconciler;
  readonly #certificates = new Map<string, IssuedCertificate>();
  #stored: Map<string, { certPem: string; keyPem: string; caPem: string }> | undefined;
  readonly #desiredOptions: DesiredOptions;

  constructor(options: KubernetesInfrastructureOptions) {
    this.#o = options;
    const controllerNamespace = options.controllerNamespace ?? "gatehouse-system";
    this.#reconciler = new InfrastructureReconciler({
      api: options.api,
      controllerNamespace,
      ...(options.fieldManager !== undefined ? { fieldManager: options.fieldManager } : {}),
      ...(options.log !== undefined ? { log: options.log } : {}),
      ...(options.onReconciled !== undefined ? { onSettled: options.onReconciled } : {}),
    });
    this.#desiredOptions = {
      image: options.image,
      controllerAddress: options.controllerAddress,
      controllerNamespace,
      ...(options.imagePullPolicy !== undefined ? { imagePullPolicy: options.imagePullPolicy } : {}),
      ...(options.imagePullSecrets !== undefined ? { imagePullSecrets: options.imagePullSecrets } : {}),
    };
  }

  /** The reconciler (its label selector; reset() after a leadership change). */
  get reconciler(): InfrastructureReconciler {
    return this.#reconciler;
  }

  async prepare(input: InfrastructureInput): Promise<InfrastructureOutput> {
    const { ir, snapshot } = input;
    const problems = new Map<string, ProgrammedProblem>();
    const requested = new Map<string, string>();
    const desired: Array<{ gateway: string; objects: ReturnType<typeof desiredObjects>["objects"] }> = [];
    const keep = new Set<string>();
    const labelOf = new Map<string, string>(); // gateway id → reconciler key
    // Accepted Gateways without a valid listener are not in the IR, yet they have pods: those get
    // an empty configuration, so that they apply something and become ready (a namespace whose
    // pods never become ready looks broken, e.g. to kubectl rollout status).
    const withoutListeners: Gateway[] = [];
    for (const entry of input.statuses) {
      if (entry.kind !== "Gateway") continue;
      const id = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}`;
      const gateway = snapshot.gateways.get(id);
      if (gateway === undefined) continue;
      const key = `${gateway.metadata.namespace ?? "default"}/${gatewayLabelValue(gateway.metadata.name)}`;
      labelOf.set(id, key);
      keep.add(key);
      if (!isAccepted(entry)) continue;
      try {
        const parameters = mergedParameters(snapshot, gateway);
        const certificate = await this.#certificate(id, gateway);
        const d = desiredObjects({
          gateway,
          parameters,
          ports: listenerPorts(
            gateway,
            ir.gateways.find((g) => g.id === id),
          ),
          certificate,
          options: this.#desiredOptions,
        });
        desired.push({ gateway: key, objects: d.objects });
        if (!ir.gateways.some((g) => g.id === id)) withoutListeners.push(gateway);
        if (d.addressProblem !== undefined) problems.set(id, d.addressProblem);
        if (d.requestedAddress !== undefined) requested.set(id, d.requestedAddress);
      } catch (error) {
        problems.set(id, { reason: "Invalid", message: oneLine(describeError(error)) });
      }
    }
    this.#reconciler.submit(desired, keep);
    // Failures of the last finished round (a Gateway's objects not applied yet are no failure:
    // its Programmed waits for its Service's address and its pods anyway).
    for (const [id, key] of labelOf) {
      const failure = this.#reconciler.failures.get(key);
      if (failure === undefined || problems.has(id)) continue;
      const message =
        failure.stage === "list"
          ? oneLine(failure.message)
          : `Cannot apply the Gateway's objects: ${oneLine(failure.message)}`;
      problems.set(id, {
        reason: failure.statusCode !== undefined && failure.statusCode < 500 ? "Invalid" : "Pending",
        message,
      });
    }

    // What the pods are sent (and report the hash of): the Gateways with no addresses of their own
    // (the pods bind all interfaces; the Service holds the address), plus the empty configurations.
    const published: IR = {
      ...ir,
      gateways: [
        ...ir.gateways.map((g) => ({ ...g, addresses: [] })),
        ...withoutListeners.map((g) => ({
          id: `${g.metadata.namespace ?? "default"}/${g.metadata.name}`,
          namespace: g.metadata.namespace ?? "default",
          name: g.metadata.name,
          gatewayClassName: g.spec.gatewayClassName,
          addresses: [],
          listeners: [],
        })),
      ],
    };
    const unavailable: UnavailableListener[] = [];
    const statuses = input.statuses.map((entry): StatusEntry => {
      if (entry.kind !== "Gateway" || !isAccepted(entry)) return entry;
      const id = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}`;
      const gateway = snapshot.gateways.get(id);
      if (gateway === undefined) return entry;
      const service = snapshot.services.get(
        `${gateway.metadata.namespace ?? "default"}/${objectName(gateway.metadata.name)}`,
      ) as ServiceView | undefined;
      const addresses = problems.has(id) ? [] : serviceAddresses(service);
      const withAddresses = setAddresses(entry, addresses);
      const inIR = ir.gateways.some((g) => g.id === id);
      const problem =
        problems.get(id) ??
        this.#programmedProblem(id, published, addresses, requested.get(id), inIR, unavailable);
      if (problem === undefined) return withAddresses;
      return notProgrammed(withAddresses, problem, input.now);
    });
    return {
      ir: published,
      statuses:
        unavailable.length > 0
          ? withFeedback(statuses, { unavailableListeners: unavailable }, input.now)
          : statuses,
    };
  }

  #programmedProblem(
    id: string,
    ir: IR,
    addresses: ReadonlyArray<{ type: string; value: string }>,
    requested: string | undefined,
    inIR: boolean,
    unavailable: UnavailableListener[],
  ): ProgrammedProblem | undefined {
    if (addresses.length === 0)
      return {
        reason: "AddressNotAssigned",
        message: "The Gateway's Service has no address yet",
      };
    if (requested !== undefined && !addresses.some((a) => a.value === requested))
      return {
        reason: "AddressNotUsable",
        message: `spec.addresses: ${requested} was requested (spec.loadBalancerIP) but the load balancer assigned ${addresses.map((a) => a.value).join(", ")}; check that the address is available to the load balancer`,
      };
    if (!inIR) return undefined; // the translator's Programmed False stands
    const hash = configHash(irForGateway(ir, id));
    const state = this.#o.dataplane.gateway(id);
    const current = state.pods.filter((p) => p.hash === hash);
    for (const p of current) unavailable.push(...p.unavailableListeners);
    if (current.some((p) => p.applied)) return undefined;
    const failed = current.find((p) => p.error !== undefined);
    if (failed !== undefined)
      return {
        reason: "Invalid",
        message: `Data-plane pod ${failed.pod} did not apply the configuration: ${oneLine(failed.error ?? "")}`,
      };
    return {
      reason: "Pending",
      message:
        state.pods.length === 0
          ? "No data-plane pod is connected yet"
          : `No data-plane pod has applied the current configuration yet (${state.pods.length} connected)`,
    };
  }

  async #certificate(id: string, gateway: Gateway): Promise<IssuedCertificate> {
    const existing = this.#certificates.get(id);
    if (existing !== undefined && !needsRenewal(existing, (this.#o.now ?? Date.now)())) return existing;
    const identity = { namespace: gateway.metadata.namespace ?? "default", name: gateway.metadata.name };
    if (existing === undefined) {
      // After a restart: the certificate in the Gateway's Secret, if still good, instead of a new one.
      const stored = (await this.#storedCertificates()).get(
        `${identity.namespace}/${objectName(identity.name)}`,
      );
      const adopted = stored === undefined ? undefined : this.#o.issuer.adoptClient(identity, stored);
      this.#stored?.delete(`${identity.namespace}/${objectName(identity.name)}`);
      if (adopted !== undefined) {
        this.#certificates.set(id, adopted);
        return adopted;
      }
    }
    const issued = await this.#o.issuer.issueClient(identity);
    this.#certificates.set(id, issued);
    return issued;
  }

  /**
   * The client certificates in our Secrets (`namespace/secret name` → PEMs), listed once per
   * process and consumed as Gateways are first seen; empty when the list fails.
   */
  async #storedCertificates(): Promise<Map<string, { certPem: string; keyPem: string; caPem: string }>> {
    if (this.#stored !== undefined) return this.#stored;
    const stored = new Map<string, { certPem: string; keyPem: string; caPem: string }>();
    try {
      const list = await this.#o.api.request<{
        items?: Array<{ metadata: { name: string; namespace?: string }; data?: Record<string, string> }>;
      }>("GET", "/api/v1/secrets", undefined, { query: { labelSelector: this.#reconciler.selector } });
      for (const item of list.items ?? []) {
        const text = (key: string): string => Buffer.from(item.data?.[key] ?? "", "base64").toString("utf8");
        stored.set(`${item.metadata.namespace ?? ""}/${item.metadata.name}`, {
          certPem: text("tls.crt"),
          keyPem: text("tls.key"),
          caPem: text("ca.crt"),
        });
      }
    } catch (error) {
      this.#o.log?.warn(
        `Cannot list the data planes' Secrets (new certificates are issued): ${oneLine(describeError(error))}`,
      );
    }
    return (this.#stored ??= stored);
  }

  close(): Promise<void> {
    // The pods and their objects outlive the controller (they keep serving).
    this.#certificates.clear();
    this.#stored = undefined;
    return Promise.resolve();
  }
}

/** The Gateway's merged parameters (the translator accepted it, so they are valid). */
function mergedParameters(snapshot: Snapshot, gateway: Gateway) {
  const cls = snapshot.gatewayClasses.get(gateway.spec.gatewayClassName);
  const base = cls === undefined ? { ok: true as const, spec: {} } : classParameters(snapshot, cls);
  const merged = base.ok ? gatewayParameters(snapshot, gateway, base.spec) : base;
  if (!merged.ok)
    throw new Error(`internal: parameters of an accepted Gateway are invalid: ${merged.message}`);
  return merged.spec;
}

function isAccepted(entry: StatusEntry): boolean {
  const conditions = (entry.status["conditions"] as Condition[] | undefined) ?? [];
  return conditions.some((c) => c.type === "Accepted" && c.status === "True");
}

function setAddresses(
  entry: StatusEntry,
  addresses: ReadonlyArray<{ type: string; value: string }>,
): StatusEntry {
  const rest = { ...entry.status };
  delete rest["addresses"];
  return { ...entry, status: addresses.length > 0 ? { addresses: [...addresses], ...rest } : rest };
}

function notProgrammed(entry: StatusEntry, problem: ProgrammedProblem, now: string): StatusEntry {
  const conditions = (entry.status["conditions"] as Condition[] | undefined) ?? [];
  const generation = conditions[0]?.observedGeneration;
  const stamp = (type: string, reason: string, message: string): Condition => ({
    type,
    status: "False",
    reason,
    message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: now,
  });
  const listeners = (entry.status["listeners"] as Array<{ conditions?: Condition[] }> | undefined) ?? [];
  const listenerReason = problem.reason === "Invalid" ? "Invalid" : "Pending";
  return {
    ...entry,
    status: {
      ...entry.status,
      conditions: conditions.map((c) =>
        c.type === "Programmed" ? stamp("Programmed", problem.reason, problem.message) : c,
      ),
      listeners: listeners.map((l) => ({
        ...l,
        conditions: (l.conditions ?? []).map((c) =>
          c.type === "Programmed" && c.status === "True"
            ? stamp("Programmed", listenerReason, problem.message)
            : c,
        ),
      })),
    },
  };
}
