// Client certificate validation of HTTPS listeners (Gateway spec.tls.frontend): which CA bundle a
// listener validates clients against, and the listener conditions when the CA references are bad.
import { X509Certificate } from "node:crypto";
import type { IRListenerTLS } from "../ir/types.ts";
import type { Gateway } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import * as cond from "./conditions.ts";
import type { ConditionSpec } from "./conditions.ts";
import { referenceAllowed } from "./referencegrant.ts";

const GATEWAY_GROUP = "gateway.networking.k8s.io";

type Frontend = NonNullable<NonNullable<Gateway["spec"]["tls"]>["frontend"]>;
type Validation = NonNullable<Frontend["default"]["validation"]>;
type ClientValidation = NonNullable<IRListenerTLS["clientValidation"]>;

export interface FrontendValidationResult {
  /** Absent when the listener validates no client certificates. */
  clientValidation?: ClientValidation;
  /** ResolvedRefs False per bad reference, and Accepted False when no CA certificate is usable. */
  conditions: ConditionSpec[];
  /** "If ALL CACertificateRefs are invalid ... the Accepted condition on the listener is set to False". */
  rejected: boolean;
}

/**
 * The validation that applies to an HTTPS listener on `port`: the perPort entry for that port, else
 * the default ("Once set this configuration overrides the default configuration for all Listeners
 * handling HTTPS traffic that match this port").
 */
function validationFor(gateway: Gateway, port: number): { validation?: Validation; field: string } {
  const frontend = gateway.spec.tls?.frontend;
  if (frontend === undefined) return { field: "" };
  const index = (frontend.perPort ?? []).findIndex((p) => p.port === port);
  const perPort = frontend.perPort?.[index];
  if (perPort !== undefined) {
    return {
      ...(perPort.tls.validation !== undefined ? { validation: perPort.tls.validation } : {}),
      field: `spec.tls.frontend.perPort[${index}].tls.validation`,
    };
  }
  const validation = frontend.default.validation;
  return {
    ...(validation !== undefined ? { validation } : {}),
    field: "spec.tls.frontend.default.validation",
  };
}

/** Resolves the client validation of an HTTPS listener on `port`. */
export function resolveFrontendValidation(
  snapshot: Snapshot,
  gateway: Gateway,
  port: number,
): FrontendValidationResult {
  const { validation, field } = validationFor(gateway, port);
  if (validation === undefined) return { conditions: [], rejected: false };
  const namespace = gateway.metadata.namespace ?? "default";
  const conditions: ConditionSpec[] = [];
  const caCertificates: string[] = [];
  validation.caCertificateRefs.forEach((ref, i) => {
    const at = `${field}.caCertificateRefs[${i}]`;
    const refNs = ref.namespace ?? namespace;
    // Core support: "A single reference to a Kubernetes ConfigMap, with the CA certificate in a key
    // named ca.crt".
    if (ref.group !== "" || ref.kind !== "ConfigMap") {
      const kind = ref.group === "" ? ref.kind : `${ref.group}/${ref.kind}`;
      conditions.push(
        cond.listenerInvalidCACertificateKind(`${at}: ${kind} is not supported; use a ConfigMap`),
      );
      return;
    }
    const allowed = referenceAllowed(
      snapshot.referenceGrants,
      { group: GATEWAY_GROUP, kind: "Gateway", namespace },
      { group: "", kind: "ConfigMap", namespace: refNs, name: ref.name },
    );
    if (!allowed) {
      conditions.push(
        cond.listenerRefNotPermitted(
          `${at}: ConfigMap ${refNs}/${ref.name} is in another namespace and no ReferenceGrant allows it`,
        ),
      );
      return;
    }
    const configMap = snapshot.configMaps.get(`${refNs}/${ref.name}`);
    const bundle = configMap?.data?.["ca.crt"];
    const problem =
      configMap === undefined
        ? " not found"
        : bundle === undefined
          ? " has no key ca.crt"
          : !isCertificateBundle(bundle)
            ? ": ca.crt is not a PEM-encoded X.509 certificate bundle"
            : undefined;
    if (problem !== undefined || bundle === undefined) {
      conditions.push(
        cond.listenerInvalidCACertificateRef(`${at}: ConfigMap ${refNs}/${ref.name}${problem ?? ""}`),
      );
      return;
    }
    caCertificates.push(bundle.endsWith("\n") ? bundle : `${bundle}\n`);
  });
  if (caCertificates.length === 0) {
    conditions.unshift(
      cond.listenerNoValidCACertificate(`${field}: none of the CA certificate references can be used`),
    );
    return { conditions, rejected: true };
  }
  return {
    clientValidation: { caCertificates, mode: validation.mode ?? "AllowValidOnly" },
    conditions,
    rejected: false,
  };
}

/** True when the text holds at least one PEM certificate and every PEM block in it is one. */
function isCertificateBundle(text: string): boolean {
  const blocks = text.match(/-----BEGIN [^-]+-----[\s\S]*?-----END [^-]+-----/g) ?? [];
  return blocks.length > 0 && blocks.every(parsesAsCertificate);
}

function parsesAsCertificate(pem: string): boolean {
  try {
    return new X509Certificate(pem).subject !== "";
  } catch {
    return false;
  }
}

/** Whether any listener of the Gateway may use AllowInsecureFallback (for its Gateway condition). */
export function usesInsecureFallback(gateway: Gateway): boolean {
  const frontend = gateway.spec.tls?.frontend;
  if (frontend === undefined) return false;
  return [frontend.default.validation, ...(frontend.perPort ?? []).map((p) => p.tls.validation)].some(
    (v) => v?.mode === "AllowInsecureFallback",
  );
}
