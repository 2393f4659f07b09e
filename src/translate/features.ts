// The Gateway API features Gatehouse reports in GatewayClass status.supportedFeatures.
// Only features whose translation is implemented end to end belong here: a feature listed here is
// run by the conformance suite (see README, "Conformance").
export const SUPPORTED_FEATURES: readonly string[] = [
  "BackendTLSPolicy",
  "BackendTLSPolicySANValidation",
  "Gateway",
  "GatewayPort8080",
  "GatewayStaticAddresses",
  "ListenerSet",
  "GatewayHTTPListenerIsolation",
  "GatewayHTTPSListenerDetectMisdirectedRequests",
  "GatewayBackendClientCertificate",
  "GatewayFrontendClientCertificateValidation",
  "GatewayFrontendClientCertificateValidationInsecureFallback",
  "GRPCRoute",
  "GRPCRouteNamedRouteRule",
  "HTTPRoute",
  "HTTPRouteBackendProtocolH2C",
  "HTTPRouteBackendProtocolWebSocket",
  "HTTPRouteBackendRequestHeaderModification",
  "HTTPRouteBackendTimeout",
  "HTTPRouteCORS",
  "HTTPRouteDestinationPortMatching",
  "HTTPRouteHostRewrite",
  "HTTPRouteMethodMatching",
  "HTTPRouteNamedRouteRule",
  "HTTPRouteParentRefPort",
  "HTTPRoutePathRedirect",
  "HTTPRoutePathRewrite",
  "HTTPRoutePortRedirect",
  "HTTPRouteQueryParamMatching",
  "HTTPRouteRequestMirror",
  "HTTPRouteRequestMultipleMirrors",
  "HTTPRouteRequestPercentageMirror",
  "HTTPRouteRequestTimeout",
  "HTTPRouteResponseHeaderModification",
  "HTTPRouteRetry",
  "HTTPRouteRetryBackendTimeout",
  "HTTPRouteRetryConnectionError",
  "HTTPRouteSchemeRedirect",
  "HTTPRoute303RedirectStatusCode",
  "HTTPRoute307RedirectStatusCode",
  "HTTPRoute308RedirectStatusCode",
  "ReferenceGrant",
  "TCPRoute",
  "TLSRoute",
  "TLSRouteModeMixed",
  "TLSRouteModeTerminate",
  "UDPRoute",
].toSorted();

/** Features that need per-Gateway infrastructure (`--infrastructure kubernetes`). */
export const KUBERNETES_INFRASTRUCTURE_FEATURES: readonly string[] = [
  "GatewayAddressEmpty",
  "GatewayInfrastructurePropagation",
];

/** The features reported for an infrastructure mode. */
export function supportedFeatures(infrastructure: "host" | "kubernetes" = "host"): readonly string[] {
  return infrastructure === "kubernetes"
    ? [...SUPPORTED_FEATURES, ...KUBERNETES_INFRASTRUCTURE_FEATURES].toSorted()
    : SUPPORTED_FEATURES;
}
