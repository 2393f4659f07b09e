// Condition constructors, one per (type, reason) the translator reports. Types and reasons are the
// Gateway API v1.6.1 constants (apis/v1/{gatewayclass,gateway,shared}_types.go).
import type { Condition, ConditionStatus } from "../status/types.ts";

/** A condition before it is stamped with observedGeneration and lastTransitionTime. */
export interface ConditionSpec {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

function c(type: string, status: ConditionStatus, reason: string, message: string): ConditionSpec {
  return { type, status, reason, message };
}

/** Stamps conditions for status output, sorted by type for deterministic output. */
export function stampConditions(
  specs: readonly ConditionSpec[],
  generation: number | undefined,
  now: string,
): Condition[] {
  const byType = new Map<string, ConditionSpec>();
  // The first condition recorded for a type wins: callers record the most important problem first.
  for (const s of specs) if (!byType.has(s.type)) byType.set(s.type, s);
  return [...byType.values()]
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    .map((s) => ({
      type: s.type,
      status: s.status,
      reason: s.reason,
      message: s.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: now,
    }));
}

// GatewayClass
export const gatewayClassAccepted = (): ConditionSpec =>
  c("Accepted", "True", "Accepted", "GatewayClass is accepted by Gatehouse");
export const gatewayClassInvalidParameters = (message: string): ConditionSpec =>
  c("Accepted", "False", "InvalidParameters", message);
export const gatewayClassSupportedVersion = (): ConditionSpec =>
  c("SupportedVersion", "True", "SupportedVersion", "Gateway API v1.6.1 is supported");

// Gateway
export const gatewayAccepted = (): ConditionSpec => c("Accepted", "True", "Accepted", "Gateway is accepted");
export const gatewayListenersNotValid = (accepted: boolean, message: string): ConditionSpec =>
  c("Accepted", accepted ? "True" : "False", "ListenersNotValid", message);
export const gatewayInvalidParameters = (message: string): ConditionSpec =>
  c("Accepted", "False", "InvalidParameters", message);
export const gatewayUnsupportedAddress = (message: string): ConditionSpec =>
  c("Accepted", "False", "UnsupportedAddress", message);
export const gatewayProgrammed = (): ConditionSpec =>
  c("Programmed", "True", "Programmed", "Gateway is programmed");
export const gatewayNotProgrammed = (message: string): ConditionSpec =>
  c("Programmed", "False", "Invalid", message);
export const gatewayPending = (message: string): ConditionSpec =>
  c("Programmed", "False", "Pending", message);
export const gatewayAddressNotUsable = (message: string): ConditionSpec =>
  c("Programmed", "False", "AddressNotUsable", message);
export const gatewayAddressNotAssigned = (message: string): ConditionSpec =>
  c("Programmed", "False", "AddressNotAssigned", message);

export const gatewayResolvedRefs = (): ConditionSpec =>
  c("ResolvedRefs", "True", "ResolvedRefs", "All references are resolved");
export const gatewayListenersNotResolved = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "ListenersNotResolved", message);
export const gatewayInvalidClientCertificateRef = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "InvalidClientCertificateRef", message);
export const gatewayRefNotPermitted = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "RefNotPermitted", message);

export const gatewayInsecureFrontendValidationMode = (message: string): ConditionSpec =>
  c("InsecureFrontendValidationMode", "True", "ConfigurationChanged", message);

// Listener
export const listenerAccepted = (): ConditionSpec =>
  c("Accepted", "True", "Accepted", "Listener is accepted");
export const listenerUnsupportedProtocol = (message: string): ConditionSpec =>
  c("Accepted", "False", "UnsupportedProtocol", message);
export const listenerUnsupportedValue = (message: string): ConditionSpec =>
  c("Accepted", "False", "UnsupportedValue", message);
export const listenerNotAcceptedConflict = (reason: ConflictReason, message: string): ConditionSpec =>
  c("Accepted", "False", reason, message);
export type ConflictReason = "HostnameConflict" | "ProtocolConflict";
export const listenerConflicted = (reason: ConflictReason, message: string): ConditionSpec =>
  c("Conflicted", "True", reason, message);
export const listenerNoConflicts = (): ConditionSpec =>
  c("Conflicted", "False", "NoConflicts", "No conflicts with other listeners");
export const listenerResolvedRefs = (): ConditionSpec =>
  c("ResolvedRefs", "True", "ResolvedRefs", "All references are resolved");
export const listenerInvalidCertificateRef = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "InvalidCertificateRef", message);
export const listenerRefNotPermitted = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "RefNotPermitted", message);
export const listenerInvalidRouteKinds = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "InvalidRouteKinds", message);
export const listenerInvalidCACertificateRef = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "InvalidCACertificateRef", message);
export const listenerInvalidCACertificateKind = (message: string): ConditionSpec =>
  c("ResolvedRefs", "False", "InvalidCACertificateKind", message);
export const listenerNoValidCACertificate = (message: string): ConditionSpec =>
  c("Accepted", "False", "NoValidCACertificate", message);
export const listenerProgrammed = (): ConditionSpec =>
  c("Programmed", "True", "Programmed", "Listener is programmed");
export const listenerNotProgrammed = (message: string): ConditionSpec =>
  c("Programmed", "False", "Invalid", message);

export const listenerNotProgrammedFor = (reason: string, message: string): ConditionSpec =>
  c("Programmed", "False", reason, message);

// ListenerSet
export const listenerSetAccepted = (): ConditionSpec =>
  c("Accepted", "True", "Accepted", "ListenerSet is accepted");
export const listenerSetAcceptedWithInvalid = (message: string): ConditionSpec =>
  c("Accepted", "True", "ListenersNotValid", message);
export const listenerSetNotAccepted = (reason: string, message: string): ConditionSpec =>
  c("Accepted", "False", reason, message);
export const listenerSetProgrammed = (): ConditionSpec =>
  c("Programmed", "True", "Programmed", "ListenerSet is programmed");
export const listenerSetNotProgrammed = (reason: string, message: string): ConditionSpec =>
  c("Programmed", "False", reason, message);

// Routes
export const routeAccepted = (): ConditionSpec => c("Accepted", "True", "Accepted", "Route is accepted");
export const routeNotAllowedByListeners = (message: string): ConditionSpec =>
  c("Accepted", "False", "NotAllowedByListeners", message);
export const routeNoMatchingListenerHostname = (message: string): ConditionSpec =>
  c("Accepted", "False", "NoMatchingListenerHostname", message);
export const routeNoMatchingParent = (message: string): ConditionSpec =>
  c("Accepted", "False", "NoMatchingParent", message);
/**
 * An HTTPRoute and a GRPCRoute with intersecting hostnames on one listener: "The rejected Route MUST
 * raise an 'Accepted' condition with a status of 'False'" (GRPCRouteSpec.hostnames). The spec names no
 * reason, and none of the route reasons it lists fits ("Controllers may raise this condition with
 * other reasons"); HostnameConflict is the name the Listener condition uses for the same situation.
 */
export const routeHostnameConflict = (message: string): ConditionSpec =>
  c("Accepted", "False", "HostnameConflict", message);
export const routeUnsupportedValue = (message: string): ConditionSpec =>
  c("Accepted", "False", "UnsupportedValue", message);
export const routePartiallyInvalid = (message: string): ConditionSpec =>
  c("PartiallyInvalid", "True", "UnsupportedValue", message);
export const routeResolvedRefs = (): ConditionSpec =>
  c("ResolvedRefs", "True", "ResolvedRefs", "All references are resolved");
export type RouteRefReason = "RefNotPermitted" | "InvalidKind" | "BackendNotFound" | "UnsupportedProtocol";
export const routeUnresolvedRefs = (reason: RouteRefReason, message: string): ConditionSpec =>
  c("ResolvedRefs", "False", reason, message);
