// BackendTLSPolicy: which policy applies to a Service port, what upstream TLS it asks for, and the
// conditions each policy reports (per ancestor Gateway; index.ts finds the ancestors).
//
// - Precedence between policies selecting the same Service and sectionName (GEP-713): the oldest
//   by creationTimestamp, then `{namespace}/{name}`; the others are `Accepted: False/Conflicted`.
//   A policy naming the port (sectionName) applies to it before one naming the whole Service.
// - caCertificateRefs: core ConfigMaps in the policy's namespace with PEM certificates under
//   `ca.crt`. Any invalid ref fails the policy's traffic closed (`ResolvedRefs: False`); when none is
//   valid the policy is also `Accepted: False/NoValidCACertificate`.
// - wellKnownCACertificates: `System` (HAProxy's `@system-ca`); anything else is `Invalid`.
// - subjectAltNames: the certificate must match one of them (Hostname or URI), the hostname being
//   only the SNI. HAProxy 2.6 checks one name, the SNI: a list other than just the hostname is
//   checked by the data plane's TLS bridge (src/dataplane/tlsbridge) before any byte is sent.
import { X509Certificate } from "node:crypto";
import type { IRBackend } from "../ir/types.ts";
import type { ServicePort } from "../resources/core.ts";
import type { BackendTLSPolicy } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import type { ConditionSpec } from "./conditions.ts";
import { compareRouteIdentity, routeIdentityOf } from "./precedence.ts";

export type UpstreamTLS = NonNullable<IRBackend["tls"]>;

export interface BackendTLSPolicyNode {
  policy: BackendTLSPolicy;
  /** `namespace/name` */
  key: string;
  /** Accepted and ResolvedRefs, the most important first per type. */
  conditions: ConditionSpec[];
  /** The upstream TLS it asks for; undefined when its traffic must fail (invalid or unresolved). */
  tls: UpstreamTLS | undefined;
  /** Why its traffic fails, when `tls` is undefined. */
  problem?: string;
  conflicted: boolean;
}

export interface BackendTLSIndex {
  readonly nodes: readonly BackendTLSPolicyNode[];
  /** The policy in effect for a port of a Service: the port's own, else the whole Service's. */
  forPort(namespace: string, service: string, port: ServicePort): BackendTLSPolicyNode | undefined;
}

const CA_KEY = "ca.crt";
const cache = new WeakMap<Snapshot, BackendTLSIndex>();

/** The snapshot's BackendTLSPolicies, resolved once per (immutable) snapshot. */
export function backendTLSIndex(snapshot: Snapshot): BackendTLSIndex {
  let index = cache.get(snapshot);
  if (index === undefined) cache.set(snapshot, (index = buildIndex(snapshot)));
  return index;
}

function buildIndex(snapshot: Snapshot): BackendTLSIndex {
  const policies = [...snapshot.backendTLSPolicies.values()].sort((a, b) =>
    compareRouteIdentity(routeIdentityOf(a), routeIdentityOf(b)),
  );
  // target `namespace/service#section` ("" section: the whole Service) → winning policy node
  const winners = new Map<string, BackendTLSPolicyNode>();
  const nodes: BackendTLSPolicyNode[] = [];
  for (const policy of policies) {
    const namespace = policy.metadata.namespace ?? "default";
    const node = resolvePolicy(snapshot, policy, namespace);
    const targets = policy.spec.targetRefs
      .filter((t) => t.group === "" && t.kind === "Service")
      .map((t) => `${namespace}/${t.name}#${t.sectionName ?? ""}`);
    const lostTo = targets.map((t) => winners.get(t)).find((w) => w !== undefined);
    if (lostTo !== undefined) {
      node.conflicted = true;
      node.conditions = [
        {
          type: "Accepted",
          status: "False",
          reason: "Conflicted",
          message: `BackendTLSPolicy ${lostTo.key} selects the same target and takes precedence (older, or first by namespace/name)`,
        },
        ...node.conditions.filter((c) => c.type !== "Accepted"),
      ];
    } else {
      for (const t of targets) winners.set(t, node);
    }
    nodes.push(node);
  }
  return {
    nodes,
    forPort(namespace, service, port) {
      const base = `${namespace}/${service}#`;
      return (
        (port.name !== undefined && port.name !== "" ? winners.get(base + port.name) : undefined) ??
        winners.get(base)
      );
    },
  };
}

function resolvePolicy(
  snapshot: Snapshot,
  policy: BackendTLSPolicy,
  namespace: string,
): BackendTLSPolicyNode {
  const key = `${namespace}/${policy.metadata.name}`;
  const v = policy.spec.validation;
  const node: BackendTLSPolicyNode = { policy, key, conditions: [], tls: undefined, conflicted: false };
  const fail = (accepted: ConditionSpec, resolved: ConditionSpec): BackendTLSPolicyNode => {
    node.conditions = [accepted, resolved];
    node.problem = accepted.status === "False" ? accepted.message : resolved.message;
    return node;
  };
  const resolvedOk: ConditionSpec = {
    type: "ResolvedRefs",
    status: "True",
    reason: "ResolvedRefs",
    message: "All CA certificate references are resolved",
  };

  // CA certificates.
  const pems: string[] = [];
  const refProblems: Array<{ reason: "InvalidKind" | "InvalidCACertificateRef"; message: string }> = [];
  for (const [i, ref] of (v.caCertificateRefs ?? []).entries()) {
    const field = `spec.validation.caCertificateRefs[${i}]`;
    if (ref.group !== "" || ref.kind !== "ConfigMap") {
      refProblems.push({
        reason: "InvalidKind",
        message: `${field}: ${ref.group === "" ? "" : ref.group + "/"}${ref.kind} is not supported; use a core ConfigMap with a ${CA_KEY} key`,
      });
      continue;
    }
    const cm = snapshot.configMaps.get(`${namespace}/${ref.name}`);
    if (cm === undefined) {
      refProblems.push({
        reason: "InvalidCACertificateRef",
        message: `${field}: ConfigMap ${namespace}/${ref.name} not found`,
      });
      continue;
    }
    const data = cm.data?.[CA_KEY];
    const problem = data === undefined ? `has no ${CA_KEY} key` : caProblem(data);
    if (problem !== undefined || data === undefined) {
      refProblems.push({
        reason: "InvalidCACertificateRef",
        message: `${field}: ConfigMap ${namespace}/${ref.name} ${problem ?? ""}`.trimEnd(),
      });
      continue;
    }
    pems.push(data);
  }
  const wellKnown = v.wellKnownCACertificates;
  const resolved: ConditionSpec =
    refProblems.length === 0
      ? resolvedOk
      : {
          type: "ResolvedRefs",
          status: "False",
          reason: refProblems[0]?.reason ?? "InvalidCACertificateRef",
          message: refProblems.map((p) => p.message).join("; "),
        };
  if (refProblems.length > 0 && pems.length === 0 && (wellKnown === undefined || wellKnown === "")) {
    return fail(
      {
        type: "Accepted",
        status: "False",
        reason: "NoValidCACertificate",
        message: "None of the CA certificate references is valid",
      },
      resolved,
    );
  }
  if (wellKnown !== undefined && wellKnown !== "" && wellKnown !== "System") {
    return fail(
      {
        type: "Accepted",
        status: "False",
        reason: "Invalid",
        message: `spec.validation.wellKnownCACertificates: ${wellKnown} is not supported (only System)`,
      },
      resolved,
    );
  }

  // subjectAltNames: "the certificate must match at least one of them" instead of the hostname,
  // which is then only the SNI. HAProxy checks the SNI natively; any other list is checked by the
  // data plane's TLS bridge (src/dataplane/tlsbridge).
  const hostname = v.hostname.toLowerCase();
  const sans = (v.subjectAltNames ?? []).flatMap((s) =>
    s.type === "Hostname" && s.hostname !== undefined
      ? [`DNS:${s.hostname.toLowerCase()}`]
      : s.type === "URI" && s.uri !== undefined
        ? [`URI:${s.uri}`]
        : [],
  );
  const native = sans.length === 0 || (sans.length === 1 && sans[0] === `DNS:${hostname}`);
  const accepted: ConditionSpec = {
    type: "Accepted",
    status: "True",
    reason: "Accepted",
    message: "Policy is accepted",
  };
  node.conditions = [accepted, resolved];
  if (refProblems.length > 0) {
    node.problem = resolved.message;
    return node;
  }
  node.tls = {
    sni: hostname,
    caCertificates: pems,
    ...(wellKnown === "System" ? { wellKnownCACertificates: "System" as const } : {}),
    subjectAltNames: native ? [] : sans,
  };
  return node;
}

/** Why `data` is not a usable CA bundle (undefined when it is). */
function caProblem(data: string): string | undefined {
  const blocks = data.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return `${CA_KEY} holds no PEM certificate`;
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      return `${CA_KEY} certificate ${i + 1} cannot be parsed (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  return undefined;
}

/** A Gateway that a route referencing a Service port is attached to (a policy's ancestor). */
export interface AncestorUse {
  gatewayNamespace: string;
  gatewayName: string;
  /** The Service port's name ("" when unnamed). */
  portName: string;
}

/** Service `namespace/name` → the Gateways (and ports) its routes use it through. */
export type ServiceUses = Map<string, AncestorUse[]>;

interface RouteLike {
  metadata: { namespace?: string };
  spec: {
    rules?: ReadonlyArray<{
      backendRefs?: ReadonlyArray<{
        group?: string;
        kind?: string;
        name: string;
        namespace?: string;
        port?: number;
      }>;
      filters?: ReadonlyArray<{
        type: string;
        requestMirror?: {
          backendRef: { group?: string; kind?: string; name: string; namespace?: string; port?: number };
        };
      }>;
    }>;
  };
}

/** Records the Service ports an HTTP-like route uses, for each Gateway that accepted it. */
export function recordServiceUses(
  snapshot: Snapshot,
  uses: ServiceUses,
  route: RouteLike,
  gateways: ReadonlyArray<{ namespace: string; name: string }>,
): void {
  if (gateways.length === 0) return;
  const routeNs = route.metadata.namespace ?? "default";
  const refs = (route.spec.rules ?? []).flatMap((rule) => [
    ...(rule.backendRefs ?? []),
    ...(rule.filters ?? []).flatMap((f) =>
      f.requestMirror === undefined ? [] : [f.requestMirror.backendRef],
    ),
  ]);
  for (const ref of refs) {
    if ((ref.group ?? "") !== "" || (ref.kind ?? "Service") !== "Service" || ref.port === undefined) continue;
    const key = `${ref.namespace ?? routeNs}/${ref.name}`;
    const service = snapshot.services.get(key);
    const port = (service?.spec?.ports ?? []).find(
      (p) => p.port === ref.port && (p.protocol ?? "TCP") === "TCP",
    );
    if (port === undefined) continue;
    let list = uses.get(key);
    if (list === undefined) uses.set(key, (list = []));
    for (const g of gateways)
      list.push({ gatewayNamespace: g.namespace, gatewayName: g.name, portName: port.name ?? "" });
  }
}

/** The ancestors (Gateways, sorted) of a policy: those whose routes use a port it targets. */
export function policyAncestors(
  node: BackendTLSPolicyNode,
  uses: ServiceUses,
): Array<{ namespace: string; name: string }> {
  const namespace = node.policy.metadata.namespace ?? "default";
  const found = new Map<string, { namespace: string; name: string }>();
  for (const t of node.policy.spec.targetRefs) {
    if (t.group !== "" || t.kind !== "Service") continue;
    for (const u of uses.get(`${namespace}/${t.name}`) ?? []) {
      if (t.sectionName !== undefined && t.sectionName !== u.portName) continue;
      found.set(`${u.gatewayNamespace}/${u.gatewayName}`, {
        namespace: u.gatewayNamespace,
        name: u.gatewayName,
      });
    }
  }
  return [...found.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, g]) => g);
}
