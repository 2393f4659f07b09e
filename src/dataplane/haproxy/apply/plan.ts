// Planning an apply (pure): what changed between the running rendered config and the next one,
// whether the runtime API can carry it (maps, server slots, certificates) or HAProxy must reload,
// and in which order the runtime steps go so that no request meets a half-made change.
import type { IREndpoint } from "../../../ir/types.ts";
import type { BackendSection, RenderedConfig } from "../render/index.ts";
import type { ServerSlotUpdate } from "../runtime/commands.ts";

export interface MapUpdate {
  /** Path relative to the state dir, e.g. `maps/routes-00-prefix.map`. */
  file: string;
  /** The new content. */
  entries: Array<readonly [string, string]>;
}

export interface CertificateUpdate {
  file: string;
  pem: string;
}

/** One runtime API step. Map files are relative to the state dir. */
export type RuntimeStep =
  | { kind: "server"; update: ServerSlotUpdate }
  | { kind: "certificate"; file: string; pem: string }
  /** Replace the whole map in one transaction (prepare, add, commit). */
  | { kind: "map-replace"; file: string; entries: Array<readonly [string, string]> }
  /** Add entries with new keys to the live map (each is live as soon as it is added). */
  | { kind: "map-add"; file: string; entries: Array<readonly [string, string]> }
  /** Delete keys from the live map. */
  | { kind: "map-delete"; file: string; keys: string[] };

export type ApplyPlan =
  | { kind: "noop" }
  | {
      kind: "runtime";
      /** What changes: maps (new content), server slots, certificates. */
      maps: MapUpdate[];
      servers: ServerSlotUpdate[];
      certificates: CertificateUpdate[];
      /** How, in order (see planApply). */
      steps: RuntimeStep[];
      /** Spares that start serving an IRBackend (spare → IRBackend id) or stop (→ null). */
      spares: Record<string, string | null>;
    }
  | { kind: "reload"; reason: string };

/** At most this many `del map` commands per map; more removals replace the map instead. */
const MAX_DELETES = 16;

const isMap = (file: string): boolean => file.startsWith("maps/") && file.endsWith(".map");
const isCertificate = (file: string): boolean => file.startsWith("tls/certs/") && file.endsWith(".pem");

/**
 * Decides how to go from `current` (running) to `next`; both rendered with the same state dir, `next`
 * normally with `current.layout` as its previous layout.
 *
 * Runtime steps go in an order that keeps every intermediate state serving either the old or the new
 * configuration for each request:
 * 1. server slots that get an endpoint (address, then `ready`), and certificates: nothing refers to
 *    new slots yet, so a spare has its servers before any map names it;
 * 2. map additions and changes, from the maps the frontends look up last (backend choices) to the
 *    first (listeners): new rules are complete before a route leads to them. Removed keys of a
 *    tree-indexed map are kept in this step;
 * 3. map removals, from the first looked up to the last: routes stop leading to rules before the
 *    rules go;
 * 4. server slots that lose their endpoint (`maint`), once no map leads to them any more.
 */
export function planApply(current: RenderedConfig | undefined, next: RenderedConfig): ApplyPlan {
  if (current === undefined) return { kind: "reload", reason: "first configuration" };
  if (current.structure !== next.structure) {
    return { kind: "reload", reason: "the configuration structure changed" };
  }
  const currentFiles = Object.keys(current.files);
  const nextFiles = Object.keys(next.files);
  if (currentFiles.length !== nextFiles.length || nextFiles.some((f) => !(f in current.files))) {
    return { kind: "reload", reason: "files were added or removed" };
  }
  const maps: MapUpdate[] = [];
  const certificates: CertificateUpdate[] = [];
  // HAProxy only loads the maps the configuration looks up: others are files only.
  const loaded = new Set(next.lookups.map((l) => l.file));
  let filesOnly = false;
  for (const file of nextFiles) {
    const content = next.files[file] ?? "";
    if (current.files[file] === content) continue;
    if (isMap(file)) {
      if (loaded.has(file)) maps.push({ file, entries: mapEntries(next, file) });
      else filesOnly = true;
    } else if (isCertificate(file)) certificates.push({ file, pem: content });
    else return { kind: "reload", reason: `${file} changed` };
  }
  const { servers, spares } = serverChanges(current.layout.sections, next.layout.sections);
  if (maps.length === 0 && servers.length === 0 && certificates.length === 0 && !filesOnly)
    return { kind: "noop" };

  const steps: RuntimeStep[] = [];
  for (const s of servers) if (s.state === "ready") steps.push({ kind: "server", update: s });
  for (const c of certificates) steps.push({ kind: "certificate", file: c.file, pem: c.pem });
  const phases = maps.map((m) =>
    mapSteps(m.file, mapEntries(current, m.file), m.entries, index(next, m.file)),
  );
  const rank = lookupRank(next);
  const byRank = [...phases].sort((a, b) => rank(a.file) - rank(b.file));
  for (const p of [...byRank].reverse()) steps.push(...p.add);
  for (const p of byRank) steps.push(...p.remove);
  for (const s of servers) if (s.state !== "ready") steps.push({ kind: "server", update: s });
  return { kind: "runtime", maps, servers, certificates, steps, spares };
}

/** Map entries of a rendered config: from the renderer, or parsed from the file. */
function mapEntries(rendered: RenderedConfig, file: string): Array<readonly [string, string]> {
  const entries = rendered.maps[file];
  return entries !== undefined ? [...entries] : parseMapFile(rendered.files[file] ?? "");
}

function index(rendered: RenderedConfig, file: string): "tree" | "list" {
  return rendered.lookups.find((l) => l.file === file)?.index ?? "list";
}

/** Position of a map in the frontends' lookup order; maps never looked up come last. */
function lookupRank(rendered: RenderedConfig): (file: string) => number {
  const ranks = new Map(rendered.lookups.map((l, i) => [l.file, i]));
  return (file) => ranks.get(file) ?? ranks.size;
}

/** The steps of one map: those of phase 2 (`add`) and of phase 3 (`remove`). */
export function mapSteps(
  file: string,
  before: ReadonlyArray<readonly [string, string]>,
  after: ReadonlyArray<readonly [string, string]>,
  index: "tree" | "list",
): { file: string; add: RuntimeStep[]; remove: RuntimeStep[] } {
  const old = new Map<string, string>();
  for (const [k, v] of before) if (!old.has(k)) old.set(k, v);
  const keys = new Set<string>();
  const added: Array<readonly [string, string]> = [];
  let changed = false;
  for (const [k, v] of after) {
    if (keys.has(k)) continue;
    keys.add(k);
    const was = old.get(k);
    if (was === undefined) added.push([k, v]);
    else if (was !== v) changed = true;
  }
  const removed = [...old].filter(([k]) => !keys.has(k));
  const replace = (entries: Array<readonly [string, string]>): RuntimeStep => ({
    kind: "map-replace",
    file,
    entries,
  });
  if (index === "list") {
    // Order matters: only appending keeps it; otherwise the whole map at once.
    const appended =
      !changed &&
      removed.length === 0 &&
      before.every(([k, v], i) => after[i]?.[0] === k && after[i]?.[1] === v);
    if (appended)
      return { file, add: added.length === 0 ? [] : [{ kind: "map-add", file, entries: added }], remove: [] };
    const step = replace([...after]);
    return removed.length === 0 ? { file, add: [step], remove: [] } : { file, add: [], remove: [step] };
  }
  const add: RuntimeStep[] = [];
  if (changed) add.push(replace([...after, ...removed]));
  else if (added.length > 0) add.push({ kind: "map-add", file, entries: added });
  const remove: RuntimeStep[] = [];
  if (removed.length > MAX_DELETES) remove.push(replace([...after]));
  else if (removed.length > 0) remove.push({ kind: "map-delete", file, keys: removed.map(([k]) => k) });
  return { file, add, remove };
}

/** Server slot updates from one layout to the next (same sections and slots: same structure). */
function serverChanges(
  before: readonly BackendSection[],
  after: readonly BackendSection[],
): { servers: ServerSlotUpdate[]; spares: Record<string, string | null> } {
  const old = new Map(before.map((s) => [s.name, s]));
  const servers: ServerSlotUpdate[] = [];
  const spares: Record<string, string | null> = {};
  for (const s of after) {
    const was = old.get(s.name);
    if (s.spare && was?.backend !== s.backend) spares[s.name] = s.backend ?? null;
    if (was !== undefined && was.endpoints === s.endpoints) continue;
    const filled = Math.min(s.slots, Math.max(s.endpoints.length, was?.endpoints.length ?? s.slots));
    for (let n = 1; n <= filled; n++) {
      const ep = s.endpoints[n - 1];
      const prev = was?.endpoints[n - 1];
      if (sameEndpoint(ep, prev)) continue;
      servers.push(
        ep === undefined
          ? { backend: s.name, server: `s${n}`, address: "0.0.0.0", port: 0, state: "maint" }
          : { backend: s.name, server: `s${n}`, address: ep.address, port: ep.port, state: "ready" },
      );
    }
  }
  return { servers, spares };
}

function sameEndpoint(a: IREndpoint | undefined, b: IREndpoint | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.address === b.address && a.port === b.port;
}

/** Parses a map file: one `key value` per line (keys never contain blanks). */
export function parseMapFile(content: string): Array<[string, string]> {
  const entries: Array<[string, string]> = [];
  for (const line of content.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.search(/[ \t]/);
    if (space < 0) entries.push([line, ""]);
    else entries.push([line.slice(0, space), line.slice(space).replace(/^[ \t]+/, "")]);
  }
  return entries;
}

/**
 * The TCP addresses a rendered configuration listens on (`bind HOST:PORT`, `bind :PORT`,
 * `bind [IPv6]:PORT`; unix sockets are left out), as `{ host, port }` with `:PORT` read as 0.0.0.0.
 */
export function tcpListenAddresses(config: string): Array<{ host: string; port: number }> {
  const out = new Map<string, { host: string; port: number }>();
  for (const line of config.split("\n")) {
    const m = /^\s+bind\s+(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]*)):(\d+)(?:\s|$)/.exec(line);
    if (m === null) continue;
    const host = m[1] ?? (m[2] === "" || m[2] === undefined ? "0.0.0.0" : m[2]);
    const port = Number(m[3]);
    out.set(`${host}|${port}`, { host, port });
  }
  return [...out.values()];
}

/**
 * Backend sections left by removed Services stay (servers disabled) while changes are applied at
 * runtime, since removing one would change the configuration's structure. When they become many,
 * the next change is applied with a reload instead, which drops them (and frees every spare): this
 * says why, or undefined while they are few (at most `min`, or at most `share` of all sections).
 */
export function compactionReason(
  next: RenderedConfig,
  limits: { min: number; share: number } = { min: 64, share: 0.25 },
): string | undefined {
  const sections = next.layout.sections;
  const orphans = sections.filter((s) => !s.spare && s.backend === undefined).length;
  if (orphans <= limits.min || orphans <= sections.length * limits.share) return undefined;
  return `compacting: ${orphans} of ${sections.length} backend sections belong to removed Services`;
}
