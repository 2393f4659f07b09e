// Events from status: every condition that turns bad (a config HAProxy refused, a listener that
// cannot bind, a route or reference that is rejected) becomes a Warning Event on the object it is
// about, and a Normal Event when it turns good again. Status stays the source of truth; Events make
// the same verdicts visible in `kubectl describe` and `kubectl events`, with when and how often.
//
// Bad means: a positive condition (Accepted, Programmed, ResolvedRefs, ...) False, or a negative one
// (Conflicted, PartiallyInvalid, OverlappingTLSConfig) True. Only changes are reported: the same
// condition with the same reason and message does not make a new Event at the next translation
// (the recorder also folds repeats into a series).
import type { EventInput, EventSink } from "../observability/events.ts";
import { objectKey, snapshotField, type Snapshot } from "../resources/snapshot.ts";
import type { Condition, StatusEntry } from "./types.ts";

/** Conditions whose True means trouble. */
const NEGATIVE = new Set(["Conflicted", "PartiallyInvalid", "OverlappingTLSConfig"]);

const ACTIONS: Record<string, string> = {
  Accepted: "Accept",
  Programmed: "Program",
  ResolvedRefs: "ResolveRefs",
};

interface Observed {
  /** Where in the status (`""`, `listener http`, `parent Gateway app/gw`) → condition type → verdict. */
  bad: boolean;
  signature: string;
}

interface Found {
  where: string;
  related: EventInput["related"];
  condition: Condition;
}

export class StatusEvents {
  /** Object label → `where|type` → what we saw last. */
  #previous = new Map<string, Map<string, Observed>>();

  /**
   * Compares `statuses` with the ones observed before and records an Event for every condition that
   * turned bad, changed while bad, or turned good again. `sink` undefined: observe only (followers
   * keep track, so they do not repeat the leader's Events when they take over).
   */
  observe(statuses: readonly StatusEntry[], snapshot: Snapshot, sink: EventSink | undefined): void {
    const next = new Map<string, Map<string, Observed>>();
    for (const entry of statuses) {
      const label = `${entry.kind}|${entry.metadata.namespace ?? ""}|${entry.metadata.name}`;
      const before = this.#previous.get(label);
      const now = new Map<string, Observed>();
      next.set(label, now);
      const field = snapshotField(entry.apiVersion, entry.kind);
      const object = field === undefined ? undefined : snapshot[field].get(objectKey(entry));
      const uid = (object as { metadata?: { uid?: string } } | undefined)?.metadata?.uid;
      for (const found of conditionsOf(entry)) {
        const c = found.condition;
        const bad = NEGATIVE.has(c.type) ? c.status === "True" : c.status === "False";
        const observed: Observed = { bad, signature: `${c.status}|${c.reason}|${c.message}` };
        const key = `${found.where}|${c.type}`;
        now.set(key, observed);
        const was = before?.get(key);
        if (sink === undefined) continue;
        const changed = bad ? was?.signature !== observed.signature : was?.bad === true;
        if (!changed) continue;
        const prefix = found.where === "" ? "" : `${found.where}: `;
        sink.record({
          regarding: {
            apiVersion: entry.apiVersion,
            kind: entry.kind,
            ...(entry.kind === "GatewayClass" ? {} : { namespace: entry.metadata.namespace }),
            name: entry.metadata.name,
            uid,
          },
          related: found.related,
          type: bad ? "Warning" : "Normal",
          reason: c.reason,
          action: ACTIONS[c.type] ?? c.type,
          note: `${prefix}${c.type} ${c.status}: ${c.message}`,
        });
      }
    }
    this.#previous = next;
  }
}

/** The conditions of a status: its own, its listeners', its parents' (routes), its ancestors' (policies). */
function conditionsOf(entry: StatusEntry): Found[] {
  const out: Found[] = [];
  const status = entry.status as {
    conditions?: Condition[];
    listeners?: Array<{ name?: string; conditions?: Condition[] }>;
    parents?: Array<{ parentRef?: ParentRef; conditions?: Condition[] }>;
    ancestors?: Array<{ ancestorRef?: ParentRef; conditions?: Condition[] }>;
  };
  for (const c of status.conditions ?? []) out.push({ where: "", related: undefined, condition: c });
  for (const l of status.listeners ?? [])
    for (const c of l.conditions ?? [])
      out.push({ where: `listener ${l.name ?? "?"}`, related: undefined, condition: c });
  const namespace = entry.metadata.namespace;
  for (const p of status.parents ?? []) {
    const ref = parentReference(p.parentRef, namespace);
    for (const c of p.conditions ?? [])
      out.push({ where: `parent ${ref.label}`, related: ref.related, condition: c });
  }
  for (const a of status.ancestors ?? []) {
    const ref = parentReference(a.ancestorRef, namespace);
    for (const c of a.conditions ?? [])
      out.push({ where: `ancestor ${ref.label}`, related: ref.related, condition: c });
  }
  return out;
}

interface ParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  sectionName?: string;
  port?: number;
}

function parentReference(
  ref: ParentRef | undefined,
  namespace: string | undefined,
): { label: string; related: EventInput["related"] } {
  const kind = ref?.kind ?? "Gateway";
  const group = ref?.group ?? "gateway.networking.k8s.io";
  const ns = ref?.namespace ?? namespace;
  const name = ref?.name ?? "?";
  const section = ref?.sectionName === undefined ? "" : ` (${ref.sectionName})`;
  const port = ref?.port === undefined ? "" : ` port ${ref.port}`;
  return {
    label: `${kind} ${ns === undefined ? "" : `${ns}/`}${name}${section}${port}`,
    related: {
      apiVersion: group === "" ? "v1" : `${group}/v1`,
      kind,
      ...(ns !== undefined ? { namespace: ns } : {}),
      name,
    },
  };
}
