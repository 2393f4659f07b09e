// Everything the renderer cannot express (or cannot express safely), found before rendering. The
// same walk serves `render` (which throws a RenderError with all issues) and callers that want the
// list up front (`checkRenderable`) to mark the offending objects unsupported.
import { isIP } from "node:net";
import { memo } from "./memo.ts";
import type {
  IR,
  IRBackend,
  IRHTTPFilter,
  IRHTTPRule,
  IRPathModifier,
  IRWeightedBackend,
} from "../../../ir/types.ts";
import type { RenderIssue } from "./errors.ts";
import type { RenderOptions } from "./model.ts";
import { haproxyValidators } from "../capabilities.ts";
import { controlIssue, hostnameIssue } from "./syntax.ts";
import { BRIDGE_ADDRESS } from "./extauth.ts";

const REDIRECT_CODES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const DURATION = /^[0-9]+(?:us|ms|s|m|h|d)?$/;
/** Unix socket paths are limited to 108 bytes; HAProxy appends `.<pid>.tmp` while binding. */
export const MAX_SOCKET_PATH = 90;

type Report = (path: string, message: string) => void;

export function checkOptions(options: RenderOptions): RenderIssue[] {
  const issues: RenderIssue[] = [];
  const report = (field: string, message: string): void => {
    issues.push({ path: `options.${field}`, subject: "options", message });
  };
  const stateDir = options.stateDir.replace(/\/+$/, "");
  if (!SAFE_PATH.test(options.stateDir) || stateDir === "") {
    report("stateDir", `${JSON.stringify(options.stateDir)} must be an absolute path of [A-Za-z0-9._/-]`);
  }
  // Internal frontends listen on `<stateDir>/sock/<frontend>.sock`.
  if (stateDir.length + 40 > MAX_SOCKET_PATH) {
    report(
      "stateDir",
      `is too long for unix socket paths under it (at most ${MAX_SOCKET_PATH - 40} characters)`,
    );
  }
  if (!SAFE_PATH.test(options.runtimeSocket)) {
    report(
      "runtimeSocket",
      `${JSON.stringify(options.runtimeSocket)} must be an absolute path of [A-Za-z0-9._/-]`,
    );
  }
  if (options.masterSocket !== undefined && !SAFE_PATH.test(options.masterSocket)) {
    report(
      "masterSocket",
      `${JSON.stringify(options.masterSocket)} must be an absolute path of [A-Za-z0-9._/-]`,
    );
  }
  if (!Number.isInteger(options.serverSlots) || options.serverSlots < 1 || options.serverSlots > 4096) {
    report("serverSlots", `${options.serverSlots} must be an integer in 1..4096`);
  }
  const spares = options.spareBackends;
  if (spares !== undefined && (!Number.isInteger(spares) || spares < 0 || spares > 1024)) {
    report("spareBackends", `${spares} must be an integer in 0..1024`);
  }
  if (
    options.metricsAddress !== undefined &&
    !/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):\d{1,5}$/.test(options.metricsAddress)
  ) {
    report("metricsAddress", `${JSON.stringify(options.metricsAddress)} must be a loopback host:port`);
  }
  const bounded = (field: string, value: number | undefined, min: number, max: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
      report(field, `${value} must be an integer in ${min}..${max}`);
  };
  bounded("threads", options.threads, 1, 64);
  bounded("maxconn", options.maxconn, 1, 10_000_000);
  // HAProxy's timers take at most 2^31-1 ms (about 24 days).
  bounded("timeouts.connectMs", options.timeouts?.connectMs, 1, 2_147_483_647);
  bounded("timeouts.clientMs", options.timeouts?.clientMs, 1, 2_147_483_647);
  bounded("timeouts.serverMs", options.timeouts?.serverMs, 1, 2_147_483_647);
  if (!DURATION.test(options.hardStopAfter)) {
    report("hardStopAfter", `${JSON.stringify(options.hardStopAfter)} is not a duration like "30s"`);
  }
  return issues;
}

export function checkIR(ir: IR): RenderIssue[] {
  const issues: RenderIssue[] = [];
  const backends = new Map(ir.backends.map((b) => [b.id, b]));
  for (const [bi, b] of ir.backends.entries()) {
    for (const [field, message] of backendIssues(b))
      issues.push({ path: `backends[${bi}]${field}`, subject: b.id, message });
  }

  for (const [gi, g] of ir.gateways.entries()) {
    const gpath = `gateways[${gi}]`;
    for (const [ai, address] of g.addresses.entries()) {
      if (address !== "" && isIP(address) === 0) {
        issues.push({
          path: `${gpath}.addresses[${ai}]`,
          subject: g.id,
          message: `${JSON.stringify(address)} is not an IP address`,
        });
      }
    }
    for (const [li, l] of g.listeners.entries()) {
      const lpath = `${gpath}.listeners[${li}]`;
      const report: Report = (path, message) =>
        issues.push({ path: `${lpath}${path}`, subject: l.id, message });
      if (l.protocol === "UDP") continue;
      if (!Number.isInteger(l.port) || l.port < 1 || l.port > 65535)
        report(".port", `${l.port} is not a port`);
      if (l.hostname !== undefined) optional(report, ".hostname", hostnameIssue(l.hostname, true));
      for (const [ci, c] of (l.tls?.certificates ?? []).entries()) {
        const cpath = `.tls.certificates[${ci}]`;
        optional(report, `${cpath}.certPem`, pemIssue(c.certPem, "CERTIFICATE"));
        optional(report, `${cpath}.keyPem`, pemIssue(c.keyPem, "PRIVATE KEY"));
        for (const [ni, n] of c.dnsNames.entries())
          optional(report, `${cpath}.dnsNames[${ni}]`, hostnameIssue(n, true));
      }
      if (
        (l.protocol === "HTTPS" || l.tls?.mode === "Terminate") &&
        (l.tls?.certificates.length ?? 0) === 0
      ) {
        report(".tls.certificates", "a terminating listener needs at least one certificate");
      }
      for (const [ci, ca] of (l.tls?.clientValidation?.caCertificates ?? []).entries()) {
        optional(report, `.tls.clientValidation.caCertificates[${ci}]`, pemIssue(ca, "CERTIFICATE"));
      }
      for (const [vi, vh] of (l.virtualHosts ?? []).entries()) {
        if (vh.hostname !== "*")
          optional(report, `.virtualHosts[${vi}].hostname`, vhostHostnameIssue(vh.hostname));
        for (const [ri, rule] of vh.rules.entries()) {
          for (const [path, message] of ruleIssues(rule, backends))
            issues.push({
              path: `${lpath}.virtualHosts[${vi}].rules[${ri}]${path}`,
              subject: rule.id,
              message,
            });
        }
      }
      for (const [ri, r] of (l.tlsRoutes ?? []).entries()) {
        const subject = `${r.route.kind} ${r.route.namespace}/${r.route.name}`;
        const rreport: Report = (path, message) =>
          issues.push({ path: `${lpath}.tlsRoutes[${ri}]${path}`, subject, message });
        for (const [hi, h] of r.hostnames.entries()) {
          if (h !== "*") optional(rreport, `.hostnames[${hi}]`, hostnameIssue(h, true));
        }
        checkL4Backends(r.backends, rreport, backends);
      }
      for (const [ri, r] of (l.tcpRoutes ?? []).entries()) {
        const subject = `${r.route.kind} ${r.route.namespace}/${r.route.name}`;
        checkL4Backends(
          r.backends,
          (path, message) => issues.push({ path: `${lpath}.tcpRoutes[${ri}]${path}`, subject, message }),
          backends,
        );
      }
    }
  }
  return issues;
}

function optional(report: Report, path: string, message: string | undefined): void {
  if (message !== undefined) report(path, message);
}

function pemIssue(pem: string, label: string): string | undefined {
  if (pem.includes("\0")) return "contains a NUL byte";
  if (!pem.includes(`-----BEGIN `) || !pem.includes(label)) return `is not a PEM ${label} block`;
  return undefined;
}

// The checks of a rule or backend are pure functions of it (and, for a rule, of whether the backends
// it names exist and are UDP): remembered per IR object (memo.ts).

/** hostnameIssue(hostname, true), remembered for the hostnames of the last checks (bounded). */
function vhostHostnameIssue(hostname: string): string | undefined {
  const known = memo.hostnames.get(hostname);
  if (known !== undefined) return known === "" ? undefined : known;
  const issue = hostnameIssue(hostname, true);
  if (memo.hostnames.size >= 100_000) memo.hostnames.clear();
  memo.hostnames.set(hostname, issue ?? "");
  return issue;
}

/** checkBackend's issues as (field, message), remembered per backend object. */
function backendIssues(b: IRBackend): ReadonlyArray<[string, string]> {
  let found = memo.backendChecks.get(b);
  if (found === undefined) {
    const list: Array<[string, string]> = [];
    checkBackend(b, (field, message) => list.push([field, message]));
    memo.backendChecks.set(b, (found = list));
  }
  return found;
}

/** checkRule's issues as (path, message), remembered per rule object and state of the backends it names. */
function ruleIssues(
  rule: IRHTTPRule,
  backends: ReadonlyMap<string, IRBackend>,
): ReadonlyArray<[string, string]> {
  let refs = "";
  for (const wb of rule.backends) {
    const b = wb.backend === undefined ? undefined : backends.get(wb.backend);
    refs += b === undefined ? "-" : b.protocol === "udp" ? "u" : "+";
  }
  const hit = memo.ruleChecks.get(rule);
  if (hit !== undefined && hit.refs === refs) return hit.issues;
  const list: Array<[string, string]> = [];
  checkRule(rule, (path, message) => list.push([path, message]), backends);
  memo.ruleChecks.set(rule, { refs, issues: list });
  return list;
}

function checkBackend(b: IRBackend, report: (field: string, message: string) => void): void {
  const bridge = b.picker?.bridge;
  if (bridge !== undefined && !BRIDGE_ADDRESS.test(bridge))
    report(".picker.bridge", `${JSON.stringify(bridge)} is not an address and port`);
  for (const [ei, e] of b.endpoints.entries()) {
    if (isIP(e.address) === 0) optional(report, `.endpoints[${ei}].address`, hostnameIssue(e.address, false));
    if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
      report(`.endpoints[${ei}].port`, `${e.port} is not a port`);
  }
  if (b.protocol === "https" && b.tls === undefined) {
    report(".tls", "an https backend needs upstream TLS settings (BackendTLSPolicy) to verify the server");
  }
  if (b.tls !== undefined) {
    optional(report, ".tls.sni", hostnameIssue(b.tls.sni, false));
    for (const [ci, ca] of b.tls.caCertificates.entries())
      optional(report, `.tls.caCertificates[${ci}]`, pemIssue(ca, "CERTIFICATE"));
    const client = b.tls.clientCertificate;
    if (client !== undefined) {
      optional(report, ".tls.clientCertificate.certPem", pemIssue(client.certPem, "CERTIFICATE"));
      optional(report, ".tls.clientCertificate.keyPem", pemIssue(client.keyPem, "PRIVATE KEY"));
    }
    if (b.tls.caCertificates.length === 0 && b.tls.wellKnownCACertificates !== "System") {
      report(".tls.caCertificates", "no CA certificates to verify the server with");
    }
    if (b.tls.caCertificates.length > 0 && b.tls.wellKnownCACertificates === "System") {
      report(
        ".tls.wellKnownCACertificates",
        "HAProxy cannot combine system CAs with explicit CA certificates",
      );
    }
    for (const [i, san] of b.tls.subjectAltNames.entries()) {
      if (!/^(?:DNS|URI):/.test(san) || controlIssue(san) !== undefined)
        report(`.tls.subjectAltNames[${i}]`, `${JSON.stringify(san)} is not DNS:<name> or URI:<uri>`);
    }
    if (b.tls.bridge !== undefined && !/^127\.0\.0\.1:\d{1,5}$/.test(b.tls.bridge))
      report(".tls.bridge", `${JSON.stringify(b.tls.bridge)} is not a loopback address`);
  }
}

function checkL4Backends(
  list: readonly IRWeightedBackend[],
  report: Report,
  backends: ReadonlyMap<string, IRBackend>,
): void {
  for (const [k, wb] of list.entries()) {
    checkWeighted(wb, `.backends[${k}]`, report, backends);
    if (wb.filters.length > 0)
      report(`.backends[${k}].filters`, "filters are not supported on TCP/TLS routes");
  }
}

function checkWeighted(
  wb: IRWeightedBackend,
  path: string,
  report: Report,
  backends: ReadonlyMap<string, IRBackend>,
): void {
  if (!Number.isInteger(wb.weight) || wb.weight < 0 || wb.weight > 1_000_000) {
    report(`${path}.weight`, `${wb.weight} must be an integer in 0..1000000`);
  }
  if (wb.invalid !== true && (wb.backend === undefined || !backends.has(wb.backend))) {
    report(`${path}.backend`, `${JSON.stringify(wb.backend)} is not in backends`);
  }
  if (wb.backend !== undefined && backends.get(wb.backend)?.protocol === "udp") {
    report(`${path}.backend`, "a UDP backend cannot be used here");
  }
}

function checkRule(rule: IRHTTPRule, report: Report, backends: ReadonlyMap<string, IRBackend>): void {
  const v = haproxyValidators;
  const m = rule.match;
  optional(report, ".match.path.value", v.matchPath(m.path.type, m.path.value));
  for (const [i, h] of m.headers.entries()) {
    optional(report, `.match.headers[${i}].name`, v.matchHeaderName(h.name));
    optional(report, `.match.headers[${i}].value`, v.matchHeaderValue(h.type, h.value));
  }
  for (const [i, q] of m.queryParams.entries()) {
    optional(report, `.match.queryParams[${i}].name`, v.matchQueryParamName(q.name));
    optional(report, `.match.queryParams[${i}].value`, v.matchQueryParamValue(q.type, q.value));
  }
  if (m.method !== undefined) optional(report, ".match.method", v.matchMethod(m.method));
  checkFilters(rule.filters, ".filters", report, true);
  for (const [k, wb] of rule.backends.entries()) {
    checkWeighted(wb, `.backends[${k}]`, report, backends);
    checkFilters(wb.filters, `.backends[${k}].filters`, report, false);
  }
  const t = rule.timeouts;
  for (const field of ["requestMs", "backendRequestMs"] as const) {
    const value = t?.[field];
    if (value !== undefined && (!Number.isInteger(value) || value < 0))
      report(`.timeouts.${field}`, `${value} must be a non-negative integer`);
  }
  if (rule.retry !== undefined) {
    const r = rule.retry;
    if (r.attempts !== undefined && (!Number.isInteger(r.attempts) || r.attempts < 0 || r.attempts > 100)) {
      report(".retry.attempts", `${r.attempts} must be an integer in 0..100`);
    }
    for (const [i, code] of r.codes.entries()) optional(report, `.retry.codes[${i}]`, v.retryCode(code));
    if (r.backoffMs !== undefined) optional(report, ".retry.backoffMs", v.retryBackoff(r.backoffMs));
  }
  const sp = rule.sessionPersistence;
  if (sp !== undefined) {
    optional(report, ".sessionPersistence.type", v.sessionPersistenceType(sp.type));
    optional(report, ".sessionPersistence.name", v.sessionName(sp.name));
    const value = sp.absoluteTimeoutMs;
    if (value !== undefined && (!Number.isInteger(value) || value <= 0))
      report(".sessionPersistence.absoluteTimeoutMs", `${value} must be a positive integer`);
  }
}

function checkFilters(
  filters: readonly IRHTTPFilter[],
  at: string,
  report: Report,
  ruleLevel: boolean,
): void {
  const v = haproxyValidators;
  for (const [i, f] of filters.entries()) {
    const path = `${at}[${i}]`;
    if (!ruleLevel) optional(report, path, v.backendRefFilter(f.type));
    switch (f.type) {
      case "RequestHeaderModifier":
      case "ResponseHeaderModifier": {
        const h = f.headers;
        for (const [j, s] of h.set.entries()) {
          optional(report, `${path}.headers.set[${j}].name`, v.headerModifierName(s.name));
          optional(report, `${path}.headers.set[${j}].value`, v.headerModifierValue(s.value));
        }
        for (const [j, s] of h.add.entries()) {
          optional(report, `${path}.headers.add[${j}].name`, v.headerModifierName(s.name));
          optional(report, `${path}.headers.add[${j}].value`, v.headerModifierValue(s.value));
        }
        for (const [j, name] of h.remove.entries())
          optional(report, `${path}.headers.remove[${j}]`, v.headerModifierName(name));
        break;
      }
      case "URLRewrite":
        if (f.rewrite.hostname !== undefined)
          optional(report, `${path}.rewrite.hostname`, v.filterHostname(f.rewrite.hostname));
        if (f.rewrite.path !== undefined) checkPathModifier(f.rewrite.path, `${path}.rewrite.path`, report);
        break;
      case "RequestRedirect": {
        const r = f.redirect;
        if (r.hostname !== undefined)
          optional(report, `${path}.redirect.hostname`, v.filterHostname(r.hostname));
        if (r.port !== undefined && (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535)) {
          report(`${path}.redirect.port`, `${r.port} is not a port`);
        }
        if (!REDIRECT_CODES.has(r.statusCode))
          report(`${path}.redirect.statusCode`, `${r.statusCode} is not a redirect status`);
        if (r.scheme !== "http" && r.scheme !== "https")
          report(`${path}.redirect.scheme`, `${JSON.stringify(r.scheme)} is not http or https`);
        if (r.path !== undefined) checkPathModifier(r.path, `${path}.redirect.path`, report);
        break;
      }
      case "RequestMirror":
        if (!(f.mirror.percent >= 0 && f.mirror.percent <= 100))
          report(`${path}.mirror.percent`, `${f.mirror.percent} is outside 0..100`);
        break;
      case "CORS": {
        const c = f.cors;
        for (const [j, o] of c.allowOrigins.entries())
          optional(report, `${path}.cors.allowOrigins[${j}]`, v.corsOrigin(o));
        for (const [j, m] of c.allowMethods.entries())
          optional(report, `${path}.cors.allowMethods[${j}]`, v.corsMethod(m));
        for (const [j, h] of c.allowHeaders.entries())
          optional(report, `${path}.cors.allowHeaders[${j}]`, v.corsHeaderName(h));
        for (const [j, h] of c.exposeHeaders.entries())
          optional(report, `${path}.cors.exposeHeaders[${j}]`, v.corsHeaderName(h));
        if (!Number.isInteger(c.maxAgeSeconds) || c.maxAgeSeconds < 0)
          report(`${path}.cors.maxAgeSeconds`, `${c.maxAgeSeconds} must be a non-negative integer`);
        break;
      }
      case "ExternalAuth": {
        const a = f.auth;
        if (!ruleLevel) report(path, "ExternalAuth applies to rules only");
        if (
          !Number.isInteger(a.forwardBodyMaxSize) ||
          a.forwardBodyMaxSize < 0 ||
          a.forwardBodyMaxSize > 65535
        )
          report(`${path}.auth.forwardBodyMaxSize`, `${a.forwardBodyMaxSize} is outside 0..65535`);
        if (a.bridge !== undefined && !BRIDGE_ADDRESS.test(a.bridge))
          report(`${path}.auth.bridge`, `${JSON.stringify(a.bridge)} is not an address and port`);
        break;
      }
    }
  }
}

function checkPathModifier(p: IRPathModifier, at: string, report: Report): void {
  const v = haproxyValidators;
  if (p.type === "ReplaceFullPath") {
    optional(report, `${at}.value`, v.filterPath(p.value));
    return;
  }
  // ReplacePrefixMatch: "" replaces the prefix with nothing (the result is then "/").
  if (p.value !== "") optional(report, `${at}.value`, v.filterPath(p.value));
  optional(report, `${at}.prefix`, v.filterPath(p.prefix));
}
