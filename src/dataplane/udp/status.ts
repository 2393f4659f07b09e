// Listeners the UDP forwarder could not serve, in the statuses: the listener reports
// `Programmed: False` with the reason (Pending: retried, e.g. a port another process holds;
// Invalid: the configuration itself clashes), and a Gateway none of whose listeners is served
// reports `Programmed: False` too. Pure.
import type { Condition, StatusEntry } from "../../status/types.ts";

export interface UnavailableListener {
  /** `namespace/gateway/listener` */
  listenerId: string;
  message: string;
  /** Pending: worth retrying (the port may be released); Invalid: the same input fails the same way. */
  reason: "Pending" | "Invalid";
}

export function markUnavailableListeners(
  statuses: readonly StatusEntry[],
  unavailable: readonly UnavailableListener[],
  now: string,
): StatusEntry[] {
  if (unavailable.length === 0) return [...statuses];
  const byId = new Map<string, UnavailableListener[]>();
  for (const u of unavailable) byId.set(u.listenerId, [...(byId.get(u.listenerId) ?? []), u]);
  return statuses.map((entry) => {
    if (entry.kind !== "Gateway") return entry;
    const prefix = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}/`;
    const listeners =
      (entry.status["listeners"] as Array<{ name: string; conditions: Condition[] }> | undefined) ?? [];
    let touched = 0;
    const next = listeners.map((l) => {
      const problems = byId.get(prefix + l.name);
      if (problems === undefined) return l;
      touched++;
      return {
        ...l,
        conditions: upsert(l.conditions, {
          type: "Programmed",
          status: "False",
          reason: problems.some((p) => p.reason === "Invalid") ? "Invalid" : "Pending",
          message: `Not served: ${problems.map((p) => p.message).join("; ")}`,
          lastTransitionTime: now,
        }),
      };
    });
    if (touched === 0) return entry;
    let conditions = (entry.status["conditions"] as Condition[] | undefined) ?? [];
    if (touched === listeners.length) {
      const programmed = conditions.find((c) => c.type === "Programmed");
      if (programmed === undefined || programmed.status === "True") {
        conditions = upsert(conditions, {
          type: "Programmed",
          status: "False",
          reason: "Pending",
          message: "None of the Gateway's listeners is served; see the listener conditions",
          lastTransitionTime: now,
        });
      }
    }
    return { ...entry, status: { ...entry.status, conditions, listeners: next } };
  });
}

function upsert(
  conditions: readonly Condition[],
  condition: Omit<Condition, "observedGeneration">,
): Condition[] {
  const existing = conditions.find((c) => c.type === condition.type);
  const generation = existing?.observedGeneration ?? conditions[0]?.observedGeneration;
  const stamped: Condition = {
    ...condition,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return conditions.map((c) => (c.type === condition.type ? stamped : c)).concat(existing ? [] : [stamped]);
}
