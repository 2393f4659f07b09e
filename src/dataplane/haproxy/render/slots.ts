// Which server slot each endpoint of a backend section takes. A fresh section fills its slots in the
// IR's order. A section rendered again for the same IRBackend keeps every endpoint that stays in the
// slot it had: a slot never changes endpoint while that endpoint lives, so connections, counters and
// session persistence (whose maps translate endpoint ↔ slot) do not move with the slots when other
// endpoints come and go. New endpoints take slots that were empty before, and only then slots freed
// by this change: the runtime API gives a slot its new endpoint before the maps stop naming the old
// one, so a freed slot taken at once would briefly receive the sessions of the endpoint that left.
import type { IREndpoint } from "../../../ir/types.ts";

export type SlotArrangement = ReadonlyArray<IREndpoint | undefined>;

const key = (ep: IREndpoint): string => `${ep.address}\0${ep.port}`;

/**
 * The arrangement of `next` (the IRBackend's endpoints) in `slots` slots, given the section's
 * `previous` arrangement (undefined for a section new to this IRBackend). Entry n-1 is slot n's
 * endpoint; holes are empty slots; no trailing holes. Returns `next` itself when it is the
 * arrangement, `previous` itself when nothing moved (callers compare by identity).
 */
export function arrangeSlots(
  previous: SlotArrangement | undefined,
  next: readonly IREndpoint[],
  slots: number,
): SlotArrangement {
  if (previous === undefined || previous.length === 0) return next;
  // Endpoints still there keep their slot (a repeated endpoint keeps as many slots as it has now).
  const wanted = new Map<string, IREndpoint[]>();
  for (const ep of next) {
    const list = wanted.get(key(ep));
    if (list === undefined) wanted.set(key(ep), [ep]);
    else list.push(ep);
  }
  const length = Math.max(slots, previous.length);
  const out: Array<IREndpoint | undefined> = new Array<IREndpoint | undefined>(length).fill(undefined);
  const freed: number[] = [];
  for (const [i, ep] of previous.entries()) {
    if (ep === undefined) continue;
    const kept = wanted.get(key(ep))?.shift();
    if (kept !== undefined) out[i] = kept;
    else freed.push(i);
  }
  const arriving = [...wanted.values()].flat();
  // Arrivals in IR order: first the slots empty before, then the slots freed now.
  const free = [...out.keys()].filter((i) => out[i] === undefined && previous[i] === undefined);
  const order = [...free, ...freed];
  for (const [j, ep] of arriving.entries()) {
    const i = order[j];
    if (i === undefined) throw new Error(`internal: ${next.length} endpoints do not fit ${slots} slots`);
    out[i] = ep;
  }
  let end = out.length;
  while (end > 0 && out[end - 1] === undefined) end--;
  out.length = end;
  if (end === next.length && out.every((ep, i) => ep === next[i])) return next;
  if (end === previous.length && out.every((ep, i) => sameEndpoint(ep, previous[i]))) return previous;
  return out;
}

function sameEndpoint(a: IREndpoint | undefined, b: IREndpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.address === b.address && a.port === b.port;
}
