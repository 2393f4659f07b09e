// The last line of defence behind the data plane's validators (../capabilities.ts), which the
// translator calls while it builds each rule so that nothing HAProxy cannot express reaches the IR.
// Should the renderer still find something (a gap in the validators, an IR built elsewhere),
// `degrade` narrows the damage to the offending element instead of failing the whole configuration:
// a rule is left out (every string of it, its match included, goes with it), an L4 route loses its
// backends, a listener is left out, a backend's share answers 500. It also says which objects were
// affected, so their status tells the user (status/feedback.ts).
import type { IR, IRHTTPRule, IRListener, IRWeightedBackend } from "../../ir/types.ts";
import type { RenderIssue } from "./render/index.ts";

export interface Degradation {
  issue: RenderIssue;
  /** The route whose rule or attachment was narrowed, if any. */
  route?: { kind: string; namespace: string; name: string };
  /** `namespace/gateway/listener` of a listener left out, if any. */
  listenerId?: string;
}

export interface DegradeResult {
  ir: IR;
  degradations: Degradation[];
  /** Issues that cannot be narrowed to one element (e.g. about options): the IR cannot be rendered. */
  fatal: RenderIssue[];
}

const INDEX = (name: string): RegExp => new RegExp(`(?:^|\\.)${name}\\[(\\d+)\\]`);

function indexIn(path: string, name: string): number | undefined {
  const m = INDEX(name).exec(path);
  return m === null ? undefined : Number(m[1]);
}

/** Replaces what each issue points at, as described above. Pure: `ir` is not modified. */
export function degrade(ir: IR, issues: readonly RenderIssue[]): DegradeResult {
  const out = structuredClone(ir);
  const degradations: Degradation[] = [];
  const fatal: RenderIssue[] = [];
  const dropListeners = new Set<IRListener>();
  const dropRules = new Set<IRHTTPRule>();
  const deadBackends = new Set<string>();
  for (const issue of issues) {
    const path = issue.path;
    const gi = indexIn(path, "gateways");
    const li = indexIn(path, "listeners");
    const listener = gi !== undefined && li !== undefined ? out.gateways[gi]?.listeners[li] : undefined;
    if (listener !== undefined) {
      const vi = indexIn(path, "virtualHosts");
      const ri = indexIn(path, "rules");
      const rule = vi !== undefined && ri !== undefined ? listener.virtualHosts?.[vi]?.rules[ri] : undefined;
      if (rule !== undefined) {
        dropRules.add(rule);
        degradations.push({ issue, route: rule.route });
        continue;
      }
      const l4 = (["tlsRoutes", "tcpRoutes", "udpRoutes"] as const).find(
        (k) => indexIn(path, k) !== undefined,
      );
      const l4Index = l4 === undefined ? undefined : indexIn(path, l4);
      const l4Route = l4 === undefined || l4Index === undefined ? undefined : listener[l4]?.[l4Index];
      if (l4 !== undefined && l4Route !== undefined) {
        l4Route.backends = [];
        degradations.push({ issue, route: l4Route.route });
        continue;
      }
      dropListeners.add(listener);
      degradations.push({ issue, listenerId: listener.id });
      continue;
    }
    const bi = indexIn(path, "backends");
    const backend = bi !== undefined && path.startsWith("backends[") ? out.backends[bi] : undefined;
    if (backend !== undefined) {
      deadBackends.add(backend.id);
      degradations.push({ issue });
      continue;
    }
    fatal.push(issue);
  }
  for (const g of out.gateways) {
    g.listeners = g.listeners.filter((l) => !dropListeners.has(l));
    for (const l of g.listeners) {
      for (const vh of l.virtualHosts ?? []) vh.rules = vh.rules.filter((r) => !dropRules.has(r));
    }
  }
  if (deadBackends.size > 0) {
    out.backends = out.backends.filter((b) => !deadBackends.has(b.id));
    const fix = (list: IRWeightedBackend[]): IRWeightedBackend[] =>
      list.map((wb) =>
        wb.backend !== undefined && deadBackends.has(wb.backend)
          ? { weight: wb.weight, filters: [], invalid: true }
          : wb,
      );
    for (const g of out.gateways) {
      for (const l of g.listeners) {
        for (const vh of l.virtualHosts ?? []) {
          for (const r of vh.rules) {
            r.backends = fix(r.backends);
            r.filters = r.filters.filter(
              (f) => f.type !== "RequestMirror" || !deadBackends.has(f.mirror.backend),
            );
          }
        }
        for (const r of [...(l.tlsRoutes ?? []), ...(l.tcpRoutes ?? []), ...(l.udpRoutes ?? [])])
          r.backends = fix(r.backends);
      }
    }
  }
  return { ir: out, degradations, fatal };
}
