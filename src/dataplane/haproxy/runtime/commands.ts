// Typed runtime API commands for the applier: map transactions, server slots, certificate
// transactions, crt-lists, and the parsers for what HAProxy 2.6 prints.
//
// HAProxy answers in free text and most failures are plain sentences, so every helper knows what its
// command prints on success and throws RuntimeCommandError (with the full answer) on anything else.
// These helpers work the same over the stats socket and over the master CLI (`@1` routing), which is
// why they do not rely on `set severity-output` (it does not survive master routing).
import {
  cliArg,
  cliCommand,
  DEFAULT_MAX_REQUEST_BYTES,
  requestOverhead,
  RuntimeCommandError,
  RuntimeRequestError,
} from "./socket.ts";
import type { RuntimeApi } from "./socket.ts";

// ---------------------------------------------------------------------------------------------------
// Maps

/** One map entry as `show map` prints it; `ref` is HAProxy's entry id (`#<ref>` in del/set map). */
export interface MapEntry {
  ref: string;
  key: string;
  value: string;
}

/** One map as listed by `show map`. */
export interface MapInfo {
  id: number;
  /** The map file (the name used in commands). */
  file: string;
  description: string;
  /** Committed version; undefined on versions that do not print it. */
  currentVersion?: number;
  /** Latest prepared version. */
  nextVersion?: number;
  entries?: number;
}

/**
 * Checks a map key: non-empty, no whitespace or control characters (neither the CLI payload nor a map
 * file can carry them: the key ends at the first blank), and not starting with `#` (a comment in a
 * map file, so it would vanish at the next reload).
 */
export function checkMapKey(key: string): string {
  // eslint-disable-next-line no-control-regex
  if (key === "" || /[\s\u0000-\u001f\u007f]/.test(key) || key.startsWith("#")) {
    throw new RuntimeRequestError(
      `map key ${JSON.stringify(key)} is not representable (empty, blank, control character or leading "#")`,
    );
  }
  return key;
}

/** Checks a map value: non-empty, no control characters, no leading or trailing blank. */
export function checkMapValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (value === "" || /[\u0000-\u001f\u007f]/.test(value) || value.trim() !== value) {
    throw new RuntimeRequestError(
      `map value ${JSON.stringify(value)} is not representable (empty, control character or surrounding blanks)`,
    );
  }
  return value;
}

/** `show map`: the maps loaded by the running configuration. */
export async function listMaps(api: RuntimeApi): Promise<MapInfo[]> {
  const answer = await api.command("show map");
  return parseMapList(answer);
}

export function parseMapList(answer: string): MapInfo[] {
  const maps: MapInfo[] = [];
  for (const line of answer.split("\n")) {
    const match = /^(\d+) \((.*)\) (.*)$/.exec(line);
    if (match === null) continue;
    const [, id = "", file = "", description = ""] = match;
    const info: MapInfo = { id: Number(id), file, description };
    const current = /\bcurr_ver=(\d+)/.exec(description)?.[1];
    const next = /\bnext_ver=(\d+)/.exec(description)?.[1];
    const count = /\bentry_cnt=(\d+)/.exec(description)?.[1];
    if (current !== undefined) info.currentVersion = Number(current);
    if (next !== undefined) info.nextVersion = Number(next);
    if (count !== undefined) info.entries = Number(count);
    maps.push(info);
  }
  return maps;
}

/** `show map [@<version>] <map>`: the entries, in HAProxy's order (which is match order). */
export async function showMap(api: RuntimeApi, map: string, version?: number): Promise<MapEntry[]> {
  const command = cliCommand(["show map", ...versionPart(version), { arg: map, what: "map" }]);
  const answer = await api.command(command);
  return parseMapEntries(command, answer);
}

export function parseMapEntries(command: string, answer: string): MapEntry[] {
  const entries: MapEntry[] = [];
  for (const line of answer.split("\n")) {
    if (line === "") continue;
    const match = /^(0x[0-9a-f]+) (\S*) ?(.*)$/.exec(line);
    if (match === null) throw new RuntimeCommandError(command, answer);
    const [, ref = "", key = "", value = ""] = match;
    entries.push({ ref, key, value });
  }
  return entries;
}

/** `prepare map <map>`: starts a transaction and returns its version. */
export async function prepareMap(api: RuntimeApi, map: string): Promise<number> {
  const command = cliCommand(["prepare map", { arg: map, what: "map" }]);
  const answer = await api.command(command);
  const version = /^New version created: (\d+)$/m.exec(answer)?.[1];
  if (version === undefined) throw new RuntimeCommandError(command, answer);
  return Number(version);
}

export interface AddMapEntriesOptions {
  /** Add to this prepared version instead of the live map. */
  version?: number;
  /** Largest request per payload command (default DEFAULT_MAX_REQUEST_BYTES). */
  maxRequestBytes?: number;
}

/**
 * `add map [@<version>] <map> <<` with the entries as payload, split over as many commands as the
 * CLI buffer needs. Without a version, each chunk is live as soon as it is sent: use replaceMap for
 * an atomic change. Returns the number of commands sent.
 */
export async function addMapEntries(
  api: RuntimeApi,
  map: string,
  entries: Iterable<readonly [string, string]>,
  options: AddMapEntriesOptions = {},
): Promise<number> {
  const command = cliCommand(["add map", ...versionPart(options.version), { arg: map, what: "map" }]);
  const budget =
    (options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES) - requestOverhead(command, LONGEST_TARGET);
  const payloads: string[] = [];
  let lines: string[] = [];
  let bytes = 0;
  for (const [key, value] of entries) {
    const line = `${checkMapKey(key)} ${checkMapValue(value)}`;
    const size = Buffer.byteLength(line) + 1;
    if (size > budget) throw new RuntimeRequestError(`map entry for key ${JSON.stringify(key)} is too large`);
    if (bytes + size > budget) {
      payloads.push(lines.join("\n"));
      lines = [];
      bytes = 0;
    }
    lines.push(line);
    bytes += size;
  }
  if (lines.length > 0) payloads.push(lines.join("\n"));
  for (const payload of payloads) expectSilent(command, await api.command({ command, payload }));
  return payloads.length;
}

/** `add map [@<version>] <map> <key> <value>`: one entry (duplicates are possible: maps are lists). */
export async function addMapEntry(
  api: RuntimeApi,
  map: string,
  key: string,
  value: string,
  version?: number,
): Promise<void> {
  const command = cliCommand([
    "add map",
    ...versionPart(version),
    { arg: map, what: "map" },
    { arg: checkMapKey(key), what: "map key" },
    { arg: checkMapValue(value), what: "map value" },
  ]);
  expectSilent(command, await api.command(command));
}

/**
 * `set map <map> <key> <value>`: changes the value of every entry with this key. Returns false when
 * there is none (nothing is added).
 */
export async function setMapEntry(
  api: RuntimeApi,
  map: string,
  key: string,
  value: string,
): Promise<boolean> {
  const command = cliCommand([
    "set map",
    { arg: map, what: "map" },
    { arg: checkMapKey(key), what: "map key" },
    { arg: checkMapValue(value), what: "map value" },
  ]);
  const answer = await api.command(command);
  if (answer === "") return true;
  if (/^entry not found/.test(answer)) return false;
  throw new RuntimeCommandError(command, answer);
}

/** `del map <map> <key>`: removes every entry with this key. Returns false if there was none. */
export async function deleteMapEntry(api: RuntimeApi, map: string, key: string): Promise<boolean> {
  const command = cliCommand([
    "del map",
    { arg: map, what: "map" },
    { arg: checkMapKey(key), what: "map key" },
  ]);
  const answer = await api.command(command);
  if (answer === "") return true;
  if (/^Key not found/.test(answer)) return false;
  throw new RuntimeCommandError(command, answer);
}

/** `clear map [@<version>] <map>`. */
export async function clearMap(api: RuntimeApi, map: string, version?: number): Promise<void> {
  const command = cliCommand(["clear map", ...versionPart(version), { arg: map, what: "map" }]);
  expectSilent(command, await api.command(command));
}

/** `commit map @<version> <map>`: makes the version live atomically and drops older versions. */
export async function commitMap(api: RuntimeApi, map: string, version: number): Promise<void> {
  const command = cliCommand(["commit map", ...versionPart(version), { arg: map, what: "map" }]);
  expectSilent(command, await api.command(command));
}

/**
 * Replaces the whole content of a map atomically: prepare, add every entry to the new version (bulk
 * payloads), commit. Requests in flight see either the old or the new content. If anything fails
 * before the commit, the live map is untouched (the prepared version is dropped by the next commit).
 * Returns the committed version.
 */
export async function replaceMap(
  api: RuntimeApi,
  map: string,
  entries: Iterable<readonly [string, string]>,
  options: Omit<AddMapEntriesOptions, "version"> = {},
): Promise<number> {
  const list = [...entries];
  for (const [key, value] of list) {
    checkMapKey(key);
    checkMapValue(value);
  }
  const version = await prepareMap(api, map);
  if (list.length > 0) await addMapEntries(api, map, list, { ...options, version });
  await commitMap(api, map, version);
  return version;
}

/** Room for the longest master CLI routing prefix, so chunks fit over either socket. */
const LONGEST_TARGET = "@!4194304";

function versionPart(version: number | undefined): string[] {
  if (version === undefined) return [];
  if (!Number.isSafeInteger(version) || version < 0) {
    throw new RuntimeRequestError(`map version must be a non-negative integer, not ${version}`);
  }
  return [`@${version}`];
}

// ---------------------------------------------------------------------------------------------------
// Servers

export type ServerState = "ready" | "drain" | "maint";

/** One row of `show servers state` (format version 1), with the fields the applier needs typed. */
export interface ServerStateRow {
  backendId: number;
  backend: string;
  serverId: number;
  server: string;
  address: string;
  port: number;
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping. */
  operationalState: number;
  /**
   * srv_admin_state bit field: 0x01 forced maint, 0x02 inherited maint, 0x04 `disabled` in the config
   * (stays set after `state ready`, it only records where the server started), 0x08 forced drain,
   * 0x10 inherited drain, 0x20 maint after a resolution failure, 0x40 FQDN set at runtime.
   */
  adminState: number;
  /** In maintenance (admin state & 0x23, HAProxy's SRV_ADMF_MAINT). */
  maintenance: boolean;
  /** Draining (admin state & 0x18, SRV_ADMF_DRAIN). */
  draining: boolean;
  userWeight: number;
  initialWeight: number;
  /** Every column by its header name, as printed. */
  fields: Record<string, string>;
}

function serverName(backend: string, server: string): string {
  if (backend.includes("/") || server.includes("/")) {
    throw new RuntimeRequestError(`backend and server names must not contain "/": ${backend}/${server}`);
  }
  return cliArg(`${backend}/${server}`, "server");
}

/**
 * `set server <backend>/<server> addr <ip> [port <port>]`. HAProxy only accepts IP addresses here
 * (no names) and prints a sentence either way; anything but "changed"/"no need to change" is an error.
 */
export async function setServerAddress(
  api: RuntimeApi,
  backend: string,
  server: string,
  address: string,
  port?: number,
): Promise<void> {
  const parts = ["set server", serverName(backend, server), "addr", cliArg(address, "address")];
  if (port !== undefined) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RuntimeRequestError(`port must be an integer in 1..65535, not ${port}`);
    }
    parts.push("port", String(port));
  }
  const command = parts.join(" ");
  const answer = await api.command(command);
  if (/^(IP changed|no need to change)/.test(answer) && !/Invalid|invalid|failed/.test(answer)) return;
  throw new RuntimeCommandError(command, answer);
}

/** `set server <backend>/<server> state ready|drain|maint`. */
export async function setServerState(
  api: RuntimeApi,
  backend: string,
  server: string,
  state: ServerState,
): Promise<void> {
  if (state !== "ready" && state !== "drain" && state !== "maint") {
    throw new RuntimeRequestError(`server state must be ready, drain or maint, not ${String(state)}`);
  }
  const command = `set server ${serverName(backend, server)} state ${state}`;
  expectSilent(command, await api.command(command));
}

/** `set server <backend>/<server> weight <0..256>`. */
export async function setServerWeight(
  api: RuntimeApi,
  backend: string,
  server: string,
  weight: number,
): Promise<void> {
  if (!Number.isInteger(weight) || weight < 0 || weight > 256) {
    throw new RuntimeRequestError(`server weight must be an integer in 0..256, not ${weight}`);
  }
  const command = `set server ${serverName(backend, server)} weight ${weight}`;
  expectSilent(command, await api.command(command));
}

export interface ServerSlotUpdate {
  backend: string;
  server: string;
  address: string;
  port: number;
  weight?: number;
  state: ServerState;
}

/**
 * Points a pre-allocated server slot at an endpoint and sets its weight and state, in an order that
 * never sends new traffic to a half-updated slot: a slot being enabled gets its address and weight
 * before `ready`; a slot being disabled or drained leaves rotation before anything else changes.
 */
export async function updateServerSlot(api: RuntimeApi, update: ServerSlotUpdate): Promise<void> {
  const { backend, server } = update;
  if (update.state !== "ready") await setServerState(api, backend, server, update.state);
  await setServerAddress(api, backend, server, update.address, update.port);
  if (update.weight !== undefined) await setServerWeight(api, backend, server, update.weight);
  if (update.state === "ready") await setServerState(api, backend, server, "ready");
}

/** `show servers state [<backend>]`, parsed by its header line. */
export async function showServersState(api: RuntimeApi, backend?: string): Promise<ServerStateRow[]> {
  const command = cliCommand([
    "show servers state",
    ...(backend === undefined ? [] : [{ arg: backend, what: "backend" }]),
  ]);
  const answer = await api.command(command);
  return parseServersState(command, answer);
}

export function parseServersState(command: string, answer: string): ServerStateRow[] {
  const lines = answer.split("\n").filter((line) => line !== "");
  if (lines[0] !== "1")
    throw new RuntimeCommandError(command, answer, `unexpected answer: ${lines[0] ?? ""}`);
  const header = lines[1];
  if (header === undefined || !header.startsWith("# ")) throw new RuntimeCommandError(command, answer);
  const names = header.slice(2).split(" ");
  const rows: ServerStateRow[] = [];
  for (const line of lines.slice(2)) {
    if (line.startsWith("#")) continue;
    const values = line.split(" ");
    const fields: Record<string, string> = {};
    names.forEach((name, index) => (fields[name] = values[index] ?? ""));
    const num = (name: string): number => Number(fields[name] ?? "NaN");
    const admin = num("srv_admin_state");
    rows.push({
      backendId: num("be_id"),
      backend: fields["be_name"] ?? "",
      serverId: num("srv_id"),
      server: fields["srv_name"] ?? "",
      address: fields["srv_addr"] ?? "",
      port: num("srv_port"),
      operationalState: num("srv_op_state"),
      adminState: admin,
      maintenance: (admin & 0x23) !== 0,
      draining: (admin & 0x18) !== 0,
      userWeight: num("srv_uweight"),
      initialWeight: num("srv_iweight"),
      fields,
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// Certificates

function checkPath(path: string, what: string): string {
  if (!path.startsWith("/") && !/^[\w.-]/.test(path)) {
    throw new RuntimeRequestError(`${what} ${JSON.stringify(path)} is not a plain file name`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\s[\]\u0000-\u001f\u007f]/.test(path) || path.startsWith("*")) {
    throw new RuntimeRequestError(
      `${what} ${JSON.stringify(path)} contains blanks, brackets or control characters`,
    );
  }
  return path;
}

/** `new ssl cert <file>`: an empty certificate store, to be filled by setSslCert and committed. */
export async function newSslCert(api: RuntimeApi, file: string): Promise<void> {
  const command = cliCommand(["new ssl cert", { arg: checkPath(file, "certificate"), what: "certificate" }]);
  const answer = await api.command(command);
  if (!/^New empty certificate store/.test(answer)) throw new RuntimeCommandError(command, answer);
}

/**
 * `set ssl cert <file> <<` with a PEM bundle (certificate chain and key). Opens (or updates) the
 * transaction; nothing is served until commitSslCert.
 *
 * HAProxy allows one certificate transaction at a time, process-wide, and 2.6 misbehaves when another
 * one is open: `set ssl cert B` then answers "Transaction updated for certificate A" and puts B's PEM
 * into A's transaction. So this refuses when another transaction is open, and if HAProxy still names
 * another file, aborts that (now corrupted) transaction and throws.
 */
export async function setSslCert(api: RuntimeApi, file: string, pem: string): Promise<void> {
  const command = cliCommand(["set ssl cert", { arg: checkPath(file, "certificate"), what: "certificate" }]);
  const payload = pem.replace(/\r\n/g, "\n").replace(/\n+$/, "");
  if (payload.split("\n").some((line) => line.trim() === "")) {
    throw new RuntimeRequestError(`PEM for ${file} contains an empty line (it would end the payload)`);
  }
  const other = (await showSslCerts(api)).transactions.find((open) => open !== file);
  if (other !== undefined) {
    throw new RuntimeCommandError(
      command,
      "",
      `another certificate transaction is open (${other}); commit or abort it first`,
    );
  }
  const answer = await api.command({ command, payload });
  const target = /^Transaction (?:created|updated) for certificate (.*)!$/m.exec(answer)?.[1];
  if (target === undefined) throw new RuntimeCommandError(command, answer);
  if (target !== file) {
    await abortSslCert(api, target).catch(() => false);
    throw new RuntimeCommandError(
      command,
      answer,
      `HAProxy put the payload into the open transaction of ${target}, which was aborted; retry`,
    );
  }
}

/** `commit ssl cert <file>`: swaps the certificate in every bind that uses it, without a reload. */
export async function commitSslCert(api: RuntimeApi, file: string): Promise<void> {
  const command = cliCommand([
    "commit ssl cert",
    { arg: checkPath(file, "certificate"), what: "certificate" },
  ]);
  const answer = await api.command(command);
  if (!/^Success!$/m.test(answer) || /^Can't commit/m.test(answer))
    throw new RuntimeCommandError(command, answer);
}

/** `abort ssl cert <file>`. Returns false when no transaction was open. */
export async function abortSslCert(api: RuntimeApi, file: string): Promise<boolean> {
  const command = cliCommand([
    "abort ssl cert",
    { arg: checkPath(file, "certificate"), what: "certificate" },
  ]);
  const answer = await api.command(command);
  if (/^Transaction aborted/.test(answer)) return true;
  if (/^No ongoing transaction/.test(answer)) return false;
  throw new RuntimeCommandError(command, answer);
}

/**
 * `del ssl cert <file>`: drops a certificate no crt-list uses any more. Returns false if HAProxy did
 * not know it; throws if it is still in use.
 */
export async function deleteSslCert(api: RuntimeApi, file: string): Promise<boolean> {
  const command = cliCommand(["del ssl cert", { arg: checkPath(file, "certificate"), what: "certificate" }]);
  const answer = await api.command(command);
  if (/^Certificate '.*' deleted!$/m.test(answer)) return true;
  if (/doesn't exist!$/m.test(answer)) return false;
  throw new RuntimeCommandError(command, answer);
}

export interface SslCertList {
  /** Certificates loaded in memory. */
  files: string[];
  /** Certificates with an open transaction (without the leading `*`). */
  transactions: string[];
}

/** `show ssl cert`. */
export async function showSslCerts(api: RuntimeApi): Promise<SslCertList> {
  const answer = await api.command("show ssl cert");
  const result: SslCertList = { files: [], transactions: [] };
  let section: string[] | undefined;
  for (const line of answer.split("\n")) {
    if (line === "# transaction") section = result.transactions;
    else if (line === "# filename") section = result.files;
    else if (line !== "" && section !== undefined) section.push(line.replace(/^\*/, ""));
  }
  return result;
}

/**
 * Loads or replaces a certificate atomically: `new ssl cert` if HAProxy does not know the file yet,
 * then `set ssl cert` + `commit ssl cert`; aborts the transaction if either fails. Returns whether the
 * certificate was new (a new certificate serves nothing until it is added to a crt-list). On failure
 * the live certificate is untouched and a store created here is deleted again.
 */
export async function upsertSslCert(
  api: RuntimeApi,
  file: string,
  pem: string,
): Promise<{ created: boolean }> {
  const { files } = await showSslCerts(api);
  const created = !files.includes(file);
  if (created) await newSslCert(api, file);
  try {
    await setSslCert(api, file, pem);
    await commitSslCert(api, file);
  } catch (error) {
    await abortSslCert(api, file).catch(() => false);
    if (created) await deleteSslCert(api, file).catch(() => false);
    throw error;
  }
  return { created };
}

/** One crt-list line: a certificate, its SSL options (`[...]`) and SNI filters. */
export interface CrtListEntry {
  certificate: string;
  /** Bind SSL options, each a word such as `alpn` or `h2,http/1.1`: `["alpn", "h2,http/1.1"]`. */
  options?: readonly string[];
  /** SNI filters (`*.example.com`, `!skip.example.com`). */
  sniFilters?: readonly string[];
}

/** The crt-list line for an entry, validated so it cannot spill into another line or option. */
export function formatCrtListEntry(entry: CrtListEntry): string {
  const parts = [checkPath(entry.certificate, "certificate")];
  const options = entry.options ?? [];
  if (options.length > 0) {
    for (const option of options) {
      if (!/^[\x21-\x5a\x5c\x5e-\x7e]+$/.test(option)) {
        throw new RuntimeRequestError(
          `crt-list option ${JSON.stringify(option)} must be one printable word without brackets`,
        );
      }
    }
    parts.push(`[${options.join(" ")}]`);
  }
  for (const filter of entry.sniFilters ?? []) {
    if (!/^!?(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(filter) && filter !== "*") {
      throw new RuntimeRequestError(`SNI filter ${JSON.stringify(filter)} is not a hostname or wildcard`);
    }
    parts.push(filter.toLowerCase());
  }
  return parts.join(" ");
}

/** `add ssl crt-list <list> <<` one line. The certificate must already be loaded (upsertSslCert). */
export async function addCrtListEntry(api: RuntimeApi, list: string, entry: CrtListEntry): Promise<void> {
  const command = cliCommand(["add ssl crt-list", { arg: checkPath(list, "crt-list"), what: "crt-list" }]);
  const answer = await api.command({ command, payload: formatCrtListEntry(entry) });
  if (!/^Success!$/m.test(answer)) throw new RuntimeCommandError(command, answer);
}

/**
 * `del ssl crt-list <list> <cert>[:<line>]`. When the certificate appears on several lines HAProxy
 * insists on a line number (see showCrtList). Returns false if the certificate is not in the list.
 */
export async function deleteCrtListEntry(
  api: RuntimeApi,
  list: string,
  certificate: string,
  line?: number,
): Promise<boolean> {
  const target =
    line === undefined
      ? checkPath(certificate, "certificate")
      : `${checkPath(certificate, "certificate")}:${line}`;
  const command = cliCommand([
    "del ssl crt-list",
    { arg: checkPath(list, "crt-list"), what: "crt-list" },
    { arg: target, what: "certificate" },
  ]);
  const answer = await api.command(command);
  if (/^Entry '.*' deleted in crtlist/m.test(answer)) return true;
  if (
    /^Can't delete the entry: certificate '.*' (does not exist|can't be found in crt-list '.*')!$/m.test(
      answer,
    )
  ) {
    return false;
  }
  throw new RuntimeCommandError(command, answer);
}

export interface CrtListLine {
  certificate: string;
  line: number;
  /** The rest of the line as HAProxy prints it (options and filters). */
  rest: string;
}

/** `show ssl crt-list -n <list>`. */
export async function showCrtList(api: RuntimeApi, list: string): Promise<CrtListLine[]> {
  const command = cliCommand([
    "show ssl crt-list -n",
    { arg: checkPath(list, "crt-list"), what: "crt-list" },
  ]);
  const answer = await api.command(command);
  const lines: CrtListLine[] = [];
  for (const text of answer.split("\n")) {
    if (text === "" || text.startsWith("#")) continue;
    // 2.6 prints a NUL after the last option inside the brackets (`[alpn h2\0]`): drop it.
    // eslint-disable-next-line no-control-regex
    const clean = text.replace(/\u0000/g, "");
    const match = /^(\S+):(\d+)(?: (.*))?$/.exec(clean);
    if (match === null) throw new RuntimeCommandError(command, answer, `unexpected line: ${clean}`);
    const [, certificate = "", line = "", rest = ""] = match;
    lines.push({ certificate, line: Number(line), rest });
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// Process information

/** `show info` as key → value (`Pid`, `Uptime_sec`, `CurrConns`, ...). */
export async function showInfo(api: RuntimeApi): Promise<Record<string, string>> {
  const answer = await api.command("show info");
  return parseInfo(answer);
}

export function parseInfo(answer: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const line of answer.split("\n")) {
    const colon = line.indexOf(": ");
    if (colon > 0) info[line.slice(0, colon)] = line.slice(colon + 2);
  }
  return info;
}

function expectSilent(command: string, answer: string): void {
  if (answer !== "") throw new RuntimeCommandError(command, answer);
}
