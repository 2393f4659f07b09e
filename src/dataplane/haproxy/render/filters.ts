// Filters of a matched rule (scope `{ var(txn.gh_rule) -m str <rid> }`) or of a chosen backendRef
// (scope `{ var(txn.gh_choice) -m str <rid>/<k> }`), in the order the IR lists them. Request
// filters become `http-request` lines, response filters `http-response` lines with the same scope.
// Values go into log-format arguments (`%` doubled) inside strong quotes; names are plain words.
import type {
  IRCORS,
  IRHTTPFilter,
  IRHeaderModifier,
  IRPathModifier,
  IRRedirect,
} from "../../../ir/types.ts";
import { lf, regexLiteral, word } from "./escape.ts";
import { externalAuthLines } from "./extauth.ts";
import { mirrorLine } from "./mirror.ts";
import { normalizePrefix } from "./routing.ts";

export interface FilterScope {
  /** ACL condition selecting the rule or choice, e.g. `{ var(txn.gh_rule) -m str r1 }`. */
  cond: string;
  /** The value stored in txn.gh_cors when a CORS origin is accepted (rule id or choice key). */
  id: string;
  /** Prefix for named ACLs this scope defines (unique per scope). */
  acl: string;
  /** The HAProxy backend that receives mirrored copies for IRBackend `id` (RequestMirror). */
  mirrorProxy?: (backendId: string) => string;
}

export interface FilterLines {
  request: string[];
  response: string[];
}

function headerLines(phase: "http-request" | "http-response", h: IRHeaderModifier, cond: string): string[] {
  const out: string[] = [];
  for (const s of h.set) out.push(`${phase} set-header ${word(s.name)} ${word(lf(s.value))} if ${cond}`);
  for (const a of h.add) out.push(`${phase} add-header ${word(a.name)} ${word(lf(a.value))} if ${cond}`);
  for (const name of h.remove) out.push(`${phase} del-header ${word(name)} if ${cond}`);
  return out;
}

/**
 * Path modifier on the request path (query kept). ReplacePrefixMatch follows the spec's slash rules:
 * with P the prefix and R the replacement (trailing slashes dropped), the path P itself becomes R as
 * written (or "/"), and P/<rest> becomes R/<rest> (so "/foo" → "/" turns "/foo/bar" into "/bar").
 */
function pathLines(p: IRPathModifier, cond: string, acl: string): string[] {
  if (p.type === "ReplaceFullPath") return [`http-request set-path ${word(lf(p.value))} if ${cond}`];
  const prefix = normalizePrefix(p.prefix);
  const replacement = p.value.replace(/\/+$/, "");
  const out: string[] = [];
  const rest = `http-request replace-path ${word(`^${regexLiteral(prefix)}(/.*)$`)} ${word(`${replacement === "" ? "" : lf(replacement)}\\1`)}`;
  if (prefix === "") {
    if (replacement !== "") out.push(`${rest} if ${cond}`);
    return out;
  }
  out.push(`acl ${acl} path -m str -- ${word(prefix)}`);
  out.push(`http-request set-path ${word(lf(p.value === "" ? "/" : p.value))} if ${cond} ${acl}`);
  out.push(`${rest} if ${cond} !${acl}`);
  return out;
}

function redirectLines(r: IRRedirect, cond: string, acl: string): string[] {
  const out = r.path === undefined ? [] : pathLines(r.path, cond, acl);
  // The request's host without its port (IP literals kept whole, unlike the routing expression).
  const host = r.hostname === undefined ? "%[req.hdr(host),lower,regsub(:[0-9]+$,)]" : lf(r.hostname);
  const port = r.port === undefined ? "" : `:${r.port}`;
  // The path (rewritten above when the filter has a path modifier) and the query of the request.
  out.push(
    `http-request redirect location ${word(`${r.scheme}://${host}${port}%[pathq]`)} code ${r.statusCode} if ${cond}`,
  );
  return out;
}

const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: "80", https: "443" };

/**
 * One regex ACL line per allowed origin (`*` matches any Origin header). Scheme and host compare
 * case-insensitively; a `*` in the host matches one or more DNS labels to its left; an origin
 * without a port also matches its scheme's default port written out, and the other way round
 * (`https://a.test` and `https://a.test:443` are the same origin).
 */
function originAcls(c: IRCORS, acl: string): string[] {
  return c.allowOrigins.map((o) => {
    if (o === "*") return `acl ${acl} req.fhdr(origin) -m found`;
    const m = /^([^:]+):\/\/(.*?)(?::([0-9]+))?$/.exec(o);
    const scheme = (m?.[1] ?? "").toLowerCase();
    const host = m?.[2] ?? o;
    const defaultPort = DEFAULT_PORTS[scheme];
    const port = m?.[3];
    const hostPattern = host.split("*").map(regexLiteral).join("[A-Za-z0-9.-]+");
    let portPattern = "";
    if (port !== undefined && port !== defaultPort) portPattern = `:${port}`;
    else if (defaultPort !== undefined) portPattern = `(:${defaultPort})?`;
    const pattern = `^${regexLiteral(scheme)}://${hostPattern}${portPattern}$`;
    return `acl ${acl} req.fhdr(origin) -m reg -i -- ${word(pattern)}`;
  });
}

/**
 * The value of an Access-Control-Allow-{Methods,Headers} answer: the configured list, or for `*`
 * either `*` or, with credentials (where a literal `*` is not allowed), the request's own value.
 */
function corsList(values: readonly string[], credentials: boolean, reflect: string): string | undefined {
  if (values.length === 0) return undefined;
  if (values.includes("*")) return credentials ? `%[req.fhdr(${reflect})]` : "*";
  return lf(values.join(", "));
}

/** Access-Control-Expose-Headers: `*` cannot be used with credentials, so it is left out then. */
function exposeValue(c: IRCORS): string | undefined {
  if (c.exposeHeaders.length === 0) return undefined;
  if (c.exposeHeaders.includes("*")) return c.allowCredentials ? undefined : "*";
  return lf(c.exposeHeaders.join(", "));
}

const PREFLIGHT =
  "METH_OPTIONS { req.fhdr(origin) -m found } { req.fhdr(access-control-request-method) -m found }";

/** The `hdr` arguments of the answer to an accepted preflight. */
function preflightHeaders(c: IRCORS, withRequestHeaders: boolean): string {
  const list: Array<[string, string | undefined]> = [
    ["Access-Control-Allow-Origin", "%[var(txn.gh_origin)]"],
    [
      "Access-Control-Allow-Methods",
      corsList(c.allowMethods, c.allowCredentials, "access-control-request-method"),
    ],
    [
      "Access-Control-Allow-Headers",
      withRequestHeaders
        ? corsList(c.allowHeaders, c.allowCredentials, "access-control-request-headers")
        : undefined,
    ],
    ["Access-Control-Expose-Headers", exposeValue(c)],
    ["Access-Control-Max-Age", String(c.maxAgeSeconds)],
    ["Access-Control-Allow-Credentials", c.allowCredentials ? "true" : undefined],
    ["Vary", "Origin"],
  ];
  return list
    .flatMap(([name, value]) => (value === undefined ? [] : [`hdr ${name} ${word(value)}`]))
    .join(" ");
}

/**
 * The CORS filter (HTTPRoute CORSFilter spec): a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered by the gateway, never forwarded: 200 with the CORS
 * headers from an allowed origin, 204 without any from another origin. Other requests from an
 * allowed origin get Access-Control-Allow-Origin (the request's Origin), -Allow-Credentials and
 * -Expose-Headers on the backend's response; every response of the rule varies on Origin.
 */
function corsLines(c: IRCORS, scope: FilterScope, acl: string): FilterLines {
  const request = originAcls(c, acl);
  const response: string[] = [];
  if (request.length > 0) {
    const mine = `{ var(txn.gh_cors) -m str ${scope.id} }`;
    request.push(`http-request set-var(txn.gh_cors) str(${scope.id}) if ${scope.cond} ${acl}`);
    request.push(`http-request set-var(txn.gh_origin) req.fhdr(origin) if ${scope.cond} ${acl}`);
    if (c.allowCredentials && c.allowHeaders.includes("*")) {
      // The requested headers are reflected; without Access-Control-Request-Headers there are none.
      const asked = "{ req.fhdr(access-control-request-headers) -m found }";
      request.push(
        `http-request return status 200 ${preflightHeaders(c, true)} if ${mine} ${PREFLIGHT} ${asked}`,
      );
      request.push(
        `http-request return status 200 ${preflightHeaders(c, false)} if ${mine} ${PREFLIGHT} !${asked}`,
      );
    } else {
      request.push(`http-request return status 200 ${preflightHeaders(c, true)} if ${mine} ${PREFLIGHT}`);
    }
    response.push(
      `http-response set-header Access-Control-Allow-Origin ${word("%[var(txn.gh_origin)]")} if ${mine}`,
    );
    if (c.allowCredentials)
      response.push(`http-response set-header Access-Control-Allow-Credentials true if ${mine}`);
    const expose = exposeValue(c);
    if (expose !== undefined) {
      response.push(`http-response set-header Access-Control-Expose-Headers ${word(expose)} if ${mine}`);
    }
  }
  // A preflight from an origin that is not allowed: answered here too, without CORS headers.
  if (!c.allowOrigins.includes("*")) {
    const denied = request.length > 0 ? `!${acl} ` : "";
    request.push(`http-request return status 204 hdr Vary Origin if ${scope.cond} ${denied}${PREFLIGHT}`);
  }
  response.push(`http-response add-header Vary Origin if ${scope.cond}`);
  return { request, response };
}

export function filterLines(filters: readonly IRHTTPFilter[], scope: FilterScope): FilterLines {
  const out: FilterLines = { request: [], response: [] };
  for (const [i, f] of filters.entries()) {
    const acl = `${scope.acl}_f${i}`;
    switch (f.type) {
      case "RequestHeaderModifier":
        out.request.push(...headerLines("http-request", f.headers, scope.cond));
        break;
      case "ResponseHeaderModifier":
        out.response.push(...headerLines("http-response", f.headers, scope.cond));
        break;
      case "URLRewrite":
        if (f.rewrite.hostname !== undefined) {
          out.request.push(`http-request set-header host ${word(lf(f.rewrite.hostname))} if ${scope.cond}`);
        }
        if (f.rewrite.path !== undefined) out.request.push(...pathLines(f.rewrite.path, scope.cond, acl));
        break;
      case "RequestRedirect":
        out.request.push(...redirectLines(f.redirect, scope.cond, acl));
        break;
      case "CORS": {
        const c = corsLines(f.cors, scope, acl);
        out.request.push(...c.request);
        out.response.push(...c.response);
        break;
      }
      case "RequestMirror": {
        if (scope.mirrorProxy === undefined)
          throw new Error("internal: RequestMirror without a mirror resolver");
        out.request.push(mirrorLine(scope.mirrorProxy(f.mirror.backend), f.mirror.percent, scope.cond));
        break;
      }
      case "ExternalAuth":
        out.request.push(...externalAuthLines(f.auth, scope.cond));
        break;
    }
  }
  return out;
}
