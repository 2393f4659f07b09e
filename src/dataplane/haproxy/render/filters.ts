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

function originAcls(c: IRCORS, acl: string): string[] {
  return c.allowOrigins.map((o) => {
    if (o === "*") return `acl ${acl} req.fhdr(origin) -m found`;
    if (!o.includes("*")) return `acl ${acl} req.fhdr(origin) -m str -i -- ${word(o)}`;
    const pattern = o.split("*").map(regexLiteral).join("[A-Za-z0-9.-]+");
    return `acl ${acl} req.fhdr(origin) -m reg -i -- ${word(`^${pattern}$`)}`;
  });
}

/** `*` answers: reflect the request's value with credentials (a literal `*` is not allowed then). */
function corsList(values: readonly string[], credentials: boolean, reflect: string): string | undefined {
  if (values.length === 0) return undefined;
  if (values.includes("*")) return credentials ? `%[req.fhdr(${reflect})]` : "*";
  return lf(values.join(", "));
}

function corsLines(c: IRCORS, scope: FilterScope, acl: string): FilterLines {
  const request = originAcls(c, acl);
  request.push(`http-request set-var(txn.gh_cors) str(${scope.id}) if ${scope.cond} ${acl}`);
  request.push(`http-request set-var(txn.gh_origin) req.fhdr(origin) if ${scope.cond} ${acl}`);
  const headers: Array<[string, string | undefined]> = [
    ["Access-Control-Allow-Origin", "%[var(txn.gh_origin)]"],
    [
      "Access-Control-Allow-Methods",
      corsList(c.allowMethods, c.allowCredentials, "access-control-request-method"),
    ],
    [
      "Access-Control-Allow-Headers",
      corsList(c.allowHeaders, c.allowCredentials, "access-control-request-headers"),
    ],
    ["Access-Control-Expose-Headers", corsList(c.exposeHeaders, false, "")],
    ["Access-Control-Max-Age", String(c.maxAgeSeconds)],
    ["Access-Control-Allow-Credentials", c.allowCredentials ? "true" : undefined],
    ["Vary", "Origin"],
  ];
  const hdrs = headers.flatMap(([name, value]) =>
    value === undefined ? [] : [`hdr ${name} ${word(value)}`],
  );
  const mine = `{ var(txn.gh_cors) -m str ${scope.id} }`;
  // Preflight from an accepted origin: answered here. Other preflights go to the backend untouched.
  request.push(
    `http-request return status 200 ${hdrs.join(" ")} if ${mine} METH_OPTIONS { req.fhdr(access-control-request-method) -m found }`,
  );
  const response = [
    `http-response set-header Access-Control-Allow-Origin ${word("%[var(txn.gh_origin)]")} if ${mine}`,
  ];
  if (c.allowCredentials)
    response.push(`http-response set-header Access-Control-Allow-Credentials true if ${mine}`);
  const expose = corsList(c.exposeHeaders, false, "");
  if (expose !== undefined) {
    response.push(`http-response set-header Access-Control-Expose-Headers ${word(expose)} if ${mine}`);
  }
  response.push(`http-response add-header Vary Origin if ${mine}`);
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
    }
  }
  return out;
}
