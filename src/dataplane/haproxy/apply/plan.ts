// Planning an apply (pure): what changed between the running rendered config and the next one, and
// whether the runtime API can carry it (maps, server slots, certificates) or HAProxy must reload.
import type { ServerSlotUpdate } from "../runtime/commands.ts";
import type { RenderedConfig } from "../render/index.ts";

export interface MapUpdate {
  /** Path relative to the state dir, e.g. `maps/routes-00-prefix.map`. */
  file: string;
  entries: Array<[string, string]>;
}

export interface CertificateUpdate {
  file: string;
  pem: string;
}

export type ApplyPlan =
  | { kind: "noop" }
  | { kind: "runtime"; maps: MapUpdate[]; servers: ServerSlotUpdate[]; certificates: CertificateUpdate[] }
  | { kind: "reload"; reason: string };

/** A `server` line of a rendered backend: `server s<n> <addr>:<port> [disabled] [options...]`. */
const SERVER_LINE = /^(\s+server\s+(s\d+)\s+)(\S+)((?:\s+disabled)?)(.*)$/;

/**
 * The configuration with what the runtime API can change blanked out: server slot addresses and
 * their enabled/disabled state. Two configs with the same structure differ only in runtime data.
 */
export function structureOf(config: string): string {
  return config
    .split("\n")
    .map((line) => {
      const m = SERVER_LINE.exec(line);
      return m === null ? line : `${m[1] ?? ""}<slot>${m[5] ?? ""}`;
    })
    .join("\n");
}

interface SlotState {
  address: string;
  port: number;
  enabled: boolean;
}

/** Server slots per HAProxy backend, parsed from a rendered config. */
export function serverSlots(config: string): Map<string, SlotState> {
  const slots = new Map<string, SlotState>();
  let backend: string | undefined;
  for (const line of config.split("\n")) {
    const section =
      /^(backend|frontend|listen|defaults|global|userlist|peers|resolvers|program)\b\s*(\S*)/.exec(line);
    if (section !== null) {
      backend = section[1] === "backend" ? section[2] : undefined;
      continue;
    }
    if (backend === undefined) continue;
    const m = SERVER_LINE.exec(line);
    if (m === null) continue;
    const endpoint = splitAddress(m[3] ?? "");
    slots.set(`${backend}/${m[2] ?? ""}`, {
      address: endpoint.address,
      port: endpoint.port,
      enabled: (m[4] ?? "") === "",
    });
  }
  return slots;
}

function splitAddress(value: string): { address: string; port: number } {
  const bracket = /^\[([^\]]+)\]:(\d+)$/.exec(value);
  if (bracket !== null) return { address: bracket[1] ?? "", port: Number(bracket[2]) };
  const colon = value.lastIndexOf(":");
  return { address: value.slice(0, colon), port: Number(value.slice(colon + 1)) };
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

const isMap = (file: string): boolean => file.startsWith("maps/") && file.endsWith(".map");
const isCertificate = (file: string): boolean => file.startsWith("tls/certs/") && file.endsWith(".pem");

/** Decides how to go from `current` (running) to `next`; both rendered with the same state dir. */
export function planApply(current: RenderedConfig | undefined, next: RenderedConfig): ApplyPlan {
  if (current === undefined) return { kind: "reload", reason: "first configuration" };
  if (structureOf(current.config) !== structureOf(next.config)) {
    return { kind: "reload", reason: "the configuration structure changed" };
  }
  const currentFiles = Object.keys(current.files).sort();
  const nextFiles = Object.keys(next.files).sort();
  if (currentFiles.join("\n") !== nextFiles.join("\n")) {
    return { kind: "reload", reason: "files were added or removed" };
  }
  const maps: MapUpdate[] = [];
  const certificates: CertificateUpdate[] = [];
  for (const file of nextFiles) {
    const content = next.files[file] ?? "";
    if (current.files[file] === content) continue;
    if (isMap(file)) maps.push({ file, entries: parseMapFile(content) });
    else if (isCertificate(file)) certificates.push({ file, pem: content });
    else return { kind: "reload", reason: `${file} changed` };
  }
  const servers: ServerSlotUpdate[] = [];
  const before = serverSlots(current.config);
  for (const [key, slot] of serverSlots(next.config)) {
    const old = before.get(key);
    if (
      old !== undefined &&
      old.address === slot.address &&
      old.port === slot.port &&
      old.enabled === slot.enabled
    ) {
      continue;
    }
    const slash = key.lastIndexOf("/");
    const backend = key.slice(0, slash);
    const server = key.slice(slash + 1);
    servers.push({
      backend,
      server,
      address: slot.enabled ? slot.address : "0.0.0.0",
      port: slot.enabled ? slot.port : 0,
      state: slot.enabled ? "ready" : "maint",
    });
  }
  if (maps.length === 0 && servers.length === 0 && certificates.length === 0) return { kind: "noop" };
  return { kind: "runtime", maps, servers, certificates };
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
