// Gateways and their listeners: protocols, conflicts, allowedRoutes, TLS references, addresses.
import { isIP } from "node:net";
import type { IRListenerTLS, IRCertificate } from "../ir/types.ts";
import type { Gateway } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import * as cond from "./conditions.ts";
import type { ConditionSpec, ConflictReason } from "./conditions.ts";
import { resolveBackendClientCertificate } from "./backendclientcert.ts";
import { certificateFromSecret } from "./certificates.ts";
import { resolveFrontendValidation, usesInsecureFallback } from "./frontendtls.ts";
import type { GatewayClassNode } from "./gatewayclass.ts";
import type { LabelSelector } from "./labels.ts";
import type { ListenerSetNode } from "./listenersets.ts";
import type { Infrastructure } from "./options.ts";
import { gatewayParameters } from "./parameters.ts";
import type { GatehouseProxySpec } from "../resources/gatehouseproxy.ts";
import { referenceAllowed } from "./referencegrant.ts";

export const GATEWAY_GROUP = "gateway.networking.k8s.io";

export type Listener = Gateway["spec"]["listeners"][number];

export interface RouteGroupKind {
  group: string;
  kind: string;
}

/** The object a listener is declared in: its Gateway, or a ListenerSet attached to it. */
export interface ListenerOwner {
  kind: "Gateway" | "ListenerSet";
  namespace: string;
  name: string;
}

export interface ListenerNode {
  gateway: Gateway;
  /** Where the listener is declared: namespace of `Same` allowedRoutes and of certificate refs. */
  owner: ListenerOwner;
  listener: Listener;
  /** `namespace/gateway/listener` */
  id: string;
  /** Routes may attach: the protocol is supported and the listener is not conflicted. */
  attachable: boolean;
  /** The listener goes into the IR: attachable and every reference resolved. */
  programmed: boolean;
  conditions: ConditionSpec[];
  supportedKinds: RouteGroupKind[];
  allowedNamespaces: { from: "All" | "Same" | "Selector"; selector?: LabelSelector };
  /** Counted while routes attach. */
  attachedRoutes: number;
  tls?: IRListenerTLS;
}

export interface GatewayNode {
  gateway: Gateway;
  /** `namespace/name` */
  key: string;
  accepted: boolean;
  /** Accepted, every requested address usable, and at least one listener programmed: goes into the IR. */
  programmed: boolean;
  conditions: ConditionSpec[];
  listeners: ListenerNode[];
  /** IPAddress values from spec.addresses. */
  addresses: string[];
  /** The certificate presented to TLS backends (spec.tls.backend.clientCertificateRef), if valid. */
  backendClientCertificate?: IRCertificate;
  /** Attached (accepted) ListenerSets in precedence order; filled by resolveListenerSets. */
  listenerSets: ListenerSetNode[];
  /** Merged GatehouseProxy parameters (infrastructure "kubernetes", accepted Gateways). */
  parameters?: GatehouseProxySpec;
}

/** Route kinds each protocol serves, in the order reported in supportedKinds. */
const KINDS_BY_PROTOCOL: Record<string, readonly string[]> = {
  HTTP: ["HTTPRoute", "GRPCRoute"],
  HTTPS: ["HTTPRoute", "GRPCRoute"],
  TLS: ["TLSRoute"],
  TCP: ["TCPRoute"],
  UDP: ["UDPRoute"],
};

/** Resolves every Gateway whose class is ours. Gateways of other classes are not returned. */
export function resolveGateways(
  snapshot: Snapshot,
  classes: ReadonlyMap<string, GatewayClassNode>,
  infrastructure: Infrastructure = "host",
): GatewayNode[] {
  const nodes: GatewayNode[] = [];
  for (const [key, gateway] of snapshot.gateways) {
    const cls = classes.get(gateway.spec.gatewayClassName);
    if (cls === undefined) continue;
    nodes.push(resolveGateway(snapshot, key, gateway, cls, infrastructure));
  }
  return nodes;
}

function resolveGateway(
  snapshot: Snapshot,
  key: string,
  gateway: Gateway,
  cls: GatewayClassNode,
  infrastructure: Infrastructure,
): GatewayNode {
  const listeners = gateway.spec.listeners.map((l) => resolveListener(snapshot, gateway, l));
  markConflicts(listeners);
  for (const l of listeners) finishListener(l);

  const conditions: ConditionSpec[] = [];
  const addresses: string[] = [];
  const addressProblems: string[] = [];
  const unassigned: string[] = [];
  (gateway.spec.addresses ?? []).forEach((a, i) => {
    const type = a.type ?? "IPAddress";
    if (type !== "IPAddress") {
      addressProblems.push(`spec.addresses[${i}]: address type ${type} is not supported (only IPAddress)`);
    } else if (a.value === undefined || a.value === "") {
      // "If an implementation does not support an empty value, they MUST set the "Programmed"
      // condition in status to False with a reason of "AddressNotAssigned"." With per-Gateway
      // infrastructure the Gateway's Service is assigned one (GatewayAddressEmpty).
      if (infrastructure === "host") unassigned.push(`spec.addresses[${i}]`);
    } else if (isIP(a.value) === 0) {
      addressProblems.push(`spec.addresses[${i}]: ${JSON.stringify(a.value)} is not an IP address`);
    } else if (!addresses.includes(a.value)) {
      addresses.push(a.value);
    }
  });

  let accepted = true;
  const valid = listeners.filter((l) => l.attachable);
  const parameters =
    infrastructure === "kubernetes" && cls.accepted
      ? gatewayParameters(snapshot, gateway, cls.parameters)
      : undefined;
  if (!cls.accepted) {
    accepted = false;
    conditions.push(
      cond.gatewayInvalidParameters(`GatewayClass ${cls.gatewayClass.metadata.name} is not accepted`),
    );
  } else if (parameters !== undefined && !parameters.ok) {
    accepted = false;
    conditions.push(cond.gatewayInvalidParameters(parameters.message));
  } else if (infrastructure === "host" && gateway.spec.infrastructure?.parametersRef !== undefined) {
    const ref = gateway.spec.infrastructure.parametersRef;
    accepted = false;
    conditions.push(
      cond.gatewayInvalidParameters(
        `spec.infrastructure.parametersRef: Gatehouse takes no Gateway parameters (got ${ref.group}/${ref.kind} ${ref.name})`,
      ),
    );
  } else if (addressProblems.length > 0) {
    accepted = false;
    conditions.push(cond.gatewayUnsupportedAddress(addressProblems.join("; ")));
  } else if (valid.length < listeners.length) {
    accepted = valid.length > 0;
    const bad = listeners.filter((l) => !l.attachable).map((l) => l.listener.name);
    const good = valid.map((l) => l.listener.name);
    conditions.push(
      cond.gatewayListenersNotValid(
        accepted,
        `Invalid listeners: ${bad.join(", ")}` +
          (good.length > 0 ? `; accepted listeners: ${good.join(", ")}` : ""),
      ),
    );
  } else {
    conditions.push(cond.gatewayAccepted());
  }
  if (usesInsecureFallback(gateway)) {
    conditions.push(
      cond.gatewayInsecureFrontendValidationMode(
        "spec.tls.frontend: AllowInsecureFallback accepts clients without a valid certificate",
      ),
    );
  }
  const notProgrammed = !accepted
    ? cond.gatewayNotProgrammed("The Gateway is not accepted")
    : unassigned.length > 0
      ? cond.gatewayAddressNotAssigned(
          `${unassigned.join(", ")}: Gatehouse cannot assign addresses; give every IPAddress a value`,
        )
      : undefined;
  if (notProgrammed !== undefined) {
    for (const l of listeners) {
      if (l.programmed) {
        l.programmed = false;
        l.conditions = l.conditions.filter((c) => c.type !== "Programmed");
        l.conditions.push(cond.listenerNotProgrammed(notProgrammed.message));
      }
    }
    conditions.push(notProgrammed);
  } else if (!listeners.some((l) => l.programmed)) {
    conditions.push(cond.gatewayNotProgrammed("No listener is programmed"));
  } else {
    conditions.push(cond.gatewayProgrammed());
  }
  const programmed = listeners.some((l) => l.programmed);
  const backend = resolveBackendClientCertificate(
    snapshot,
    gateway,
    listeners.every((l) => l.conditions.some((c) => c.type === "ResolvedRefs" && c.status === "True")),
  );
  conditions.push(backend.condition);
  return {
    gateway,
    key,
    accepted,
    programmed,
    conditions,
    listeners,
    addresses,
    listenerSets: [],
    ...(accepted && parameters?.ok === true ? { parameters: parameters.spec } : {}),
    ...(backend.certificate !== undefined ? { backendClientCertificate: backend.certificate } : {}),
  };
}

export function resolveListener(
  snapshot: Snapshot,
  gateway: Gateway,
  listener: Listener,
  owner: ListenerOwner = {
    kind: "Gateway",
    namespace: gateway.metadata.namespace ?? "default",
    name: gateway.metadata.name,
  },
): ListenerNode {
  const namespace = gateway.metadata.namespace ?? "default";
  const node: ListenerNode = {
    gateway,
    owner,
    listener,
    id:
      owner.kind === "Gateway"
        ? `${namespace}/${gateway.metadata.name}/${listener.name}`
        : `${namespace}/${gateway.metadata.name}/${owner.namespace}/${owner.name}/${listener.name}`,
    attachable: true,
    programmed: true,
    conditions: [],
    supportedKinds: [],
    allowedNamespaces: { from: "Same" },
    attachedRoutes: 0,
  };
  const kinds = KINDS_BY_PROTOCOL[listener.protocol];
  if (kinds === undefined) {
    node.attachable = false;
    node.conditions.push(
      cond.listenerUnsupportedProtocol(
        `Protocol ${listener.protocol} is not supported; use one of HTTP, HTTPS, TLS, TCP, UDP`,
      ),
    );
    return node;
  }

  // allowedRoutes.kinds: "Implementations MUST ... set ResolvedRefs False with InvalidRouteKinds" for
  // kinds they do not support; supportedKinds lists only the valid ones.
  const requested = listener.allowedRoutes?.kinds;
  if (requested === undefined || requested.length === 0) {
    node.supportedKinds = kinds.map((kind) => ({ group: GATEWAY_GROUP, kind }));
  } else {
    const invalid: string[] = [];
    for (const rk of requested) {
      const group = rk.group ?? GATEWAY_GROUP;
      if (group === GATEWAY_GROUP && kinds.includes(rk.kind)) {
        if (!node.supportedKinds.some((k) => k.kind === rk.kind))
          node.supportedKinds.push({ group, kind: rk.kind });
      } else {
        invalid.push(group === "" ? rk.kind : `${group}/${rk.kind}`);
      }
    }
    if (invalid.length > 0) {
      node.conditions.push(
        cond.listenerInvalidRouteKinds(
          `Route kinds not supported on ${listener.protocol} listeners: ${invalid.join(", ")}; supported: ${kinds.join(", ")}`,
        ),
      );
    }
  }
  const ns = listener.allowedRoutes?.namespaces;
  node.allowedNamespaces = { from: ns?.from ?? "Same", ...(ns?.selector ? { selector: ns.selector } : {}) };

  if (listener.protocol === "HTTPS" || listener.protocol === "TLS") resolveTLS(snapshot, node);
  return node;
}

function resolveTLS(snapshot: Snapshot, node: ListenerNode): void {
  const { gateway, listener, owner } = node;
  const mode = listener.tls?.mode ?? "Terminate";
  const certificates: IRCertificate[] = [];
  if (mode === "Terminate") {
    // "A ListenerSet can reference secrets ... in its own namespace without a ReferenceGrant", and
    // "ReferenceGrants applied to a Gateway are not inherited by child ListenerSets".
    const namespace = owner.namespace;
    const refs = listener.tls?.certificateRefs ?? [];
    if (refs.length === 0) {
      node.conditions.push(
        cond.listenerInvalidCertificateRef("tls.certificateRefs: at least one certificate is required"),
      );
    }
    refs.forEach((ref, i) => {
      const field = `tls.certificateRefs[${i}]`;
      const group = ref.group ?? "";
      const kind = ref.kind ?? "Secret";
      const refNs = ref.namespace ?? namespace;
      if (group !== "" || kind !== "Secret") {
        node.conditions.push(
          cond.listenerInvalidCertificateRef(
            `${field}: ${group === "" ? "" : group + "/"}${kind} is not supported; use a core Secret`,
          ),
        );
        return;
      }
      const permitted = referenceAllowed(
        snapshot.referenceGrants,
        { group: GATEWAY_GROUP, kind: owner.kind, namespace },
        { group: "", kind: "Secret", namespace: refNs, name: ref.name },
      );
      if (!permitted) {
        node.conditions.push(
          cond.listenerRefNotPermitted(
            `${field}: Secret ${refNs}/${ref.name} is in another namespace and no ReferenceGrant allows it`,
          ),
        );
        return;
      }
      const secret = snapshot.secrets.get(`${refNs}/${ref.name}`);
      if (secret === undefined) {
        node.conditions.push(
          cond.listenerInvalidCertificateRef(`${field}: Secret ${refNs}/${ref.name} not found`),
        );
        return;
      }
      const result = certificateFromSecret(secret);
      if (!result.ok) {
        node.conditions.push(cond.listenerInvalidCertificateRef(`${field}: ${result.message}`));
        return;
      }
      certificates.push(result.certificate);
    });
  }
  node.tls = { mode, certificates };
  if (listener.protocol === "HTTPS") {
    const frontend = resolveFrontendValidation(snapshot, gateway, listener.port);
    node.conditions.push(...frontend.conditions);
    if (frontend.rejected) node.attachable = false;
    if (frontend.clientValidation !== undefined) node.tls.clientValidation = frontend.clientValidation;
  }
}

/** Transport of a protocol: listeners conflict only with listeners of the same transport and port. */
function transport(protocol: string): "udp" | "tcp" {
  return protocol === "UDP" ? "udp" : "tcp";
}

/**
 * Marks indistinct and incompatible listeners (spec: "ALL indistinct Listeners must not be accepted"):
 * - a TCP listener sharing its port with any other listener: ProtocolConflict for all of them;
 * - HTTP with HTTPS or TLS on one port: ProtocolConflict (one port serves plain text or TLS);
 * - the same hostname on one port, HTTPS and TLS counted together as both select by SNI:
 *   HostnameConflict (TCP/UDP listeners have no hostname, so two on one port conflict).
 */
export function markConflicts(listeners: ListenerNode[]): void {
  const groups = new Map<string, ListenerNode[]>();
  for (const l of listeners) {
    if (!l.attachable) continue;
    const k = `${transport(l.listener.protocol)}/${l.listener.port}`;
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [l]);
    else group.push(l);
  }
  const conflicts = new Map<ListenerNode, { reason: ConflictReason; message: string }>();
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const protocols = new Set(group.map((l) => l.listener.protocol));
    const port = group[0]?.listener.port ?? 0;
    const mixed =
      (protocols.has("TCP") && group.length > 1 && protocols.size > 1) ||
      (protocols.has("HTTP") && (protocols.has("HTTPS") || protocols.has("TLS")));
    if (mixed) {
      const names = group.map((l) => l.listener.name).join(", ");
      for (const l of group) {
        conflicts.set(l, {
          reason: "ProtocolConflict",
          message: `Port ${port} is used by listeners with incompatible protocols (${[...protocols].sort().join(", ")}): ${names}`,
        });
      }
      continue;
    }
    const byHost = new Map<string, ListenerNode[]>();
    for (const l of group) {
      const h = (l.listener.hostname ?? "").toLowerCase();
      const same = byHost.get(h);
      if (same === undefined) byHost.set(h, [l]);
      else same.push(l);
    }
    for (const [host, same] of byHost) {
      if (same.length < 2) continue;
      const names = same.map((l) => l.listener.name).join(", ");
      for (const l of same) {
        conflicts.set(l, {
          reason: "HostnameConflict",
          message: `Listeners ${names} share port ${port} and ${host === "" ? "have no hostname" : `hostname ${host}`}`,
        });
      }
    }
  }
  for (const l of listeners) {
    const conflict = conflicts.get(l);
    if (conflict === undefined) {
      if (l.attachable) l.conditions.push(cond.listenerNoConflicts());
      continue;
    }
    l.attachable = false;
    l.conditions.unshift(cond.listenerNotAcceptedConflict(conflict.reason, conflict.message));
    l.conditions.push(cond.listenerConflicted(conflict.reason, conflict.message));
  }
}

/** Adds the conditions that summarise a listener once conflicts are known. */
export function finishListener(l: ListenerNode): void {
  const unresolved = l.conditions.find((c) => c.type === "ResolvedRefs");
  if (l.attachable) l.conditions.push(cond.listenerAccepted());
  if (unresolved === undefined) l.conditions.push(cond.listenerResolvedRefs());
  l.programmed = l.attachable && unresolved === undefined;
  if (l.programmed) l.conditions.push(cond.listenerProgrammed());
  else {
    const why = l.conditions.find((c) => c.status === "False" || c.type === "Conflicted");
    l.conditions.push(cond.listenerNotProgrammed(why?.message ?? "Listener is not valid"));
  }
}
