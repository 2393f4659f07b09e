// One HAProxy backend per IRBackend (its "base" proxy), plus variants when a rule needs settings
// HAProxy only has per backend: retries/retry-on, a persistence cookie, HTTP/2 for gRPC, or TCP mode
// for TCP/TLS routes. Every proxy has the same `slots` servers `s1..sN`: the first filled from the
// endpoints, the rest `disabled` at 0.0.0.0:0, so endpoints change at runtime with
// `set server <proxy>/<sN> addr <ip> port <port>` and `set server ... state ready|maint`.
import { isIP } from "node:net";
import type { IRBackend } from "../../../ir/types.ts";
import { comment, word } from "./escape.ts";
import { digest, type RenderContext, type RenderedBackend, type Section } from "./model.ts";

export interface Profile {
  mode: "http" | "tcp";
  /** HTTP/2 to the server: `proto h2` (cleartext) or `alpn h2` (TLS). */
  h2: boolean;
  retry?: { attempts: number; codes: number[] };
  cookie?: { name: string; maxIdleS?: number; maxLifeS?: number; maxAgeS?: number };
}

interface Proxy {
  name: string;
  profile: Profile;
}

interface Entry {
  backend: IRBackend;
  base: string;
  tag: string;
  slots: number;
  proxies: Map<string, Proxy>;
}

function profileKey(p: Profile): string {
  return JSON.stringify([p.mode, p.h2, p.retry ?? null, p.cookie ?? null]);
}

/** Readable variant suffix: `tcp`, `h2`, `retry-<digest>`, `cookie-<digest>` (digest of the settings). */
function variantSuffix(p: Profile, key: string): string {
  const parts: string[] = [p.mode === "tcp" ? "tcp" : p.h2 ? "h2" : "http"];
  if (p.retry !== undefined) parts.push("retry");
  if (p.cookie !== undefined) parts.push("cookie");
  if (parts.length > 1) {
    if (parts[0] === "http") parts.shift();
    parts.push(digest(key, 8));
  }
  return parts.join("-");
}

function naturalProfile(b: IRBackend): Profile {
  return { mode: b.protocol === "tcp" ? "tcp" : "http", h2: b.protocol === "h2c" };
}

export function serverAddress(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export class BackendSet {
  private readonly ctx: RenderContext;
  private readonly entries = new Map<string, Entry>();

  constructor(ctx: RenderContext, backends: readonly IRBackend[]) {
    this.ctx = ctx;
    for (const b of backends) {
      if (b.protocol === "udp") continue;
      const wanted = b.id.replace(/\//g, ":").replace(/[^A-Za-z0-9._:-]/g, "_");
      const base = ctx.claim("proxy", wanted, `backend\0${b.id}`, ":");
      let slots = ctx.options.serverSlots;
      while (slots < b.endpoints.length) slots *= 2;
      const entry: Entry = {
        backend: b,
        base,
        tag: digest(`backend\0${b.id}`, 8),
        slots,
        proxies: new Map(),
      };
      this.entries.set(b.id, entry);
      this.proxy(b.id, naturalProfile(b));
    }
  }

  private entry(id: string): Entry {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`internal: unknown backend ${id}`);
    return e;
  }

  /** Cookie tag of an IRBackend (prefix of its server cookie values). */
  tag(id: string): string {
    return this.entry(id).tag;
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
    if (existing !== undefined) return existing.name;
    const natural = key === profileKey(naturalProfile(e.backend));
    const name = natural
      ? e.base
      : this.ctx.claim(
          "proxy",
          `${e.base}:${variantSuffix(profile, key)}`,
          `backend\0${e.backend.id}\0${key}`,
          ":",
        );
    e.proxies.set(key, { name, profile });
    return name;
  }

  sections(mode: "http" | "tcp"): Section[] {
    const out: Section[] = [];
    for (const e of this.entries.values()) {
      for (const p of e.proxies.values()) if (p.profile.mode === mode) out.push(this.section(e, p));
    }
    return out;
  }

  runtime(): RenderedBackend[] {
    return [...this.entries.values()].map((e) => ({
      id: e.backend.id,
      proxies: [...e.proxies.values()].map((p) => p.name),
      slots: e.slots,
    }));
  }

  private section(e: Entry, p: Proxy): Section {
    const b = e.backend;
    const lines = [
      `# ${comment(`${b.id} (${b.source.kind} ${b.source.namespace}/${b.source.name}, ${b.protocol})`)}`,
    ];
    lines.push(`mode ${p.profile.mode}`);
    if (p.profile.mode === "http") {
      lines.push("http-reuse safe");
      lines.push("http-request set-timeout server var(txn.gh_to) if { var(txn.gh_to) -m found }");
    }
    const r = p.profile.retry;
    if (r !== undefined) {
      lines.push(`retries ${r.attempts}`);
      lines.push(["retry-on conn-failure empty-response", ...r.codes.map(String)].join(" "));
      lines.push("option redispatch 1");
    }
    const c = p.profile.cookie;
    if (c !== undefined) {
      const opts = ["insert", "indirect", "nocache"];
      if (c.maxIdleS !== undefined) opts.push(`maxidle ${c.maxIdleS}s`);
      if (c.maxLifeS !== undefined) opts.push(`maxlife ${c.maxLifeS}s`);
      if (c.maxAgeS !== undefined) opts.push(`attr ${word(`Max-Age=${c.maxAgeS}`)}`);
      lines.push(`cookie ${word(c.name)} ${opts.join(" ")}`);
    }
    const server: string[] = [];
    if (b.tls !== undefined) {
      const ca =
        b.tls.wellKnownCACertificates === "System"
          ? "@system-ca"
          : this.ctx.abs(this.caFile(e, b.tls.caCertificates));
      const tls = ["ssl", "verify required", `ca-file ${ca}`, `sni str(${b.tls.sni})`];
      if (p.profile.h2) tls.push("alpn h2");
      lines.push(`default-server ${tls.join(" ")}`);
    } else if (p.profile.h2 && p.profile.mode === "http") {
      server.push("proto h2");
    }
    for (let n = 1; n <= e.slots; n++) {
      const ep = b.endpoints[n - 1];
      const opts = [...server];
      if (c !== undefined) opts.push(`cookie ${e.tag}.${n}`);
      const addr = ep === undefined ? "0.0.0.0:0 disabled" : serverAddress(ep.address, ep.port);
      lines.push([`server s${n} ${addr}`, ...opts].join(" "));
    }
    return { header: `backend ${p.name}`, lines };
  }

  private caFile(e: Entry, pems: readonly string[]): string {
    const rel = `tls/backend-ca/${e.base.replace(/:/g, "_")}.pem`;
    this.ctx.addFile(rel, pems.map((pem) => `${pem.trim()}\n`).join(""));
    return rel;
  }
}
