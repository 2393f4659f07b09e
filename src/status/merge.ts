// Merging the status the translator computed into the status an object has in the API server, and
// deciding whether a write is needed. Pure functions: no I/O, no clock.
//
// Rules:
// - A condition keeps its lastTransitionTime when its status did not change (the translator stamps
//   every condition with the time of the translation; Kubernetes conventions want the time of the
//   last transition, as meta.SetStatusCondition does).
// - Gateway/ListenerSet listeners are matched by name for that purpose.
// - Route `parents` and policy `ancestors` are shared between controllers: entries whose
//   controllerName is not ours are left exactly as they are (and where they are); ours are replaced
//   in place (matched by parentRef/ancestorRef), new ones are appended, and ours that the translator
//   no longer reports are removed.
// - Equality is semantic: lastTransitionTime, key order, and the order of conditions and of
//   parents/ancestors entries do not count.
import type { Condition } from "./types.ts";

type Status = Record<string, unknown>;

/** The status field holding per-parent entries, for kinds that share their status with others. */
export function sharedListField(kind: string): "parents" | "ancestors" | undefined {
  if (kind.endsWith("Route") || kind === "InferencePool") return "parents";
  if (kind.endsWith("Policy")) return "ancestors";
  return undefined;
}

const REF_FIELD = { parents: "parentRef", ancestors: "ancestorRef" } as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * `desired` conditions, each keeping the lastTransitionTime of the `current` condition of the same
 * type when the status is the same.
 */
export function mergeConditions(current: unknown, desired: readonly Condition[]): Condition[] {
  const before = new Map<string, Record<string, unknown>>();
  for (const c of asArray(current))
    if (isRecord(c) && typeof c["type"] === "string") before.set(c["type"], c);
  return desired.map((c) => {
    const old = before.get(c.type);
    if (old !== undefined && old["status"] === c.status && typeof old["lastTransitionTime"] === "string") {
      return { ...c, lastTransitionTime: old["lastTransitionTime"] };
    }
    return { ...c };
  });
}

function mergeEntry(current: unknown, desired: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...desired };
  if (Array.isArray(desired["conditions"])) {
    out["conditions"] = mergeConditions(
      isRecord(current) ? current["conditions"] : undefined,
      desired["conditions"] as Condition[],
    );
  }
  return out;
}

/** A canonical key for a parentRef/ancestorRef (defaults spelled out). */
export function refKey(ref: unknown): string {
  const r = isRecord(ref) ? ref : {};
  return canonicalJSON({
    group: r["group"] ?? "gateway.networking.k8s.io",
    kind: r["kind"] ?? "Gateway",
    namespace: r["namespace"],
    name: r["name"],
    sectionName: r["sectionName"],
    port: r["port"],
  });
}

/**
 * The status to write: `desired` (our view) merged into `current` (what the object has now) by the
 * rules above. `current` is never modified.
 */
export function mergeStatus(kind: string, current: unknown, desired: Status, controllerName: string): Status {
  const cur = isRecord(current) ? current : {};
  const shared = sharedListField(kind);
  if (shared !== undefined) {
    return {
      ...cur,
      ...desired,
      [shared]: mergeShared(shared, cur[shared], asArray(desired[shared]), controllerName),
    };
  }
  const out: Status = { ...desired };
  if (Array.isArray(desired["conditions"])) {
    out["conditions"] = mergeConditions(cur["conditions"], desired["conditions"] as Condition[]);
  }
  if (Array.isArray(desired["listeners"])) {
    const before = new Map<string, unknown>();
    for (const l of asArray(cur["listeners"])) if (isRecord(l)) before.set(String(l["name"]), l);
    out["listeners"] = (desired["listeners"] as unknown[]).map((l) =>
      isRecord(l) ? mergeEntry(before.get(String(l["name"])), l) : l,
    );
  }
  return out;
}

function mergeShared(
  field: "parents" | "ancestors",
  current: unknown,
  desired: readonly unknown[],
  controllerName: string,
): unknown[] {
  const refField = REF_FIELD[field];
  const ours = new Map<string, Record<string, unknown>>();
  for (const d of desired) if (isRecord(d)) ours.set(refKey(d[refField]), d);
  const used = new Set<string>();
  const out: unknown[] = [];
  for (const entry of asArray(current)) {
    if (!isRecord(entry) || entry["controllerName"] !== controllerName) {
      out.push(entry);
      continue;
    }
    const key = refKey(entry[refField]);
    const replacement = used.has(key) ? undefined : ours.get(key);
    if (replacement === undefined) continue; // ours, no longer reported: removed
    used.add(key);
    out.push(mergeEntry(entry, replacement));
  }
  for (const [key, d] of ours) if (!used.has(key)) out.push(mergeEntry(undefined, d));
  return out;
}

/**
 * `current` without our parents/ancestors entries, or undefined when it has none (nothing to
 * write). For objects the translator no longer reports on at all.
 */
export function withoutOurEntries(
  kind: string,
  current: unknown,
  controllerName: string,
): Status | undefined {
  const shared = sharedListField(kind);
  if (shared === undefined || !isRecord(current)) return undefined;
  const entries = asArray(current[shared]);
  const kept = entries.filter((e) => !isRecord(e) || e["controllerName"] !== controllerName);
  if (kept.length === entries.length) return undefined;
  return { ...current, [shared]: kept };
}

/** Whether two statuses say the same thing (see the rules above). */
export function statusEqual(a: unknown, b: unknown): boolean {
  return canonicalJSON(normalize(a, "")) === canonicalJSON(normalize(b, ""));
}

function normalize(value: unknown, key: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v, ""));
    if (key === "conditions" || key === "parents" || key === "ancestors") {
      return items
        .map((i) => [canonicalJSON(i), i] as const)
        .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
        .map(([, i]) => i);
    }
    return items;
  }
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || k === "lastTransitionTime") continue;
      out[k] = normalize(v, k);
    }
    return out;
  }
  return value;
}

/** JSON with object keys sorted (undefined members left out), so equal values print equally. */
export function canonicalJSON(value: unknown): string {
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : canonicalJSON(v))).join(",")}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJSON(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
