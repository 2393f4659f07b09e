// The statuses users see: the translator's statuses plus one value that says what the data plane did
// with the configuration. Everything the data plane learns after translation goes through here, in
// one pass, so the rules for it live in one place:
// - not applied at all (HAProxy refused it, or it could not be reached): every Gateway reports
//   Programmed False, and the previous configuration keeps serving;
// - a listener the data plane could not serve (a port another process holds, a port clash the
//   UDP forwarder found): that listener reports Programmed False (Pending while it is retried, with
//   Accepted False/PortUnavailable for a port in use), and
//   the Gateway too when none of its listeners is served;
// - a rule or listener the renderer's last line of defence left out (degrade.ts): PartiallyInvalid
//   on the route, Programmed False on the listener;
// - Gateways bound on all interfaces report the host's addresses once programmed.
// Pure: the same statuses and feedback give the same result.
import type { Condition, StatusEntry } from "./types.ts";

export interface UnavailableListener {
  /** `namespace/gateway/listener` */
  listenerId: string;
  message: string;
  /**
   * Pending: the port is held by another process (Accepted False, PortUnavailable; retried until it
   * is free); Invalid: the same input fails the same way.
   */
  reason: "Pending" | "Invalid";
}

/** A route rule or listener the renderer left out, and why. */
export interface LeftOut {
  message: string;
  /** The route whose rule was left out, if any. */
  route?: { kind: string; namespace: string; name: string };
  /** `namespace/gateway/listener` of a listener left out, if any. */
  listenerId?: string;
}

export interface DataplaneFeedback {
  /** Why the data plane did not take this configuration at all (the previous one keeps serving). */
  notApplied?: string;
  unavailableListeners?: readonly UnavailableListener[];
  leftOut?: readonly LeftOut[];
  /** Addresses reported for programmed Gateways bound on all interfaces (no addresses of their own). */
  hostAddresses?: readonly string[];
}

type ConditionInput = Omit<Condition, "observedGeneration" | "lastTransitionTime">;
/** Why a listener is not served. Invalid (the same input fails the same way) wins over Pending. */
interface ListenerProblems {
  invalid: boolean;
  unserved: string[];
  inexpressible: string[];
}
type Listener = { name: string; conditions: Condition[] };
type Parent = { conditions: Condition[] };

/** The statuses with what the data plane did folded in (see the top of this file). */
export function withFeedback(
  statuses: readonly StatusEntry[],
  feedback: DataplaneFeedback,
  now: string,
): StatusEntry[] {
  const listenerProblems = new Map<string, ListenerProblems>();
  const problemsOf = (id: string): ListenerProblems => {
    let p = listenerProblems.get(id);
    if (p === undefined) listenerProblems.set(id, (p = { invalid: false, unserved: [], inexpressible: [] }));
    return p;
  };
  for (const u of feedback.unavailableListeners ?? []) {
    const p = problemsOf(u.listenerId);
    p.unserved.push(u.message);
    if (u.reason === "Invalid") p.invalid = true;
  }
  const routeProblems = new Map<string, string[]>();
  for (const l of feedback.leftOut ?? []) {
    if (l.route !== undefined) {
      const key = `${l.route.kind}/${l.route.namespace}/${l.route.name}`;
      routeProblems.set(key, [...(routeProblems.get(key) ?? []), l.message]);
    }
    if (l.listenerId !== undefined) {
      const p = problemsOf(l.listenerId);
      p.inexpressible.push(l.message);
      p.invalid = true;
    }
  }

  return statuses.map((entry) => {
    if (entry.kind === "Gateway" || entry.kind === "ListenerSet")
      return gatewayWithFeedback(entry, feedback, listenerProblems, now);
    const key = `${entry.kind}/${entry.metadata.namespace ?? ""}/${entry.metadata.name}`;
    const messages = routeProblems.get(key);
    if (messages === undefined) return entry;
    const parents = (entry.status["parents"] as Parent[] | undefined) ?? [];
    const message = `Dropped Rule(s): the data plane cannot express: ${messages.join("; ")}; those rules are left out`;
    return {
      ...entry,
      status: {
        ...entry.status,
        parents: parents.map((p) => {
          const existing = p.conditions.find((c) => c.type === "PartiallyInvalid");
          return {
            ...p,
            conditions: upsert(
              p.conditions,
              {
                type: "PartiallyInvalid",
                status: "True",
                reason: "UnsupportedValue",
                message: existing === undefined ? message : `${existing.message}; ${message}`,
              },
              now,
            ),
          };
        }),
      },
    };
  });
}

function gatewayWithFeedback(
  entry: StatusEntry,
  feedback: DataplaneFeedback,
  listenerProblems: ReadonlyMap<string, ListenerProblems>,
  now: string,
): StatusEntry {
  // Listener ids: `ns/gateway/listener`, or `ns/gateway/setNs/set/listener` for a ListenerSet's.
  const own = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}/`;
  const problemsOf = (name: string): ListenerProblems | undefined => {
    if (entry.kind === "Gateway") return listenerProblems.get(own + name);
    for (const [id, p] of listenerProblems) {
      const parts = id.split("/");
      if (parts.length === 5 && `${parts.slice(2, 4).join("/")}/` === own && parts[4] === name) return p;
    }
    return undefined;
  };
  const listeners = (entry.status["listeners"] as Listener[] | undefined) ?? [];
  let conditions = (entry.status["conditions"] as Condition[] | undefined) ?? [];
  // As translated: a Gateway whose new configuration did not apply still serves at its addresses.
  const programmed = conditions.some((c) => c.type === "Programmed" && c.status === "True");
  let unserved = 0;
  const nextListeners = listeners.map((l) => {
    const problems = problemsOf(l.name);
    if (problems === undefined) return l;
    unserved++;
    const reason = problems.invalid ? "Invalid" : "Pending";
    const message = [
      ...(problems.unserved.length > 0 ? [`Not served: ${problems.unserved.join("; ")}`] : []),
      ...(problems.inexpressible.length > 0
        ? [`The data plane cannot express this listener: ${problems.inexpressible.join("; ")}`]
        : []),
    ].join("; ");
    let next = upsert(l.conditions, { type: "Programmed", status: "False", reason, message }, now);
    // A port held by another process (Pending: retried until it is free) is what the spec's
    // Accepted/PortUnavailable means: "The port is already in use."
    if (!problems.invalid)
      next = upsert(
        next,
        {
          type: "Accepted",
          status: "False",
          reason: "PortUnavailable",
          message: problems.unserved.join("; "),
        },
        now,
      );
    return { ...l, conditions: next };
  });
  if (feedback.notApplied !== undefined) {
    conditions = upsert(
      conditions,
      {
        type: "Programmed",
        status: "False",
        reason: "Invalid",
        message: `The new configuration was not applied (the previous one keeps serving): ${feedback.notApplied}`,
      },
      now,
    );
  } else if (unserved > 0 && unserved === listeners.length) {
    const programmed = conditions.find((c) => c.type === "Programmed");
    if (programmed === undefined || programmed.status === "True") {
      conditions = upsert(
        conditions,
        {
          type: "Programmed",
          status: "False",
          reason: "Pending",
          message: "None of the Gateway's listeners is served; see the listener conditions",
        },
        now,
      );
    }
  }
  // ListenerSets bind on their Gateway's addresses and report none.
  const hostAddresses = entry.kind === "Gateway" ? (feedback.hostAddresses ?? []) : [];
  const addresses =
    entry.status["addresses"] === undefined && programmed && hostAddresses.length > 0
      ? { addresses: hostAddresses.map((value) => ({ type: "IPAddress", value })) }
      : {};
  if (unserved === 0 && feedback.notApplied === undefined && !("addresses" in addresses)) return entry;
  return {
    ...entry,
    status: {
      ...addresses,
      ...entry.status,
      conditions,
      ...(listeners.length > 0 ? { listeners: nextListeners } : {}),
    },
  };
}

/**
 * Replaces (or adds) the condition of `c.type`, in place, keeping the observedGeneration the
 * translator stamped (the object's generation).
 */
function upsert(conditions: readonly Condition[], c: ConditionInput, now: string): Condition[] {
  const existing = conditions.find((x) => x.type === c.type);
  const generation = existing?.observedGeneration ?? conditions[0]?.observedGeneration;
  const stamped: Condition = {
    ...c,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: now,
  };
  return existing === undefined
    ? [...conditions, stamped].sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    : conditions.map((x) => (x.type === c.type ? stamped : x));
}
