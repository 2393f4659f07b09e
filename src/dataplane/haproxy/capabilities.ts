// What HAProxy 2.6, as Gatehouse renders it, can express: the validators the translator calls while
// it builds each rule (see ../capabilities.ts). The renderer's own IR check (render/check.ts) calls
// the same functions, so the translator and the renderer can never disagree about a value.
//
// Regular expressions: Gatehouse's dialect is RE2 (as Envoy-based gateways and the Gateway API
// conformance tests assume), executed by HAProxy's PCRE2 anchored as `^(?:<re>)$`. A pattern must
// compile as RE2, which rules out what PCRE2 would read differently or cannot compile in HAProxy
// (backreferences, lookaround, variable-length lookbehind, possessive quantifiers, recursion), and
// must pass the structural check of render/syntax.ts (no construct that could escape the wrapper).
import { RE2JS } from "@bufbuild/re2";
import type { DataplaneValidators, Verdict } from "../capabilities.ts";
import {
  controlIssue,
  corsOriginIssue,
  headerValueIssue,
  hostnameIssue,
  pathIssue,
  regexIssue,
  tokenIssue,
} from "./render/syntax.ts";

/** `retry-on` status codes HAProxy 2.6 accepts. */
export const RETRY_CODES: ReadonlySet<number> = new Set([401, 403, 404, 408, 425, 500, 501, 502, 503, 504]);
const METHOD = /^[A-Z]+$/;
/** Filter types HAProxy can apply per backendRef (in the backend section). */
const BACKEND_REF_FILTERS: ReadonlySet<string> = new Set([
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "URLRewrite",
  "RequestMirror",
  "ExtensionRef",
  "ExternalAuth",
]);

/** Why `re` is not a regular expression Gatehouse can give HAProxy, if it is not. */
export function haproxyRegexIssue(re: string): Verdict {
  const structural = regexIssue(re);
  if (structural !== undefined) return structural;
  try {
    RE2JS.compile(re);
    return undefined;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return `is not a valid RE2 regular expression (${controlIssue(why) === undefined ? why : "malformed"})`;
  }
}

export const haproxyValidators: DataplaneValidators = {
  name: "HAProxy 2.6",

  matchPath(type, value) {
    if (type === "RegularExpression") return haproxyRegexIssue(value);
    if (!value.startsWith("/")) return 'must start with "/"';
    return controlIssue(value);
  },
  matchHeaderName: (name) => tokenIssue(name, "header name"),
  matchHeaderValue: (type, value) =>
    type === "RegularExpression" ? haproxyRegexIssue(value) : headerValueIssue(value),
  matchQueryParamName: (name) => tokenIssue(name, "query parameter name"),
  matchQueryParamValue: (type, value) =>
    type === "RegularExpression" ? haproxyRegexIssue(value) : headerValueIssue(value),
  matchMethod: (method) => (METHOD.test(method) ? undefined : `${JSON.stringify(method)} is not a method`),

  headerModifierName: (name) => tokenIssue(name, "header name"),
  headerModifierValue: (value) => headerValueIssue(value),
  filterHostname: (hostname) => hostnameIssue(hostname, false),
  filterPath: (path) => pathIssue(path),
  corsOrigin: (origin) => corsOriginIssue(origin),
  corsMethod: (method) => (method === "*" ? undefined : tokenIssue(method, "method")),
  corsHeaderName: (name) => (name === "*" ? undefined : tokenIssue(name, "header name")),
  backendRefFilter: (type) =>
    BACKEND_REF_FILTERS.has(type) ? undefined : `${type} is not supported on backendRefs`,

  retryCode: (code) =>
    RETRY_CODES.has(code)
      ? undefined
      : `HAProxy 2.6 retry-on cannot retry on status ${code} (only ${[...RETRY_CODES].join(", ")})`,
  retryBackoff: () =>
    "HAProxy 2.6 cannot wait between retries (it retries at once), so a retry backoff cannot be honoured",
  sessionPersistenceType: () => undefined,
  // A cookie name or a header name: both are RFC 9110 tokens.
  sessionName: (name) => tokenIssue(name, "session name"),
};
