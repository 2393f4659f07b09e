// One HAProxy backend per IRBackend (its "base" proxy), plus variants when a rule needs settings
// HAProxy only has per backend: retries/retry-on, a persistence cookie, HTTP/2 for gRPC, or TCP mode
// for TCP/TLS routes. Every proxy has the same `slots` servers `s1..sN`: the first filled from the
// endpoints, the rest `disabled` at 0.0.0.0:0, so endpoints change at runtime with
// `set server <proxy>/<sN> addr <ip> port <port>` and `set server ... state ready|maint`.
//
// Slots: a section rendered against the previous layout keeps each endpoint in its slot (slots.ts).
//
// Spares: `gh_spare_<n>` sections with the plain HTTP profile and no servers, whose text does not
// depend on what they serve. Rendered against the previous layout, the set and order of sections is
// kept: known (IRBackend, profile) pairs keep their section, a new IRBackend needing the plain HTTP
// profile takes a free spare (so map values name the spare), sections nothing uses any more stay
// with their servers disabled. Anything else adds a section, i.e. changes the structure.
import { isIP } from "node:net";
import { memo } from "./memo.ts";
import type { IRBackend, IREndpoint } from "../../../ir/types.ts";
import { comment } from "./escape.ts";
import {
  compileSection,
  digest,
  type BackendLayout,
  type BackendSection,
  type CompiledSection,
  type Profile,
  type RenderContext,
  type RenderedBackend,
  type Section,
} from "./model.ts";
import { pickerBackendLines } from "./epp.ts";
import { addSessionEntries, sessionLines } from "./session.ts";
import { arrangeSlots, type SlotArrangement } from "./slots.ts";

export type { Profile } from "./model.ts";

/** Name of the n-th spare backend (n from 1). */
export function spareName(n: number): string {
  return `gh_spare_${n}`;
}

interface Entry {
  backend: IRBackend;
  base: string;
  /** Slots a new section of this IRBackend gets. */
  slots: number;
  /** profile key → HAProxy backend name. */
  proxies: Map<string, string>;
}

/** One backend section being rendered. */
interface Out {
  name: string;
  profile: Profile;
  slots: number;
  spare: boolean;
  /** The IRBackend whose endpoints fill the slots (none: free spare or orphan). */
  current?: IRBackend;
  /** Canonical sections: what the text is rendered from (the IRBackend's endpoints are not used). */
  source?: { backend: IRBackend; base: string; profile: Profile };
  /** The previous layout's IRBackend and slot arrangement of this section (a kept section). */
  previous?: { backend: string | undefined; endpoints: SlotArrangement };
  /** The slot arrangement of `current`'s endpoints (computed once, see `slotted`). */
  slotted?: SlotArrangement;
}

const PLAIN: Profile = { mode: "http", h2: false };

/** Identity of a profile (variant names carry a digest of it: keep the format). */
function profileKey(p: Profile): string {
  // The common profiles without the JSON encoding (called for every rule and section).
  if (p.retry === undefined && p.cookie === undefined && p.header === undefined) {
    if (p.mode === "tcp") return p.h2 ? TCP_H2_KEY : TCP_KEY;
    return p.h2 ? H2_KEY : PLAIN_KEY;
  }
  const key: unknown[] = [p.mode, p.h2, p.retry ?? null, p.cookie ?? null];
  if (p.header !== undefined) key.push(p.header);
  return JSON.stringify(key);
}

const PLAIN_KEY = JSON.stringify(["http", false, null, null]);
const H2_KEY = JSON.stringify(["http", true, null, null]);
const TCP_KEY = JSON.stringify(["tcp", false, null, null]);
const TCP_H2_KEY = JSON.stringify(["tcp", true, null, null]);

/** Readable variant suffix: `tcp`, `h2`, `retry-<digest>`, `cookie-<digest>` (digest of the settings). */
function variantSuffix(p: Profile, key: string): string {
  const parts: string[] = [p.mode === "tcp" ? "tcp" : p.h2 ? "h2" : "http"];
  if (p.retry !== undefined) parts.push("retry");
  if (p.cookie !== undefined) parts.push("cookie");
  if (p.header !== undefined) parts.push("session");
  if (parts.length > 1) {
    if (parts[0] === "http") parts.shift();
    parts.push(digest(key, 8));
  }
  return parts.join("-");
}

function naturalProfile(b: IRBackend): Profile {
  return { mode: b.protocol === "tcp" ? "tcp" : "http", h2: b.protocol === "h2c" };
}

/** Owner of a section name in the context's name registry. */
function owner(id: string, key: string, natural: boolean): string {
  return natural ? `backend\0${id}` : `backend\0${id}\0${key}`;
}

export function serverAddress(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export class BackendSet {
  private readonly ctx: RenderContext;
  private readonly entries = new Map<string, Entry>();
  private readonly outs = new Map<string, Out>();
  /** Sections in the order of the previous layout (reuse), or the spares (fresh render). */
  private readonly kept: string[] = [];
  /** Canonical sections created by this render, in creation order. */
  private readonly created: string[] = [];
  private readonly reuse: boolean;
  /** Previous layout: (IRBackend id, profile key) → section name, canonical sections and assigned spares. */
  private readonly known = new Map<string, string>();
  /** Spares free in the previous layout (or all spares of a fresh render), in order. */
  private readonly free: string[] = [];
  private readonly spareSlots: number;

  /**
   * `spares`: spare sections of a fresh render. `previous`: the layout to keep (then `spares` is
   * ignored: the previous spares are kept).
   */
  constructor(ctx: RenderContext, backends: readonly IRBackend[], spares: number, previous?: BackendLayout) {
    this.ctx = ctx;
    this.reuse = previous !== undefined;
    this.spareSlots = previous?.spareSlots ?? ctx.options.serverSlots;
    if (previous !== undefined) {
      for (const s of previous.sections) this.keep(s);
    } else {
      for (let n = 1; n <= spares; n++) {
        const name = ctx.claim("proxy", spareName(n), `spare\0${n}`);
        this.outs.set(name, { name, profile: PLAIN, slots: this.spareSlots, spare: true });
        this.kept.push(name);
        this.free.push(name);
      }
    }
    for (const b of backends) {
      if (b.protocol === "udp") continue;
      let wanted = memo.proxyNames.get(b);
      if (wanted === undefined) {
        wanted = b.id.replace(/\//g, ":").replace(/[^A-Za-z0-9._:-]/g, "_");
        memo.proxyNames.set(b, wanted);
      }
      const base = ctx.claim("proxy", wanted, `backend\0${b.id}`, ":");
      let slots = ctx.options.serverSlots;
      while (slots < b.endpoints.length) slots *= 2;
      this.entries.set(b.id, { backend: b, base, slots, proxies: new Map() });
      this.proxy(b.id, naturalProfile(b));
    }
  }

  /** Takes over a section of the previous layout (its name is reserved in the context). */
  private keep(s: BackendSection): void {
    const previous = { backend: s.backend, endpoints: s.endpoints };
    if (s.spare) {
      this.ctx.claim("proxy", s.name, `spare\0${s.name}`);
      this.outs.set(s.name, { name: s.name, profile: PLAIN, slots: s.slots, spare: true, previous });
      if (s.backend === undefined) this.free.push(s.name);
      else this.known.set(`${s.backend}\0${PLAIN_KEY}`, s.name);
    } else if (s.source !== undefined) {
      const { backend, profile } = s.source;
      const key = profileKey(profile);
      const natural = key === profileKey(naturalProfile(backend));
      this.ctx.claim("proxy", s.name, owner(backend.id, key, natural), ":");
      this.outs.set(s.name, {
        name: s.name,
        profile,
        slots: s.slots,
        spare: false,
        source: s.source,
        previous,
      });
      this.known.set(`${backend.id}\0${key}`, s.name);
    } else {
      throw new Error(`internal: previous layout section ${s.name} has no source`);
    }
    this.kept.push(s.name);
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`internal: unknown backend ${id}`);
    return e;
  }

  private readonly tags = new Map<string, string>();

  /** Cookie tag of an IRBackend (prefix of its server cookie values). */
  tag(id: string): string {
    let tag = this.tags.get(id);
    if (tag === undefined) this.tags.set(id, (tag = digest(`backend\0${id}`, 8)));
    return tag;
  }

  /** Protocol-implied profile of an IRBackend for an HTTP rule. */
  httpProfile(id: string, grpc: boolean): Profile {
    const b = this.entry(id).backend;
    return { mode: "http", h2: grpc || b.protocol === "h2c" };
  }

  /** The HAProxy backend name for IRBackend `id` with `profile` (registered on first use). */
  proxy(id: string, profile: Profile): string {
    const e = this.entry(id);
    const key = profileKey(profile);
    const existing = e.proxies.get(key);
    if (existing !== undefined) return existing;
    const name = this.reused(e, key) ?? this.spare(e, key) ?? this.create(e, profile, key);
    e.proxies.set(key, name);
    return name;
  }

  /** The section this pair had in the previous layout, if it can carry the endpoints. */
  private reused(e: Entry, key: string): string | undefined {
    const name = this.known.get(`${e.backend.id}\0${key}`);
    const out = name === undefined ? undefined : this.outs.get(name);
    if (out === undefined || out.current !== undefined) return undefined;
    if (
      out.spare &&
      (e.backend.tls !== undefined ||
        e.backend.picker !== undefined ||
        e.backend.endpoints.length > out.slots)
    )
      return undefined;
    if (!out.spare) {
      out.source = { backend: e.backend, base: e.base, profile: out.profile };
      if (e.backend.endpoints.length > out.slots) out.slots = e.slots;
    }
    out.current = e.backend;
    return out.name;
  }

  /** A spare free in the previous layout, for a new plain-HTTP use that fits its slots. */
  private spare(e: Entry, key: string): string | undefined {
    // A pool with an endpoint picker has lines of its own (epp.ts): never a spare.
    if (!this.reuse || key !== PLAIN_KEY || e.backend.tls !== undefined || e.backend.picker !== undefined)
      return undefined;
    if (e.backend.endpoints.length > this.spareSlots) return undefined;
    for (;;) {
      const name = this.free.shift();
      if (name === undefined) return undefined;
      const out = this.outs.get(name);
      if (out === undefined || out.current !== undefined || e.backend.endpoints.length > out.slots) continue;
      out.current = e.backend;
      return name;
    }
  }

  private create(e: Entry, profile: Profile, key: string): string {
    const natural = key === profileKey(naturalProfile(e.backend));
    let name = natural
      ? e.base
      : this.ctx.claim(
          "proxy",
          `${e.base}:${variantSuffix(profile, key)}`,
          owner(e.backend.id, key, false),
          ":",
        );
    // A kept section has this name (the IRBackend's natural profile changed, e.g. http → h2c). Unused:
    // it goes (the structure changes anyway); in use (not expected): another name.
    const kept = this.outs.get(name);
    const previous = kept?.current === undefined ? kept?.previous : undefined;
    if (kept !== undefined && kept.current === undefined) this.kept.splice(this.kept.indexOf(name), 1);
    else if (kept !== undefined)
      name = this.ctx.claim("proxy", name, `${owner(e.backend.id, key, false)}\0new`, ":");
    this.outs.set(name, {
      name,
      profile,
      slots: e.slots,
      spare: false,
      current: e.backend,
      source: { backend: e.backend, base: e.base, profile },
      ...(previous !== undefined ? { previous } : {}),
    });
    this.created.push(name);
    return name;
  }

  private ordered: Out[] | undefined;

  /** Sections in output order (fixed at the first call: after every `proxy` call). */
  private order(): Out[] {
    // A fresh render groups each IRBackend's sections (in IR order), then the spares; a reuse render
    // keeps the previous order and appends what it had to add.
    if (this.ordered !== undefined) return this.ordered;
    const created = new Set(this.created);
    const byEntry: string[] = [];
    for (const e of this.entries.values())
      for (const name of e.proxies.values()) if (created.has(name)) byEntry.push(name);
    const names = this.reuse ? [...this.kept, ...byEntry] : [...byEntry, ...this.kept];
    this.ordered = names.map((n) => this.outs.get(n)).filter((o): o is Out => o !== undefined);
    return this.ordered;
  }

  sections(mode: "http" | "tcp"): Section[] {
    return this.order()
      .filter((o) => o.profile.mode === mode)
      .map((o) => this.section(o));
  }

  runtime(): RenderedBackend[] {
    return [...this.entries.values()].map((e) => {
      const proxies = [...e.proxies.values()];
      return { id: e.backend.id, proxies, slots: this.outs.get(proxies[0] ?? "")?.slots ?? e.slots };
    });
  }

  layout(): BackendLayout {
    return {
      spareSlots: this.spareSlots,
      sections: this.order().map((o) => {
        const s: BackendSection = {
          name: o.name,
          slots: o.slots,
          endpoints: this.slotted(o),
          spare: o.spare,
        };
        if (o.current !== undefined) s.backend = o.current.id;
        if (o.source !== undefined) s.source = o.source;
        return s;
      }),
    };
  }

  /** The slot arrangement of a section's endpoints: kept from the previous layout for the same IRBackend. */
  private slotted(o: Out): SlotArrangement {
    if (o.slotted !== undefined) return o.slotted;
    const current = o.current;
    const previous =
      current !== undefined && o.previous?.backend === current.id ? o.previous.endpoints : undefined;
    o.slotted = current === undefined ? [] : arrangeSlots(previous, current.endpoints, o.slots);
    return o.slotted;
  }

  private section(o: Out): Section {
    const header = `backend ${o.name}`;
    const endpoints = this.slotted(o);
    if (o.spare) {
      // Nothing here may depend on what the spare serves: see the file comment.
      return this.lines(
        o.name,
        header,
        ["# spare: takes a new Service at runtime"],
        PLAIN,
        undefined,
        o.slots,
        endpoints,
        undefined,
        [],
      );
    }
    let src = o.source;
    if (src === undefined) throw new Error(`internal: section ${o.name} has no source`);
    // Unused, but its IRBackend is still there: the same text as its sections in use (one CA file).
    const e = o.current === undefined ? this.entries.get(src.backend.id) : undefined;
    if (e !== undefined) src = { ...src, backend: e.backend };
    const b = src.backend;
    const head = [
      `# ${comment(`${b.id} (${b.source.kind} ${b.source.namespace}/${b.source.name}, ${b.protocol})`)}`,
    ];
    const tls = b.tls === undefined ? undefined : { ...b.tls, base: src.base };
    const persistent = src.profile.cookie !== undefined || src.profile.header !== undefined;
    const tag = persistent ? this.tag(b.id) : undefined;
    // subjectAltNames are checked by the TLS bridge; without it (no data plane has set it up, e.g.
    // `translate` or a test) the servers stay disabled: fail closed, never unchecked TLS.
    const unchecked = tls !== undefined && tls.subjectAltNames.length > 0 && tls.bridge === undefined;
    const picker = src.profile.mode === "http" ? pickerBackendLines(b, o.slots) : [];
    return this.lines(
      o.name,
      header,
      head,
      src.profile,
      tls,
      o.slots,
      unchecked ? [] : endpoints,
      tag,
      picker,
    );
  }

  private lines(
    name: string,
    header: string,
    head: string[],
    profile: Profile,
    tls: (NonNullable<IRBackend["tls"]> & { base: string }) | undefined,
    slots: number,
    endpoints: ReadonlyArray<IREndpoint | undefined>,
    tag: string | undefined,
    picker: string[],
  ): Section {
    // Without upstream TLS or sessions the section is a pure function of these arguments (the
    // others add files and map entries to the context): remembered per endpoints array, which the
    // incremental translator keeps for an unchanged IRBackend, so that a render of thousands of
    // unchanged backends does not rebuild their sections.
    if (tls !== undefined || profile.header !== undefined || profile.cookie !== undefined)
      return this.build(name, header, head, profile, tls, slots, endpoints, tag, picker);
    const key = JSON.stringify([header, head, profileKey(profile), slots, tag ?? null, picker]);
    let known = memo.sections.get(endpoints);
    if (known === undefined) memo.sections.set(endpoints, (known = new Map<string, CompiledSection>()));
    let compiled = known.get(key);
    if (compiled === undefined) {
      compiled = compileSection(this.build(name, header, head, profile, tls, slots, endpoints, tag, picker));
      known.set(key, compiled);
    }
    return { header, lines: [], compiled };
  }

  private build(
    name: string,
    header: string,
    head: string[],
    profile: Profile,
    tls: (NonNullable<IRBackend["tls"]> & { base: string }) | undefined,
    slots: number,
    endpoints: ReadonlyArray<IREndpoint | undefined>,
    tag: string | undefined,
    picker: string[],
  ): Section {
    const lines = [...head, `mode ${profile.mode}`];
    if (profile.mode === "http") {
      lines.push("http-reuse safe");
      lines.push("http-request set-timeout server var(txn.gh_to) if { var(txn.gh_to) -m found }");
      // An InferencePool's endpoint picker (epp.ts).
      lines.push(...picker);
    }
    const r = profile.retry;
    if (r !== undefined) {
      lines.push(`retries ${r.attempts}`);
      // Connection errors (refused, reset or closed before any response) are always retried;
      // a server timeout only when the rule allows it (see retryProfile in rules.ts).
      const on = ["conn-failure", "empty-response", ...(r.timeout === true ? ["response-timeout"] : [])];
      lines.push(["retry-on", ...on, ...r.codes.map(String)].join(" "));
      lines.push("option redispatch 1");
    }
    if ((profile.cookie !== undefined || profile.header !== undefined) && tag !== undefined) {
      lines.push(...sessionLines(this.ctx, profile, tag, slots));
      addSessionEntries(this.ctx, name, tag, endpoints, slots);
    }
    const server: string[] = [];
    if (tls !== undefined && tls.subjectAltNames.length > 0) {
      // The TLS bridge (src/dataplane/tlsbridge) opens TLS and checks the subjectAltNames; HAProxy
      // asks it, as a SOCKS4 proxy, for a connection to each server and speaks clear HTTP/1.1 to it.
      if (tls.bridge !== undefined) lines.push(`default-server socks4 ${tls.bridge}`);
    } else if (tls !== undefined) {
      const ca =
        tls.wellKnownCACertificates === "System"
          ? "@system-ca"
          : this.ctx.abs(this.caFile(tls.base, tls.caCertificates));
      const opts = ["ssl", "verify required", `ca-file ${ca}`, `sni str(${tls.sni})`];
      // The Gateway's backend client certificate (spec.tls.backend.clientCertificateRef).
      if (tls.clientCertificate !== undefined) {
        const rel = `tls/backend-client/${tls.base.replace(/:/g, "_")}.pem`;
        this.ctx.addFile(
          rel,
          `${tls.clientCertificate.certPem.trim()}\n${tls.clientCertificate.keyPem.trim()}\n`,
        );
        opts.push(`crt ${this.ctx.abs(rel)}`);
      }
      if (profile.h2) opts.push("alpn h2");
      lines.push(`default-server ${opts.join(" ")}`);
    } else if (profile.h2 && profile.mode === "http") {
      server.push("proto h2");
    }
    // The structure: everything but the slots' addresses and states, i.e. the other lines and what
    // every `server` line is made of.
    const common = server.length === 0 ? "" : ` ${server.join(" ")}`;
    const structure = [...lines, `server s1..s${slots} <slot>${common}`];
    for (let n = 1; n <= slots; n++) {
      const ep = endpoints[n - 1];
      const addr = ep === undefined ? "0.0.0.0:0 disabled" : serverAddress(ep.address, ep.port);
      lines.push(`server s${n} ${addr}${common}`);
    }
    return { header, lines, structure };
  }

  private caFile(base: string, pems: readonly string[]): string {
    const rel = `tls/backend-ca/${base.replace(/:/g, "_")}.pem`;
    this.ctx.addFile(rel, pems.map((pem) => `${pem.trim()}\n`).join(""));
    return rel;
  }
}
