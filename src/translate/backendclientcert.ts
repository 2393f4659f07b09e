// The Gateway's backend client certificate (`spec.tls.backend.clientCertificateRef`, feature
// GatewayBackendClientCertificate): the certificate the Gateway presents to backends it reaches
// over TLS (BackendTLSPolicy), and the Gateway's ResolvedRefs condition, which also summarises its
// listeners' references ("a positive-polarity summary of Listener's ResolvedRefs condition").
import type { IRBackend, IRCertificate, IRHTTPFilter, IRHTTPRule, IRListener } from "../ir/types.ts";
import type { Gateway } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import { certificateFromSecret } from "./certificates.ts";
import * as cond from "./conditions.ts";
import type { ConditionSpec } from "./conditions.ts";
import { referenceAllowed } from "./referencegrant.ts";

const GATEWAY_GROUP = "gateway.networking.k8s.io";
const FIELD = "spec.tls.backend.clientCertificateRef";

export interface BackendClientCertificate {
  /** The Gateway's ResolvedRefs condition. */
  condition: ConditionSpec;
  /** The certificate to present; absent when none is configured or the reference is invalid. */
  certificate?: IRCertificate;
}

/**
 * Resolves the reference. "A ClientCertificateRef is considered invalid if: it refers to a resource
 * that cannot be resolved ... or is misconfigured (... a Secret does not contain the keys named
 * `tls.crt` and `tls.key`)": ResolvedRefs False, InvalidClientCertificateRef; "It refers to a
 * resource in another namespace UNLESS there is a ReferenceGrant ...": RefNotPermitted. An invalid
 * reference does not change Accepted or Programmed ("This condition does not directly impact the
 * Gateway's Accepted or Programmed conditions"): TLS backends are then reached without a client
 * certificate, which backends that require one refuse.
 */
export function resolveBackendClientCertificate(
  snapshot: Snapshot,
  gateway: Gateway,
  listenersResolved: boolean,
): BackendClientCertificate {
  const ref = gateway.spec.tls?.backend?.clientCertificateRef;
  const summary = listenersResolved
    ? cond.gatewayResolvedRefs()
    : cond.gatewayListenersNotResolved("One or more listeners have unresolved references");
  if (ref === undefined) return { condition: summary };
  const namespace = gateway.metadata.namespace ?? "default";
  const group = ref.group ?? "";
  const kind = ref.kind ?? "Secret";
  const refNs = ref.namespace ?? namespace;
  if (group !== "" || kind !== "Secret") {
    const what = `${group === "" ? "" : `${group}/`}${kind}`;
    return {
      condition: cond.gatewayInvalidClientCertificateRef(
        `${FIELD}: ${what} is not supported; use a core Secret`,
      ),
    };
  }
  const permitted = referenceAllowed(
    snapshot.referenceGrants,
    { group: GATEWAY_GROUP, kind: "Gateway", namespace },
    { group: "", kind: "Secret", namespace: refNs, name: ref.name },
  );
  if (!permitted) {
    return {
      condition: cond.gatewayRefNotPermitted(
        `${FIELD}: Secret ${refNs}/${ref.name} is in another namespace and no ReferenceGrant allows it`,
      ),
    };
  }
  const secret = snapshot.secrets.get(`${refNs}/${ref.name}`);
  if (secret === undefined) {
    return {
      condition: cond.gatewayInvalidClientCertificateRef(`${FIELD}: Secret ${refNs}/${ref.name} not found`),
    };
  }
  const result = certificateFromSecret(secret);
  if (!result.ok)
    return { condition: cond.gatewayInvalidClientCertificateRef(`${FIELD}: ${result.message}`) };
  return { condition: summary, certificate: result.certificate };
}

/**
 * The listeners of a Gateway with a backend client certificate: every rule's reference to a TLS
 * backend (a BackendTLSPolicy applies) points instead at a variant of that backend which presents
 * the certificate; the variants are added to `backends`. Backends without TLS are unchanged, and
 * other Gateways keep the plain backend (each Gateway presents its own certificate, or none).
 */
export function presentClientCertificate(
  listeners: readonly IRListener[],
  certificate: IRCertificate,
  backends: Map<string, IRBackend>,
): IRListener[] {
  const variantOf = (id: string): string => {
    const backend = backends.get(id);
    if (backend?.tls === undefined) return id;
    const variant = `${id}/clientcert/${certificate.id}`;
    if (!backends.has(variant))
      backends.set(variant, {
        ...backend,
        id: variant,
        tls: { ...backend.tls, clientCertificate: certificate },
      });
    return variant;
  };
  const filters = (list: readonly IRHTTPFilter[]): IRHTTPFilter[] =>
    list.map((f) =>
      f.type === "RequestMirror"
        ? { ...f, mirror: { ...f.mirror, backend: variantOf(f.mirror.backend) } }
        : f,
    );
  // A rule object may sit on several virtual hosts: map each once.
  const mapped = new Map<IRHTTPRule, IRHTTPRule>();
  const rule = (r: IRHTTPRule): IRHTTPRule => {
    let out = mapped.get(r);
    if (out === undefined) {
      out = {
        ...r,
        filters: filters(r.filters),
        backends: r.backends.map((wb) =>
          wb.invalid === true ? wb : { ...wb, backend: variantOf(wb.backend), filters: filters(wb.filters) },
        ),
      };
      mapped.set(r, out);
    }
    return out;
  };
  return listeners.map((l) =>
    l.virtualHosts === undefined
      ? l
      : { ...l, virtualHosts: l.virtualHosts.map((vh) => ({ ...vh, rules: vh.rules.map(rule) })) },
  );
}
