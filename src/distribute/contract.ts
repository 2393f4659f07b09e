// The seam between the controller's side of `--infrastructure kubernetes` and its parts: what the
// config distributor (src/distribute) tells the infrastructure reconciler (src/infra/kubernetes)
// about each Gateway's data-plane pods, and how one Gateway's configuration is cut out of the whole
// IR. A data-plane pod receives `irForGateway(ir, id)` and nothing else: its Gateway, the backends
// its routes use, and only the certificates inside those.
import { createHash } from "node:crypto";
import type { IR, IRBackend, IRHTTPFilter, IRWeightedBackend } from "../ir/types.ts";
import type { UnavailableListener } from "../status/feedback.ts";

/** One Gateway's configuration: that Gateway and the backends its listeners' routes reference. */
export function irForGateway(ir: IR, gatewayId: string): IR {
  const gateway = ir.gateways.find((g) => g.id === gatewayId);
  if (gateway === undefined) return { gateways: [], backends: [] };
  const used = new Set<string>();
  const fromFilters = (filters: readonly IRHTTPFilter[]): void => {
    for (const f of filters) if (f.type === "RequestMirror") used.add(f.mirror.backend);
  };
  const fromBackends = (list: readonly IRWeightedBackend[]): void => {
    for (const wb of list) {
      if (wb.backend !== undefined) used.add(wb.backend);
      fromFilters(wb.filters);
    }
  };
  for (const l of gateway.listeners) {
    for (const vh of "virtualHosts" in l ? (l.virtualHosts ?? []) : []) {
      for (const r of vh.rules) {
        fromFilters(r.filters);
        fromBackends(r.backends);
      }
    }
    for (const r of [
      ...("tlsRoutes" in l ? (l.tlsRoutes ?? []) : []),
      ...("tcpRoutes" in l ? (l.tcpRoutes ?? []) : []),
      ...("udpRoutes" in l ? (l.udpRoutes ?? []) : []),
    ])
      fromBackends(r.backends);
  }
  const positions = backendPositions(ir.backends);
  const at: number[] = [];
  for (const id of used) for (const i of positions.get(id) ?? []) at.push(i);
  // The IR's order (the hash depends on it), without a pass over every backend per Gateway.
  at.sort((a, b) => a - b);
  return { gateways: [gateway], backends: at.map((i) => ir.backends[i] as IRBackend) };
}

/**
 * Positions of each backend id in an IR's backend list, computed once per list (an IR is not
 * changed once built): publish cuts every Gateway out of the same IR, and scanning all backends for
 * each one was O(Gateways × backends), ≈ 60 ms of each publish at 100 Gateways × 50 routes
 * (bench/distribution.ts).
 */
const positionsCache = new WeakMap<readonly IRBackend[], { length: number; map: Map<string, number[]> }>();
function backendPositions(backends: readonly IRBackend[]): ReadonlyMap<string, readonly number[]> {
  const cached = positionsCache.get(backends);
  if (cached !== undefined && cached.length === backends.length) return cached.map;
  const map = new Map<string, number[]>();
  backends.forEach((b, i) => {
    const list = map.get(b.id);
    if (list === undefined) map.set(b.id, [i]);
    else list.push(i);
  });
  positionsCache.set(backends, { length: backends.length, map });
  return map;
}

/**
 * A content hash of one Gateway's configuration (sha256 of its canonical JSON, hex). The IR is built
 * deterministically (sorted, no timestamps), so equal configurations hash equal across controller
 * restarts and replicas: a re-sync after a failover costs the data plane nothing.
 */
export function configHash(gatewayIR: IR): string {
  return createHash("sha256").update(JSON.stringify(gatewayIR)).digest("hex");
}

/** What one data-plane pod last reported about its Gateway's configuration. */
export interface PodReport {
  /** `namespace/name` of the pod (from its client certificate's Gateway and its own report). */
  pod: string;
  /** configHash of the configuration the report is about. */
  hash: string;
  /** True when that configuration is what the pod serves now. */
  applied: boolean;
  /** Why it is not applied (HAProxy's message where HAProxy refused it). */
  error?: string;
  /** Listeners of that configuration the pod could not serve (e.g. a port it cannot bind). */
  unavailableListeners: readonly UnavailableListener[];
  /** When the pod connected (RFC 3339). */
  connectedAt: string;
}

/** The distributor's view of one Gateway. */
export interface GatewayConfigState {
  /** configHash of the configuration published for this Gateway now; undefined: none published. */
  hash: string | undefined;
  /** Data-plane pods connected now, with their latest reports. */
  pods: readonly PodReport[];
}

/** Read side of the distributor, for status (Programmed) and the reconciler. */
export interface DataplaneStateSource {
  gateway(gatewayId: string): GatewayConfigState;
  /** Called (coalesced by the caller) when a pod connects, reports or disconnects. Returns an unsubscribe. */
  onChange(listener: (gatewayId: string) => void): () => void;
}

/** A certificate and key the controller's CA issued (PEM), with the CA's certificate. */
export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  caPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** Issues the client certificate a Gateway's data-plane pods present to the controller. */
export interface ClientCertificateIssuer {
  issueClient(gateway: { namespace: string; name: string }): Promise<IssuedCertificate>;
  /** An earlier certificate of `gateway` (e.g. from its Secret), if still good; else undefined. */
  adoptClient(
    gateway: { namespace: string; name: string },
    stored: { certPem: string; keyPem: string; caPem: string },
  ): IssuedCertificate | undefined;
}
