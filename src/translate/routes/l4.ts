// TLSRoute, TCPRoute and UDPRoute: one rule of weighted backendRefs (v1.6.1 allows exactly one rule).
import type { IRBackend, IRWeightedBackend } from "../../ir/types.ts";
import type { TCPRoute, TLSRoute, UDPRoute } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import { resolveBackendRef } from "../backends.ts";
import * as cond from "../conditions.ts";
import type { ConditionSpec } from "../conditions.ts";
import { GATEWAY_GROUP } from "../gateway.ts";

export type L4Route = TLSRoute | TCPRoute | UDPRoute;

export interface L4RouteResult {
  conditions: ConditionSpec[];
  backends: IRWeightedBackend[];
}

/** Resolves the backendRefs of an L4 route and registers its backends. */
export function translateL4Route(
  snapshot: Snapshot,
  kind: "TLSRoute" | "TCPRoute" | "UDPRoute",
  route: L4Route,
  backends: Map<string, IRBackend>,
): L4RouteResult {
  const namespace = route.metadata.namespace ?? "default";
  const family = kind === "UDPRoute" ? "l4udp" : "l4tcp";
  const out: IRWeightedBackend[] = [];
  const failures: Array<{ reason: cond.RouteRefReason; message: string }> = [];
  route.spec.rules.forEach((rule, ri) => {
    rule.backendRefs.forEach((ref, bi) => {
      const weight = ref.weight ?? 1;
      const r = resolveBackendRef(
        snapshot,
        { group: GATEWAY_GROUP, kind, namespace },
        ref,
        family,
        `spec.rules[${ri}].backendRefs[${bi}]`,
      );
      if (!r.ok) {
        failures.push(r);
        out.push({ weight, filters: [], invalid: true });
        return;
      }
      backends.set(r.backend.id, r.backend);
      out.push({ backend: r.backend.id, weight, filters: [] });
    });
  });
  const first = failures[0];
  return {
    conditions: [
      first === undefined
        ? cond.routeResolvedRefs()
        : cond.routeUnresolvedRefs(first.reason, failures.map((f) => f.message).join("; ")),
    ],
    backends: out,
  };
}
