// The data-plane IR: what the translator produces and the data plane consumes.
// Data-plane neutral, JSON-serialisable (no Maps, no undefined-vs-missing games: optional fields are
// simply absent), and already resolved: every reference points at something that exists in the IR,
// every list that has an evaluation order is already in it.

/** Identifies the Kubernetes object an IR element came from (for logs, metrics and status). */
export interface IRObjectRef {
  kind: string;
  namespace: string;
  name: string;
}

export interface IR {
  gateways: IRGateway[];
  /** Every backend referenced by any route, keyed by IRBackend.id, sorted by id. */
  backends: IRBackend[];
}

export interface IRGateway {
  /** `namespace/name` */
  id: string;
  namespace: string;
  name: string;
  gatewayClassName: string;
  /** IP addresses to bind on; empty means all interfaces. */
  addresses: string[];
  /** Valid listeners (Accepted, not Conflicted), in spec order. */
  listeners: IRListener[];
}

export type IRListenerProtocol = "HTTP" | "HTTPS" | "TLS" | "TCP" | "UDP";

/** A listener, by protocol: each protocol carries exactly the fields it uses. */
export type IRListener = IRHTTPListener | IRHTTPSListener | IRTLSListener | IRTCPListener | IRUDPListener;

interface IRListenerBase {
  /** `namespace/gateway/listenerName` (ListenerSet listeners: `namespace/gateway/listenerSetNs/listenerSet/listenerName`) */
  id: string;
  name: string;
  port: number;
  /** Listener hostname (may be a wildcard `*.example.com`); absent = any. */
  hostname?: string;
}

/** The fields of other protocols, absent (so that `l.virtualHosts ?? []` reads any listener). */
interface NoRoutes {
  tls?: never;
  virtualHosts?: never;
  tlsRoutes?: never;
  tcpRoutes?: never;
  udpRoutes?: never;
}

export interface IRHTTPListener extends IRListenerBase, Omit<NoRoutes, "virtualHosts"> {
  protocol: "HTTP";
  /** Virtual hosts, most specific hostname first. */
  virtualHosts: IRVirtualHost[];
}

export interface IRHTTPSListener extends IRListenerBase, Omit<NoRoutes, "virtualHosts" | "tls"> {
  protocol: "HTTPS";
  tls: IRListenerTLS;
  virtualHosts: IRVirtualHost[];
}

export interface IRTLSListener extends IRListenerBase, Omit<NoRoutes, "tlsRoutes" | "tls"> {
  protocol: "TLS";
  /** Terminate or passthrough. */
  tls: IRListenerTLS;
  /** Routes by SNI. */
  tlsRoutes: IRTLSRoute[];
}

export interface IRTCPListener extends IRListenerBase, Omit<NoRoutes, "tcpRoutes"> {
  protocol: "TCP";
  /** At most one route is effective (the oldest); kept as a list for status accounting. */
  tcpRoutes: IRL4Route[];
}

export interface IRUDPListener extends IRListenerBase, Omit<NoRoutes, "udpRoutes"> {
  protocol: "UDP";
  udpRoutes: IRL4Route[];
}

export interface IRListenerTLS {
  mode: "Terminate" | "Passthrough";
  /** Certificates for termination; the first one is the default (no SNI match). */
  certificates: IRCertificate[];
  /** Client certificate validation (frontend TLS). */
  clientValidation?: { caCertificates: string[]; mode: "AllowValidOnly" | "AllowInsecureFallback" };
}

export interface IRCertificate {
  /** `namespace/secretName` */
  id: string;
  /** PEM certificate chain */
  certPem: string;
  /** PEM private key */
  keyPem: string;
  /** DNS names (SAN, or CN when there is no SAN) the certificate covers, for SNI selection. */
  dnsNames: string[];
}

export interface IRVirtualHost {
  /** Exact hostname, wildcard `*.example.com`, or `*` for any. */
  hostname: string;
  /** Route rules in evaluation order: the first rule whose match matches wins. */
  rules: IRHTTPRule[];
}

export interface IRHTTPRule {
  /** Stable unique id: `httproute/<ns>/<name>/rule/<i>/match/<j>` (or grpcroute/...). */
  id: string;
  route: IRObjectRef;
  ruleIndex: number;
  matchIndex: number;
  ruleName?: string;
  match: IRHTTPMatch;
  /** Request-phase and response-phase filters in spec order (validated). */
  filters: IRHTTPFilter[];
  /**
   * Weighted backends. Empty with no redirect filter: respond 500. An entry with `invalid` set
   * stands for backendRefs that could not be resolved: its share of traffic gets a 500.
   */
  backends: IRWeightedBackend[];
  timeouts?: { requestMs?: number; backendRequestMs?: number };
  retry?: { attempts?: number; codes: number[]; backoffMs?: number };
  sessionPersistence?: IRSessionPersistence;
  /** Backend protocol for GRPCRoute rules. */
  grpc?: boolean;
}

export interface IRHTTPMatch {
  path: { type: "Exact" | "PathPrefix" | "RegularExpression"; value: string };
  headers: Array<{ type: "Exact" | "RegularExpression"; name: string; value: string }>;
  queryParams: Array<{ type: "Exact" | "RegularExpression"; name: string; value: string }>;
  method?: string;
}

export interface IRHeaderModifier {
  set: Array<{ name: string; value: string }>;
  add: Array<{ name: string; value: string }>;
  remove: string[];
}

export type IRHTTPFilter =
  | { type: "RequestHeaderModifier"; headers: IRHeaderModifier }
  | { type: "ResponseHeaderModifier"; headers: IRHeaderModifier }
  | { type: "RequestRedirect"; redirect: IRRedirect }
  | { type: "URLRewrite"; rewrite: IRURLRewrite }
  | { type: "RequestMirror"; mirror: IRMirror }
  | { type: "CORS"; cors: IRCORS }
  | { type: "ExternalAuth"; auth: IRExternalAuth };

export interface IRRedirect {
  /** Scheme of the Location header (resolved: the request's scheme when the filter sets none). */
  scheme: "http" | "https";
  /** Absent: keep the request's host (without its port). */
  hostname?: string;
  /** Absent: no port in the Location header (default port for the scheme). */
  port?: number;
  path?: IRPathModifier;
  statusCode: 301 | 302 | 303 | 307 | 308;
}

export type IRPathModifier =
  | { type: "ReplaceFullPath"; value: string }
  /** Replace the matched PathPrefix `prefix` with `value`. */
  | { type: "ReplacePrefixMatch"; prefix: string; value: string };

export interface IRURLRewrite {
  hostname?: string;
  path?: IRPathModifier;
}

export interface IRMirror {
  backend: string;
  /** Share of requests mirrored, 0..100 (may be fractional). */
  percent: number;
}

/**
 * An ExternalAuth filter: each request is checked by an authorization service (HTTP: a request whose
 * 200 answer allows; GRPC: Envoy's ext_authz `Check`) before it goes on. HAProxy cannot call it: the
 * data plane's auth bridge (src/dataplane/extauth) does, and sets `bridge` before rendering.
 */
export interface IRExternalAuth {
  protocol: "HTTP" | "GRPC";
  /** IRBackend.id of the authorization service. */
  backend: string;
  /** HTTP: prefix added to the request path sent to the service ("" for none). */
  pathPrefix: string;
  /** Request headers sent to the service (lower case; empty: HTTP the fixed set only, GRPC all). */
  allowedRequestHeaders: string[];
  /** HTTP: headers of the service's 200 answer copied into the request (empty: all but Host). */
  allowedResponseHeaders: string[];
  /** Bytes of the request body sent to the service (0: none). */
  forwardBodyMaxSize: number;
  /** The data plane's auth bridge, `127.0.0.1:<port>` (absent: requests are refused, 500). */
  bridge?: string;
}

export interface IRCORS {
  allowOrigins: string[];
  allowCredentials: boolean;
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds: number;
}

/**
 * One backendRef of a rule or route: resolved (it names an IRBackend) or invalid (it could not be
 * resolved, or a filter of it cannot be applied: its share of requests gets a 500). Exactly one of
 * `backend` and `invalid` is present.
 */
export type IRWeightedBackend = IRResolvedBackendRef | IRInvalidBackendRef;

export interface IRResolvedBackendRef {
  /** IRBackend.id */
  backend: string;
  weight: number;
  /** backendRef-level filters, applied after the rule's filters. */
  filters: IRHTTPFilter[];
  invalid?: never;
}

export interface IRInvalidBackendRef {
  backend?: never;
  weight: number;
  filters: [];
  invalid: true;
}

export interface IRSessionPersistence {
  type: "Cookie" | "Header";
  name: string;
  /** The session's absolute lifetime (none: the session lasts while its endpoint does). */
  absoluteTimeoutMs?: number;
  /** Cookie lifetime: Session cookies have no Max-Age (Permanent ones: the absolute timeout). */
  lifetime: "Permanent" | "Session";
}

export interface IRTLSRoute {
  route: IRObjectRef;
  /** SNI hostnames (exact or `*.` wildcard), most specific first; `*` matches any. */
  hostnames: string[];
  backends: IRWeightedBackend[];
}

export interface IRL4Route {
  route: IRObjectRef;
  backends: IRWeightedBackend[];
}

export type IRBackendProtocol = "http" | "h2c" | "websocket" | "https" | "tcp" | "udp";

export interface IRBackend {
  /** `service/<ns>/<name>/<port>` or `static/<ns>/<name>/<port>` */
  id: string;
  source: IRObjectRef;
  port: number;
  protocol: IRBackendProtocol;
  /** Ready endpoints, sorted. */
  endpoints: IREndpoint[];
  /** Upstream TLS from a BackendTLSPolicy. */
  tls?: {
    sni: string;
    caCertificates: string[];
    wellKnownCACertificates?: "System";
    /** `DNS:<name>` / `URI:<uri>`; empty: the certificate is checked against the SNI. */
    subjectAltNames: string[];
    /** The certificate the Gateway presents to the server (GatewayBackendClientCertificate). */
    clientCertificate?: IRCertificate;
    /**
     * `subjectAltNames` (non-empty): the server certificate must match one of these, `DNS:<name>` or
     * `URI:<uri>`, instead of the SNI. HAProxy cannot check them: the data plane's TLS bridge does
     * (src/dataplane/tlsbridge), and sets `bridge` (its `127.0.0.1:<port>`) before rendering.
     */
    bridge?: string;
  };
  /**
   * An InferencePool's endpoint picker (Gateway API Inference Extension, `endpointPickerRef`): each
   * request is sent to the picker (Envoy ext_proc), which chooses the endpoint among `endpoints`.
   * HAProxy cannot call it: the data plane's picker bridge (src/dataplane/epp) does, and sets
   * `bridge` before rendering. Without `bridge`, FailOpen balances over the endpoints and FailClose
   * answers 503.
   */
  picker?: IRPicker;
}

export interface IRPicker {
  /** `<ns>/<name>:<port>`: the picker's Service port (messages only, never rendered). */
  service: string;
  /** Ready endpoints of that Service port (EndpointSlices, or the static-endpoints annotation). */
  endpoints: IREndpoint[];
  /**
   * `tls`: ext_proc over TLS with ALPN h2, the certificate not verified (the reference picker serves
   * a self-signed one; there is no CA to check it against); `h2c`: cleartext HTTP/2 (the Service
   * port's appProtocol is `kubernetes.io/h2c`).
   */
  transport: "tls" | "h2c";
  /** What happens when the picker cannot be reached or fails: balance over the endpoints, or 503. */
  failureMode: "FailOpen" | "FailClose";
  /** The data plane's picker bridge, `127.0.0.1:<port>`. */
  bridge?: string;
}

export interface IREndpoint {
  address: string;
  port: number;
}
