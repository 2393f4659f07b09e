// The HAProxy renderer: a pure function from the IR to haproxy.cfg plus the files it references
// (map files, crt-lists, PEM bundles, CA bundles, error pages). Same IR and options → byte-identical
// output. See routing.ts, hosts.ts, weights.ts and filters.ts for how Gateway API semantics map to
// HAProxy, escape.ts for how resource strings are kept from changing the configuration's structure.
import type { IR, IRL4Route } from "../../../ir/types.ts";
import { BackendSet } from "./backends.ts";
import { checkIR, checkOptions } from "./check.ts";
import { RenderError, type RenderIssue } from "./errors.ts";
import { fastFrontend, statusBackends } from "./fast.ts";
import { httpFrontend, tcpFrontend, type L4Prepared } from "./frontends.ts";
import { accessLogRing } from "./logging.ts";
import { ruleStatsSections } from "./metrics.ts";
import { mirrorFrontend, mirrorGlobalLines } from "./mirror.ts";
import { pickerGlobalLines } from "./epp.ts";
import { externalAuthGlobalLines } from "./extauth.ts";
import { globalSection, httpDefaults, metricsFrontend, tcpDefaults, writeErrorPages } from "./global.ts";
import { addTLSRoutes, addVirtualHosts } from "./hosts.ts";
import {
  RenderContext,
  renderConfig,
  sectionLookups,
  type BackendLayout,
  type RenderedConfig,
  type RenderOptions,
  type Section,
} from "./model.ts";
import { planFrontends, type ListenerRef, type Plan } from "./plan.ts";
import { RouteChain } from "./routing.ts";
import { l4RouteId, prepareL4Route, prepareRule } from "./rules.ts";
import { writeCrtList } from "./tls.ts";

export { RenderError, formatIssue, type RenderIssue } from "./errors.ts";
export { forgetRendered } from "./memo.ts";
export type {
  BackendLayout,
  BackendSection,
  Profile,
  RenderedBackend,
  RenderedConfig,
  RenderOptions,
} from "./model.ts";

const CHECK_OPTIONS: RenderOptions = {
  stateDir: "/var/lib/gatehouse",
  runtimeSocket: "/run/gatehouse/haproxy.sock",
  serverSlots: 16,
  hardStopAfter: "30s",
};

/**
 * Everything in `ir` (and `options`, when given) that the renderer cannot express: unsupported retry codes/backoff, unsafe strings (control characters,
 * unbalanced regexes), protocol conflicts on a port, ... Empty when `render` will succeed.
 */
export function checkRenderable(ir: IR, options?: RenderOptions): RenderIssue[] {
  const issues = [...(options === undefined ? [] : checkOptions(options)), ...checkIR(ir)];
  const plan = planFrontends(new RenderContext(options ?? CHECK_OPTIONS), ir.gateways);
  return [...issues, ...plan.issues];
}

/**
 * Renders the IR. Throws RenderError (with every issue) when something cannot be expressed.
 *
 * `previous`: the `layout` of the configuration running (rendered with the same options). The
 * result then keeps its backend sections (names and order): a new IRBackend needing the plain HTTP
 * profile takes a free spare, sections nothing uses any more stay with their servers disabled. When
 * that is not enough (another profile, upstream TLS, no free spare, more endpoints than slots) it
 * adds sections, i.e. its `structure` differs and HAProxy must reload: render again without
 * `previous` for the reload, which drops unused sections and frees every spare.
 */
export function render(ir: IR, options: RenderOptions, previous?: BackendLayout): RenderedConfig {
  const ctx = new RenderContext(options);
  const plan = planFrontends(ctx, ir.gateways);
  const issues = [...checkOptions(options), ...checkIR(ir), ...plan.issues];
  if (issues.length > 0) throw new RenderError(issues);

  // HTTP listeners (each once, even when bound on several addresses).
  const httpListeners = uniqueListeners(
    plan,
    (r) => r.listener.protocol === "HTTP" || r.listener.protocol === "HTTPS",
  );
  const spares = httpListeners.length > 0 ? (options.spareBackends ?? 0) : 0;
  const backends = new BackendSet(ctx, ir.backends, spares, previous);
  writeErrorPages(ctx);

  for (const r of httpListeners) addVirtualHosts(ctx, r);
  const chain = new RouteChain(ctx, httpListeners);
  const prepared = chain.rules.map((r) => prepareRule(ctx, backends, r));

  // TCP and TLS listeners.
  const l4: L4Prepared = { tcpRoute: new Map(), choices: new Map(), tlsRoutes: new Map() };
  for (const r of uniqueListeners(plan, (x) => x.listener.protocol === "TCP")) {
    const route: IRL4Route | undefined = r.listener.tcpRoutes?.[0];
    if (route === undefined) continue;
    const tid = l4RouteId(ctx, r.listener, route);
    l4.tcpRoute.set(r.lid, tid);
    l4.choices.set(tid, prepareL4Route(ctx, backends, tid, route));
  }
  for (const r of uniqueListeners(plan, (x) => x.listener.protocol === "TLS")) {
    const ids = (r.listener.tlsRoutes ?? []).map((route) => l4RouteId(ctx, r.listener, route));
    l4.tlsRoutes.set(r.lid, ids);
    addTLSRoutes(ctx, r, (i) => ids[i] ?? "");
    for (const [i, route] of (r.listener.tlsRoutes ?? []).entries()) {
      const tid = ids[i] ?? "";
      l4.choices.set(tid, prepareL4Route(ctx, backends, tid, route));
    }
  }

  const httpSections: Section[] = [];
  const tcpSections: Section[] = [];
  let fastRouting = false;
  for (const fe of plan.frontends) {
    if (fe.kind === "http") {
      if (fe.tls) writeCrtList(ctx, fe.name, fe.listeners, true);
      const fast = fastFrontend(ctx, fe, prepared);
      fastRouting ||= fast !== undefined;
      httpSections.push(fast ?? httpFrontend(ctx, fe, chain, prepared));
    } else {
      if (fe.tls) writeCrtList(ctx, fe.name, fe.listeners, false);
      tcpSections.push(tcpFrontend(ctx, fe, l4));
    }
  }
  const loops: Section[] = plan.loops.map((l) => ({
    header: `backend ${l.name}`,
    lines: ["mode tcp", `server s1 unix@${l.socket} send-proxy-v2`],
  }));

  const global = globalSection(ctx);
  global.lines.push(...mirrorGlobalLines(ctx, ir));
  global.lines.push(...externalAuthGlobalLines(ctx, ir));
  global.lines.push(...pickerGlobalLines(ctx, ir));
  const httpBackendSections = backends.sections("http");
  const sections: Section[] = [
    global,
    ...accessLogRing(ctx),
    httpDefaults(ctx),
    ...metricsFrontend(ctx),
    ...mirrorFrontend(ctx, ir),
    ...httpSections,
    ...httpBackendSections,
    ...(fastRouting ? statusBackends() : []),
    ...ruleStatsSections(ctx),
    tcpDefaults(ctx),
    ...tcpSections,
    ...backends.sections("tcp"),
    ...loops,
  ];
  const header = "# Generated by Gatehouse from the IR. Do not edit: changes are overwritten.\n\n";
  const { config, structure } = renderConfig(header, sections);
  return {
    config,
    files: ctx.allFiles(),
    backends: backends.runtime(),
    layout: backends.layout(),
    maps: ctx.allMaps(),
    // Backend sections look maps up too (header session persistence), after the frontends.
    lookups: mapLookups(ctx, [...httpSections, ...tcpSections, ...httpBackendSections]),
    structure,
  };
}

/** Map match functions whose lookup does not depend on entry order (tree-indexed in HAProxy 2.6). */
const TREE_MATCH = new Set(["str", "beg", "ip"]);

/** Map files in the order the frontends first look them up, and whether entry order matters. */
function mapLookups(ctx: RenderContext, sections: readonly Section[]): RenderedConfig["lookups"] {
  const prefix = `${ctx.stateDir}/`;
  const found = new Map<string, boolean>();
  for (const s of sections) {
    for (const [path, match] of sectionLookups(s)) {
      if (!path.startsWith(prefix)) continue;
      const file = path.slice(prefix.length);
      const tree = TREE_MATCH.has(match) && found.get(file) !== false;
      found.set(file, tree);
    }
  }
  return [...found].map(([file, tree]) => ({ file, index: tree ? "tree" : "list" }));
}

function uniqueListeners(plan: Plan, keep: (r: ListenerRef) => boolean): ListenerRef[] {
  const seen = new Set<string>();
  const out: ListenerRef[] = [];
  for (const fe of plan.frontends) {
    for (const r of fe.listeners) {
      if (!keep(r) || seen.has(r.lid)) continue;
      seen.add(r.lid);
      out.push(r);
    }
  }
  return out;
}
