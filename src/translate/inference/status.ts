// InferencePool status (Gateway API Inference Extension v1.6.0, api/v1 InferencePoolStatus): one
// `status.parents[]` entry per Gateway of ours that an HTTPRoute referencing the pool is attached
// to, with the conditions the extension defines:
// - Accepted: True (reason Accepted) when an HTTPRoute referencing the pool is accepted by that
//   Gateway, False (HTTPRouteNotAccepted) when none is; the message says how requests are routed
//   (by the endpoint picker, and what its failureMode does; pool.ts).
// - ResolvedRefs: True (ResolvedRefs), or False (InvalidExtensionRef) when endpointPickerRef does not
//   resolve.
// A pool no route of ours references gets no entry; the status writer removes entries of ours that
// are no longer reported (src/status/merge.ts: `parents` is shared with other controllers).
import type { HTTPRoute } from "../../resources/generated/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import type { StatusEntry } from "../../status/types.ts";
import { stampConditions, type ConditionSpec } from "../conditions.ts";
import { GATEWAY_GROUP } from "../gateway.ts";
import type { TranslateOptions } from "../options.ts";
import { referenceAllowed } from "../referencegrant.ts";
import type { ParentAttachment } from "../routes/parents.ts";
import {
  INFERENCE_GROUP,
  INFERENCE_POOL_KIND,
  isInferencePoolRef,
  pickerMode,
  poolEndpoints,
  type PickerMode,
} from "./pool.ts";

const MAX_PARENTS = 32;

/** pool `ns/name` → Gateway `ns/name` → whether some referencing HTTPRoute is accepted there. */
export type PoolUses = Map<string, Map<string, { namespace: string; name: string; accepted: boolean }>>;

/**
 * Records the pools an HTTPRoute references (rule backendRefs, permitted by ReferenceGrant) under
 * each Gateway it is attached to. `rejected`: the route as a whole is not accepted.
 */
export function recordPoolUses(
  snapshot: Snapshot,
  uses: PoolUses,
  route: HTTPRoute,
  attachments: readonly ParentAttachment[],
  rejected: boolean,
): void {
  const routeNs = route.metadata.namespace ?? "default";
  const from = { group: GATEWAY_GROUP, kind: "HTTPRoute", namespace: routeNs };
  for (const rule of route.spec.rules ?? []) {
    for (const ref of rule.backendRefs ?? []) {
      if (!isInferencePoolRef(ref)) continue;
      const namespace = ref.namespace ?? routeNs;
      const key = `${namespace}/${ref.name}`;
      if (!snapshot.inferencePools.has(key)) continue;
      const to = { group: INFERENCE_GROUP, kind: INFERENCE_POOL_KIND, namespace, name: ref.name };
      if (!referenceAllowed(snapshot.referenceGrants, from, to)) continue;
      let parents = uses.get(key);
      if (parents === undefined)
        uses.set(key, (parents = new Map<string, { namespace: string; name: string; accepted: boolean }>()));
      for (const a of attachments) {
        const gateway = a.gateway.gateway.metadata;
        const gatewayNs = gateway.namespace ?? "default";
        const gkey = `${gatewayNs}/${gateway.name}`;
        const accepted = a.accepted && !rejected;
        const seen = parents.get(gkey);
        if (seen === undefined) parents.set(gkey, { namespace: gatewayNs, name: gateway.name, accepted });
        else seen.accepted ||= accepted;
      }
    }
  }
}

/** One status entry per pool with at least one parent, sorted by namespace/name. */
export function inferencePoolStatuses(
  snapshot: Snapshot,
  uses: PoolUses,
  options: TranslateOptions,
): StatusEntry[] {
  const out: StatusEntry[] = [];
  for (const [key, pool] of snapshot.inferencePools) {
    const parents = uses.get(key);
    if (parents === undefined || parents.size === 0) continue;
    const mode = pickerMode(snapshot, pool);
    const ready = poolEndpoints(snapshot, pool).length;
    const resolved: ConditionSpec =
      mode.kind === "invalid"
        ? { type: "ResolvedRefs", status: "False", reason: "InvalidExtensionRef", message: mode.problem }
        : { type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "References resolved" };
    // "A maximum of 32 parents will be represented in this list" (InferencePoolStatus.parents).
    const entries = [...parents.values()]
      .sort((a, b) => compare(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`))
      .slice(0, MAX_PARENTS)
      .map((g) => {
        const accepted: ConditionSpec = g.accepted
          ? { type: "Accepted", status: "True", reason: "Accepted", message: routingMessage(mode, ready) }
          : {
              type: "Accepted",
              status: "False",
              reason: "HTTPRouteNotAccepted",
              message: `No HTTPRoute referencing this pool is accepted by Gateway ${g.namespace}/${g.name}; see the routes' status`,
            };
        return {
          parentRef: { group: GATEWAY_GROUP, kind: "Gateway", namespace: g.namespace, name: g.name },
          controllerName: options.controllerName,
          conditions: stampConditions([accepted, resolved], pool.metadata.generation, options.now),
        };
      });
    out.push({
      apiVersion: `${INFERENCE_GROUP}/v1`,
      kind: INFERENCE_POOL_KIND,
      metadata: { name: pool.metadata.name, namespace: pool.metadata.namespace ?? "default" },
      status: { parents: entries },
    });
  }
  return out;
}

/** The Accepted message: how requests to the pool are routed (see pool.ts). */
function routingMessage(mode: PickerMode, ready: number): string {
  const endpoints = `${ready} ready endpoint${ready === 1 ? "" : "s"}`;
  const picked = (picker: string, n: number): string =>
    `Requests are routed by the endpoint picker (${picker}, ${n} ready endpoint${n === 1 ? "" : "s"}) among the pool's ${endpoints}; a retry goes to another ready endpoint chosen by Gatehouse, not to the picker's fallbacks`;
  switch (mode.kind) {
    case "none":
      return `Accepted without endpointPickerRef: requests are load-balanced over the pool's ${endpoints}`;
    case "failOpen":
      return `${picked(mode.picker, mode.ir.endpoints.length)}. failureMode FailOpen: when the picker is unavailable, requests are load-balanced over the ready endpoints`;
    case "failClose":
      return `${picked(mode.picker, mode.ir.endpoints.length)}. failureMode FailClose: when the picker is unavailable, requests are answered 503`;
    case "invalid":
      return "Accepted, but endpointPickerRef does not resolve (see ResolvedRefs): requests are answered 503";
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
