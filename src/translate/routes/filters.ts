// HTTPRoute and GRPCRoute filters → IR filters (a GRPCRouteFilter is an HTTPRouteFilter restricted to
// the header modifiers, RequestMirror and ExtensionRef). Redirects and prefix rewrites depend on the
// listener and on the match they apply to, so conversion happens per (listener, match).
import type {
  IRExternalAuth,
  IRHeaderModifier,
  IRHTTPFilter,
  IRMirror,
  IRPathModifier,
  IRRedirect,
} from "../../ir/types.ts";
import type { HTTPRouteSpec } from "../../resources/generated/types.ts";

export type HTTPRouteRule = NonNullable<HTTPRouteSpec["rules"]>[number];
export type HTTPRouteFilter = NonNullable<HTTPRouteRule["filters"]>[number];
export type HTTPBackendRef = NonNullable<HTTPRouteRule["backendRefs"]>[number];

/**
 * Why Gatehouse cannot apply a filter, if it cannot. Either way the filter "MUST NOT be skipped":
 * the requests it applies to get HTTP 500. An ExtensionRef names a resource of a kind Gatehouse does
 * not know, an unresolvable reference ("ResolvedRefs" False, reason InvalidKind: "a reference to an
 * unknown or unsupported Group and/or Kind"); a filter Gatehouse does not implement (ExternalAuth on
 * a backendRef: the API defines it for rules only) makes the rule invalid (PartiallyInvalid, or
 * Accepted False when every rule is).
 */
export function filterProblem(
  f: HTTPRouteFilter,
  at: string,
  onBackendRef = false,
): { unresolvedRef: boolean; message: string } | undefined {
  if (f.type === "ExtensionRef") {
    const ref = f.extensionRef;
    const what = ref === undefined ? "" : ` ${ref.group}/${ref.kind} ${ref.name}`;
    return {
      unresolvedRef: true,
      message: `${at}: ExtensionRef${what}: Gatehouse supports no filter extensions`,
    };
  }
  if (f.type === "ExternalAuth" && onBackendRef) {
    return {
      unresolvedRef: false,
      message: `${at}: ExternalAuth is supported on rules only, not on backendRefs`,
    };
  }
  return undefined;
}

export interface FilterContext {
  listenerProtocol: "HTTP" | "HTTPS";
  listenerPort: number;
  /** The PathPrefix value of the match the filter applies to, if the match is a PathPrefix. */
  prefix: string | undefined;
  /** Mirror filters already resolved, by filter index (undefined: the mirror backend is invalid). */
  mirrors: ReadonlyMap<number, IRMirror | undefined>;
  /** ExternalAuth filters already resolved, by filter index (rule-level only). */
  externalAuths?: ReadonlyMap<number, IRExternalAuth>;
}

const DEFAULT_PORT: Record<"http" | "https", number> = { http: 80, https: 443 };

type HeaderModifierSpec = NonNullable<HTTPRouteFilter["requestHeaderModifier"]>;

function headerModifier(spec: HeaderModifierSpec): IRHeaderModifier {
  return {
    set: (spec.set ?? []).map(({ name, value }) => ({ name, value })),
    add: (spec.add ?? []).map(({ name, value }) => ({ name, value })),
    remove: [...(spec.remove ?? [])],
  };
}

type PathSpec = NonNullable<NonNullable<HTTPRouteFilter["urlRewrite"]>["path"]>;

function pathModifier(path: PathSpec, prefix: string | undefined): IRPathModifier | undefined {
  if (path.type === "ReplaceFullPath") return { type: "ReplaceFullPath", value: path.replaceFullPath ?? "/" };
  // "ReplacePrefixMatch is only compatible with a PathPrefix HTTPRouteMatch" (enforced by CEL).
  if (prefix === undefined) return undefined;
  return { type: "ReplacePrefixMatch", prefix, value: path.replacePrefixMatch ?? "/" };
}

/**
 * Resolves a RequestRedirect per the spec: "If no port is specified, the redirect port MUST be
 * derived using the following rules: If redirect scheme is not-empty, the redirect port MUST be the
 * well-known port associated with the redirect scheme. ... If redirect scheme is empty, the redirect
 * port MUST be the Gateway Listener port." and "Implementations SHOULD NOT add the port number in
 * the 'Location' header" for http on 80 and https on 443.
 */
export function resolveRedirect(
  spec: NonNullable<HTTPRouteFilter["requestRedirect"]>,
  ctx: FilterContext,
): IRRedirect | undefined {
  const scheme = spec.scheme ?? (ctx.listenerProtocol === "HTTPS" ? "https" : "http");
  const port = spec.port ?? (spec.scheme !== undefined ? DEFAULT_PORT[spec.scheme] : ctx.listenerPort);
  let path: IRPathModifier | undefined;
  if (spec.path !== undefined) {
    path = pathModifier(spec.path, ctx.prefix);
    if (path === undefined) return undefined;
  }
  return {
    scheme,
    ...(spec.hostname !== undefined ? { hostname: spec.hostname } : {}),
    ...(port !== DEFAULT_PORT[scheme] ? { port } : {}),
    ...(path !== undefined ? { path } : {}),
    statusCode: spec.statusCode ?? 302,
  };
}

/** Converts filters to IR; returns an error message for a filter that cannot be applied. */
export function convertFilters(
  filters: readonly HTTPRouteFilter[],
  ctx: FilterContext,
): { filters: IRHTTPFilter[] } | { error: string } {
  const out: IRHTTPFilter[] = [];
  for (const [i, f] of filters.entries()) {
    switch (f.type) {
      case "RequestHeaderModifier":
        if (f.requestHeaderModifier)
          out.push({ type: "RequestHeaderModifier", headers: headerModifier(f.requestHeaderModifier) });
        break;
      case "ResponseHeaderModifier":
        if (f.responseHeaderModifier)
          out.push({ type: "ResponseHeaderModifier", headers: headerModifier(f.responseHeaderModifier) });
        break;
      case "RequestRedirect": {
        if (!f.requestRedirect) break;
        const redirect = resolveRedirect(f.requestRedirect, ctx);
        if (redirect === undefined)
          return { error: `filters[${i}]: ReplacePrefixMatch needs a PathPrefix match` };
        out.push({ type: "RequestRedirect", redirect });
        break;
      }
      case "URLRewrite": {
        if (!f.urlRewrite) break;
        let path: IRPathModifier | undefined;
        if (f.urlRewrite.path !== undefined) {
          path = pathModifier(f.urlRewrite.path, ctx.prefix);
          if (path === undefined)
            return { error: `filters[${i}]: ReplacePrefixMatch needs a PathPrefix match` };
        }
        out.push({
          type: "URLRewrite",
          rewrite: {
            ...(f.urlRewrite.hostname !== undefined ? { hostname: f.urlRewrite.hostname } : {}),
            ...(path !== undefined ? { path } : {}),
          },
        });
        break;
      }
      case "RequestMirror": {
        const mirror = ctx.mirrors.get(i);
        if (mirror !== undefined) out.push({ type: "RequestMirror", mirror });
        break;
      }
      case "CORS": {
        const c = f.cors ?? {};
        out.push({
          type: "CORS",
          cors: {
            allowOrigins: [...(c.allowOrigins ?? [])],
            allowCredentials: c.allowCredentials ?? false,
            allowMethods: [...(c.allowMethods ?? [])],
            allowHeaders: [...(c.allowHeaders ?? [])],
            exposeHeaders: [...(c.exposeHeaders ?? [])],
            maxAgeSeconds: c.maxAge ?? 5,
          },
        });
        break;
      }
      case "ExternalAuth": {
        // An unresolved auth service fails the rule closed before conversion (rules.ts).
        const auth = ctx.externalAuths?.get(i);
        if (auth === undefined) return { error: `filters[${i}]: ExternalAuth has no resolved service` };
        out.push({ type: "ExternalAuth", auth });
        break;
      }
      default:
        return { error: `filters[${i}]: filter type ${f.type} is not supported by Gatehouse` };
    }
  }
  return { filters: out };
}

/** Share of requests a RequestMirror filter mirrors, in percent. Default: all of them. */
export function mirrorPercent(spec: NonNullable<HTTPRouteFilter["requestMirror"]>): number {
  if (spec.percent !== undefined) return spec.percent;
  if (spec.fraction !== undefined) {
    const denominator = spec.fraction.denominator ?? 100;
    return denominator === 0 ? 0 : (spec.fraction.numerator / denominator) * 100;
  }
  return 100;
}

/**
 * The IR of an ExternalAuth filter whose service resolved to IRBackend `backend`. Header names are
 * compared in lower case (HTTP header names are case-insensitive); the path prefix loses a trailing
 * slash (it is joined with the request path, which starts with one).
 */
export function externalAuth(
  spec: NonNullable<HTTPRouteFilter["externalAuth"]>,
  backend: string,
): IRExternalAuth {
  const lower = (names: readonly string[] | undefined): string[] =>
    [...new Set((names ?? []).map((n) => n.toLowerCase()))].sort();
  const http = spec.protocol === "HTTP" ? spec.http : undefined;
  return {
    protocol: spec.protocol,
    backend,
    pathPrefix: (http?.path ?? "").replace(/\/+$/, ""),
    allowedRequestHeaders: lower(spec.protocol === "GRPC" ? spec.grpc?.allowedHeaders : http?.allowedHeaders),
    allowedResponseHeaders: lower(http?.allowedResponseHeaders),
    forwardBodyMaxSize: spec.forwardBody?.maxSize ?? 0,
  };
}
