// What the renderer remembers across renders, per IR object (weakly: an entry goes with its object).
// A render of an IR that shares most objects with the previous one (the incremental translator
// reuses unchanged ones) derives again only what is new: the checks of a rule or backend, a backend
// section (kept compiled: its text, structure text and map lookups), names. Every entry is a pure function of its key and of what
// the entry itself records (see the users), so forgetting is always safe: tests do it to compare
// with a render from nothing.
import type { IR, IRBackend, IREndpoint, IRHTTPRule, IRVirtualHost } from "../../../ir/types.ts";
import type { CompiledSection } from "./model.ts";

interface Memo {
  /** check.ts: a backend's issues as (field, message). */
  backendChecks: WeakMap<IRBackend, ReadonlyArray<[string, string]>>;
  /** check.ts: a rule's issues as (path, message), valid while its backends' state is `refs`. */
  ruleChecks: WeakMap<IRHTTPRule, { refs: string; issues: ReadonlyArray<[string, string]> }>;
  /** check.ts: a virtual host hostname's issue ("" for none); a plain Map, cleared when it gets large. */
  hostnames: Map<string, string>;
  /** routing.ts: a rule's id and identity for the listener and hostname it was last named for. */
  ruleIds: WeakMap<IRHTTPRule, { listener: string; hostname: string; name: string; identity: string }>;
  /** hosts.ts: a virtual host's id and identity for the listener it was last named for. */
  vhostIds: WeakMap<IRVirtualHost, { listener: string; name: string; identity: string }>;
  /** mirror.ts: whether an IR, or a virtual host, has a rule that mirrors requests. */
  mirrors: WeakMap<IR | IRVirtualHost, boolean>;
  /** backends.ts: the proxy name an IRBackend's base section asks for (its id, made a name). */
  proxyNames: WeakMap<IRBackend, string>;
  /** backends.ts: backend sections (compiled) by endpoints array, then by what else they are made of. */
  sections: WeakMap<ReadonlyArray<IREndpoint | undefined>, Map<string, CompiledSection>>;
}

function fresh(): Memo {
  return {
    backendChecks: new WeakMap(),
    ruleChecks: new WeakMap(),
    hostnames: new Map(),
    ruleIds: new WeakMap(),
    vhostIds: new WeakMap(),
    mirrors: new WeakMap(),
    proxyNames: new WeakMap(),
    sections: new WeakMap(),
  };
}

export let memo: Memo = fresh();

/** Forgets everything remembered (the next render derives everything again). */
export function forgetRendered(): void {
  memo = fresh();
}
