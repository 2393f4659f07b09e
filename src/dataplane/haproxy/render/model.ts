// Public option/result types and the mutable render context shared by the section renderers.
import { createHash } from "node:crypto";
import type { IRBackend, IREndpoint } from "../../../ir/types.ts";

export interface RenderOptions {
  /** Absolute directory where `files` will live; used for every path inside haproxy.cfg. */
  stateDir: string;
  /** Runtime API socket (`stats socket ... level admin expose-fd listeners`). */
  runtimeSocket: string;
  /** Master CLI socket. HAProxy 2.6 only takes it on the command line (`-S`): not rendered. */
  masterSocket?: string;
  /** Pre-allocated server slots per backend; grows in powers of two when endpoints exceed it. */
  serverSlots: number;
  /** `hard-stop-after`, e.g. "30s". */
  hardStopAfter: string;
  /** `host:port` (loopback) where HAProxy's own Prometheus exporter answers `/metrics`; none if absent. */
  metricsAddress?: string;
  /**
   * Spare plain-HTTP backends `gh_spare_<n>` (each with `serverSlots` disabled servers) rendered when
   * the IR has an HTTP or HTTPS listener, for new Services to take at runtime (see `render`'s
   * `previous`). Default 0.
   */
  spareBackends?: number;
  /** `nbthread` in global; HAProxy's default (one per CPU it may run on) when absent. */
  threads?: number;
  /** `maxconn` in global (per process); HAProxy's default when absent. */
  maxconn?: number;
  /**
   * `timeout connect` (both defaults sections) and `timeout client` / `timeout server` (the HTTP
   * defaults; TCP keeps its long 1h ones), in milliseconds; Gatehouse's defaults when absent.
   */
  timeouts?: { connectMs?: number; clientMs?: number; serverMs?: number };
  /** Per-rule request, status-class and byte counters in a stick table (see metrics.ts). */
  ruleCounters?: boolean;
  /**
   * Access logs of HTTP traffic as JSON lines, forwarded over TCP to a loopback `address`; each line
   * starts with `token` ([A-Za-z0-9]) (see logging.ts).
   */
  accessLog?: { address: string; token: string };
}

/** What an HAProxy backend section carries per connection: its mode and the per-backend settings. */
export interface Profile {
  mode: "http" | "tcp";
  /** HTTP/2 to the server: `proto h2` (cleartext) or `alpn h2` (TLS). */
  h2: boolean;
  /** `timeout`: also retry when the server timeout strikes before a response (`response-timeout`). */
  retry?: { attempts: number; codes: number[]; timeout?: true };
  /**
   * Cookie session persistence: the cookie's name and `Path`, the session's absolute lifetime
   * (tracked in the cookie's value), and `Max-Age` (Permanent cookies only).
   */
  cookie?: { name: string; path: string; maxLifeS?: number; maxAgeS?: number };
  /** Header session persistence: the header's name, and the session's absolute lifetime. */
  header?: { name: string; maxLifeS?: number };
}

/** One HAProxy backend section with server slots, as rendered. */
export interface BackendSection {
  /** HAProxy backend name. */
  name: string;
  /** Server slots `s1..s<slots>`. */
  slots: number;
  /**
   * What fills the slots: entry n-1 is slot `s<n>`'s endpoint; an absent entry (a hole, or past the
   * end) is a `disabled` slot at 0.0.0.0:0. A section rendered against a previous layout keeps its
   * endpoints in their slots (see BackendSet), so holes appear when endpoints go.
   */
  endpoints: ReadonlyArray<IREndpoint | undefined>;
  /** IRBackend.id whose endpoints the section carries; absent for a free spare or an orphan. */
  backend?: string;
  /**
   * A spare (`gh_spare_<n>`): plain HTTP, its text the same whether free or assigned. Otherwise the
   * section was rendered for `source` (its endpoints are not used) with `profile`; `base` is the
   * name of the IRBackend's base section (it names the CA file).
   */
  spare: boolean;
  source?: { backend: IRBackend; base: string; profile: Profile };
}

/**
 * Which backend sections a render emitted, in order: pass it back to `render` as `previous` to keep
 * them, so that a new Service can take a free spare instead of changing the configuration's structure.
 */
export interface BackendLayout {
  /** The number of server slots of a spare (the `serverSlots` it was rendered with). */
  spareSlots: number;
  sections: BackendSection[];
}

/** One IRBackend as rendered: the HAProxy backends (proxies) that carry its endpoints. */
export interface RenderedBackend {
  /** IRBackend.id */
  id: string;
  /** HAProxy backend names, the base one first, then per-rule variants (retries, cookies, h2, tcp). */
  proxies: string[];
  /** Server slots in each proxy, named `s1`..`s<slots>` (which endpoint is in which: `layout`). */
  slots: number;
}

export interface RenderedConfig {
  /** haproxy.cfg */
  config: string;
  /** Relative path under stateDir → content: map files, crt-lists, PEM bundles, CA bundles, error pages. */
  files: Record<string, string>;
  /** Where each IRBackend's servers are, for runtime endpoint updates (`set server <proxy>/s<n> ...`). */
  backends: RenderedBackend[];
  /** The backend sections with server slots, in order, and what fills them (see BackendLayout). */
  layout: BackendLayout;
  /** Entries of every map file (path relative to stateDir → entries in file order). */
  maps: Record<string, ReadonlyArray<readonly [string, string]>>;
  /**
   * Map files in the order the frontends first look them up (listeners, virtual hosts, rules, then
   * what rules lead to), with how: `tree` when every lookup is an exact or prefix match (`map_str`,
   * `map_beg`, `map_ip`: HAProxy indexes them in a tree, entry order does not matter), `list` when
   * order matters (`map_end`, `map_reg`, ...). Maps no frontend looks up are not listed.
   */
  lookups: Array<{ file: string; index: "tree" | "list" }>;
  /**
   * Digest of the configuration with what the runtime API changes (server slot addresses and their
   * enabled/disabled state) blanked: equal digests mean the configurations differ only in runtime data.
   */
  structure: string;
}

/** Short stable identifier derived from `text` (48 bits of SHA-256, hex). */
export function digest(text: string, length = 12): string {
  let hex = digests.get(text);
  if (hex === undefined) {
    hex = createHash("sha256").update(text).digest("hex");
    // Renders repeat the same identities (thousands per render): remember them, boundedly.
    if (digests.size >= DIGEST_CACHE_SIZE) digests.clear();
    digests.set(text, hex);
  }
  return hex.slice(0, length);
}

/** The name shortId claims first for `identity`: `<prefix><12 hex>`. */
export function shortName(prefix: string, identity: string): string {
  return `${prefix}${digest(identity)}`;
}

const DIGEST_CACHE_SIZE = 200_000;
const digests = new Map<string, string>();

/** A map file: entries in insertion order; the first entry for a key wins (later ones are dropped). */
export class MapFile {
  readonly path: string;
  readonly entries: Array<[string, string]> = [];
  private readonly keys = new Set<string>();

  constructor(path: string) {
    this.path = path;
  }

  /** Adds `key value`; returns false (and adds nothing) when the key is already present. */
  add(key: string, value: string | number): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    this.entries.push([key, String(value)]);
    return true;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  render(): string {
    return this.entries.map(([k, v]) => `${k} ${v}\n`).join("");
  }
}

/** A configuration section: a header line and indented directives (comments included). */
export interface Section {
  header: string;
  lines: string[];
  /**
   * When the lines carry runtime data (server slot addresses, enabled/disabled): lines that describe
   * everything else, for the structure digest.
   */
  structure?: string[];
  /**
   * The section as remembered from an earlier render (backends.ts): its text, structure text and map
   * lookups. `lines` is then empty: only renderConfig and the map lookups read a section's lines,
   * and they take these instead.
   */
  compiled?: CompiledSection;
}

/** A section reduced to what the output needs of it (see Section.compiled). */
export interface CompiledSection {
  text: string;
  structure: string;
  lookups: ReadonlyArray<readonly [string, string]>;
}

/** A section's text, structure text and map lookups. */
export function compileSection(s: Section): CompiledSection {
  const text = sectionText(s.header, s.lines);
  return {
    text,
    structure: s.structure === undefined ? text : sectionText(s.header, s.structure),
    lookups: sectionLookups(s),
  };
}

/** The (path, match) of each map lookup in a section's lines, in order. */
export function sectionLookups(s: Section): ReadonlyArray<readonly [string, string]> {
  if (s.compiled !== undefined) return s.compiled.lookups;
  const out: Array<readonly [string, string]> = [];
  for (const line of s.lines) {
    if (!line.includes("map")) continue;
    // `map(<file>)` is `map_str`; `map_<match>[_<output>](<file>[,<default>])`.
    for (const m of line.matchAll(/\bmap(?:_([a-z]+)(?:_[a-z]+)?)?\(([^,)\s']+)/g))
      out.push([m[2] ?? "", m[1] ?? "str"]);
  }
  return out;
}

function sectionText(header: string, lines: readonly string[]): string {
  // One join (a flat string) rather than a concatenation per line: remembered texts are joined into
  // every later configuration, which walks a concatenated string's pieces each time.
  return lines.length === 0 ? `${header}\n` : `${header}\n  ${lines.join("\n  ")}\n`;
}

export function renderSections(sections: readonly Section[]): string {
  return sections.map((s) => sectionText(s.header, s.lines)).join("\n");
}

/** The configuration text and the digest of its structure (see RenderedConfig.structure). */
export function renderConfig(
  prefix: string,
  sections: readonly Section[],
): { config: string; structure: string } {
  const text: string[] = [];
  const structure: string[] = [];
  for (const s of sections) {
    if (s.compiled !== undefined) {
      text.push(s.compiled.text);
      structure.push(s.compiled.structure);
      continue;
    }
    const t = sectionText(s.header, s.lines);
    text.push(t);
    structure.push(s.structure === undefined ? t : sectionText(s.header, s.structure));
  }
  return {
    config: prefix + text.join("\n"),
    structure: createHash("sha256").update(structure.join("\n")).digest("hex"),
  };
}

/** Mutable state of one render: output files, map files, and name registries. */
export class RenderContext {
  readonly options: RenderOptions;
  readonly stateDir: string;
  readonly files = new Map<string, string>();
  private readonly maps = new Map<string, MapFile>();
  /** Maps some configuration line looks up (mapPath); the others are not output. */
  private readonly referenced = new Set<string>();
  /** namespace → name → owner */
  private readonly names = new Map<string, Map<string, string>>();

  constructor(options: RenderOptions) {
    this.options = options;
    this.stateDir = options.stateDir.replace(/\/+$/, "");
  }

  /** Absolute path of a file under stateDir. */
  abs(rel: string): string {
    return `${this.stateDir}/${rel}`;
  }

  /** The map file `maps/<name>.map` (created on first use). */
  map(name: string): MapFile {
    let m = this.maps.get(name);
    if (m === undefined) this.maps.set(name, (m = new MapFile(`maps/${name}.map`)));
    return m;
  }

  /**
   * Absolute path of `maps/<name>.map` for a configuration line that looks it up: the file is then
   * output, even when empty.
   */
  mapPath(name: string): string {
    this.referenced.add(name);
    return this.abs(this.map(name).path);
  }

  addFile(rel: string, content: string): void {
    const existing = this.files.get(rel);
    if (existing !== undefined && existing !== content) throw new Error(`internal: two contents for ${rel}`);
    this.files.set(rel, content);
  }

  /**
   * Claims a unique name in a namespace (proxy names, file names, short ids): `wanted` when free or
   * already owned by `owner`, otherwise `wanted` + a digest of the owner.
   */
  claim(namespace: string, wanted: string, owner: string, separator = "-"): string {
    let names = this.names.get(namespace);
    if (names === undefined) this.names.set(namespace, (names = new Map<string, string>()));
    for (let attempt = 0; ; attempt++) {
      const name = attempt === 0 ? wanted : `${wanted}${separator}${digest(`${owner}\0${attempt}`, 8)}`;
      const current = names.get(name);
      if (current === undefined) {
        names.set(name, owner);
        return name;
      }
      if (current === owner) return name;
    }
  }

  /** Stable short id `<prefix><12 hex>` for an IR element, unique within the render. */
  shortId(prefix: string, identity: string): string {
    return this.claim("id", shortName(prefix, identity), identity);
  }

  /** Entries of every map file by path. */
  allMaps(): Record<string, ReadonlyArray<readonly [string, string]>> {
    const out: Record<string, ReadonlyArray<readonly [string, string]>> = {};
    for (const [name, m] of this.maps) if (this.referenced.has(name)) out[m.path] = m.entries;
    return out;
  }

  /** All output files, map files included, sorted by path. */
  allFiles(): Record<string, string> {
    const out = new Map(this.files);
    // A map no line looks up is not loaded by HAProxy (and could not be updated at runtime).
    for (const [name, m] of this.maps) if (this.referenced.has(name)) out.set(m.path, m.render());
    return Object.fromEntries([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}
