// Session persistence (GEP-1619, HTTPRoute/GRPCRoute rule `sessionPersistence`) in HAProxy: what a
// rule's backend variant carries (profile), the lines of that variant, its map entries, and the
// frontend's pin (which backendRef a session belongs to). See sessionLines for the design.
import { isIP } from "node:net";
import type { IRHTTPMatch, IREndpoint, IRSessionPersistence } from "../../../ir/types.ts";
import { arg, lf, word } from "./escape.ts";
import type { Profile, RenderContext } from "./model.ts";

export const MAP_SESSIONS = "sessions";
export const MAP_SESSION_KEYS = "session-keys";

/** The session token's name for an endpoint: hex of `address:port` (no `.`, the token separator). */
export function endpointKey(ep: IREndpoint): string {
  const address = isIP(ep.address) === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
  return Buffer.from(address).toString("hex");
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The persistence part of a rule's backend profile (`match`: the rule's match, for the cookie Path). */
export function sessionProfile(
  sp: IRSessionPersistence,
  match: IRHTTPMatch,
): Pick<Profile, "cookie" | "header"> {
  const maxLifeS = sp.absoluteTimeoutMs !== undefined ? seconds(sp.absoluteTimeoutMs) : undefined;
  if (sp.type === "Header")
    return { header: { name: sp.name, ...(maxLifeS !== undefined ? { maxLifeS } : {}) } };
  return {
    cookie: {
      name: sp.name,
      path: cookiePath(match.path),
      ...(maxLifeS !== undefined ? { maxLifeS } : {}),
      // A Permanent cookie's lifetime is the absolute timeout; a Session cookie has neither
      // Max-Age nor Expires (its absolute timeout is the expiry in its value).
      ...(maxLifeS !== undefined && sp.lifetime === "Permanent" ? { maxAgeS: maxLifeS } : {}),
    },
  };
}

/**
 * The cookie's `Path` for a rule's path match (GEP-1619 "Path"): the prefix or exact path as written
 * (without a trailing `/`); for a regular expression (matched whole, see routing.ts) its longest
 * literal prefix cut at a `/` (`/` when it has an alternation); `/` for a rule matching every path.
 * The path is cut before any segment holding a character a cookie attribute cannot carry (`;`,
 * blanks, controls): a shorter path still covers the rule's requests.
 */
export function cookiePath(path: IRHTTPMatch["path"]): string {
  let value = path.type === "RegularExpression" ? regexLiteralPrefix(path.value) : path.value;
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  const bad = value.search(/[;\s\x00-\x1f\x7f]/);
  if (bad >= 0) value = value.slice(0, value.lastIndexOf("/", bad) + 1);
  value = value.replace(/\/+$/, "");
  return value.startsWith("/") ? value : "/";
}

/** The literal text every match of `re` starts with, up to its last `/` ("" when unknown). */
function regexLiteralPrefix(re: string): string {
  if (re.includes("|")) return "";
  let prefix = "";
  let i = re.startsWith("^") ? 1 : 0;
  for (; i < re.length; i++) {
    const ch = re[i] ?? "";
    if (ch === "\\") {
      const next = re[i + 1] ?? "";
      // An escaped punctuation character is itself; `\d`, `\w`, ... are classes.
      if (next === "" || /[A-Za-z0-9]/.test(next)) break;
      prefix += next;
      i++;
    } else if ("^$.?*+()[]{}".includes(ch)) {
      // A quantifier makes the character before it optional.
      if ("?*{".includes(ch)) prefix = prefix.slice(0, -1);
      break;
    } else prefix += ch;
  }
  return prefix.slice(0, prefix.lastIndexOf("/") + 1);
}

/**
 * The frontend lines of rule `rid` that read the IRBackend tag of a live session into txn.gh_pin
 * (choiceLines then takes the backendRef the session belongs to, whatever the weights say). An
 * expired session pins nothing: the request is balanced by weight like a new one.
 */
export function pinLines(rid: string, sp: IRSessionPersistence): string[] {
  const presented = sp.type === "Cookie" ? `req.cook(${arg(sp.name)})` : `req.hdr(${arg(sp.name)})`;
  const rule = `{ var(txn.gh_rule) -m str ${rid} }`;
  if (sp.absoluteTimeoutMs === undefined)
    return [`http-request set-var(txn.gh_pin) ${word(`${presented},field(1,.)`)} if ${rule}`];
  return [
    `http-request set-var(txn.gh_now) date if ${rule}`,
    `http-request set-var(txn.gh_pin) ${word(`${presented},field(1,.)`)} if ${rule} { ${word(`${presented},field(3,.),sub(txn.gh_now)`)} -m int gt 0 }`,
  ];
}

/** The map entries of a persistent section `name`: its endpoints ↔ its slots (see sessionLines). */
export function addSessionEntries(
  ctx: RenderContext,
  name: string,
  tag: string,
  endpoints: ReadonlyArray<IREndpoint | undefined>,
  slots: number,
): void {
  for (const [i, ep] of endpoints.slice(0, slots).entries()) {
    if (ep === undefined) continue;
    ctx.map(MAP_SESSIONS).add(`${name}#${tag}.${endpointKey(ep)}`, `s${i + 1}`);
    ctx.map(MAP_SESSION_KEYS).add(`${name}#s${i + 1}`, endpointKey(ep));
  }
}

/**
 * Session persistence (GEP-1619), by header or by cookie. The session token is
 * `<tag>.<endpoint>[.<expiry>]`: the IRBackend (its tag, which the frontend's pin reads to pick the
 * backendRef), the endpoint (hex of `address:port`, never the server slot), and, with an absolute
 * timeout, the session's expiry (epoch seconds), fixed when the session starts. Two runtime-updated
 * maps translate between endpoints and this section's slots: sessions.map `<section>#<tag>.<endpoint>`
 * → slot (requests), session-keys.map `<section>#<slot>` → endpoint (responses). So a session survives
 * any endpoint change made through the runtime API, and a request presenting it goes to that endpoint
 * while the endpoint exists and is up and the session has not expired. Otherwise (endpoint gone,
 * server down: `use-server` ignores a server that is down; expired; forged; another backend's) the
 * request is balanced and the response starts a new session.
 *
 * Header: the response always carries the session header (the session presented, or the new one).
 * Cookie: only a new session sets the cookie (`Set-Cookie`, added next to the application's own):
 * `Path` the rule's path, `HttpOnly`, `SameSite=Lax`, `Secure` when the client came over TLS, and
 * `Max-Age` for a Permanent cookie (its lifetime is the absolute timeout, as the expiry in the value);
 * that response gets `Cache-Control: private` unless it is private or no-store already.
 */
export function sessionLines(ctx: RenderContext, profile: Profile, tag: string, slots: number): string[] {
  const c = profile.cookie;
  const h = profile.header;
  const maxLifeS = c?.maxLifeS ?? h?.maxLifeS;
  const presented = word(c !== undefined ? `req.cook(${arg(c.name)})` : `req.hdr(${arg(h?.name ?? "")})`);
  const sessions = ctx.mapPath(MAP_SESSIONS);
  const keys = ctx.mapPath(MAP_SESSION_KEYS);
  const lines = [
    `http-request set-var(txn.gh_hs) ${presented} if { ${presented} -m found }`,
    `http-request set-var-fmt(txn.gh_hkey) ${word("%[be_name]#%[var(txn.gh_hs),field(1,.)].%[var(txn.gh_hs),field(2,.)]")} if { var(txn.gh_hs),field(1,.) -m str ${tag} }`,
    `http-request set-var(txn.gh_hslot) var(txn.gh_hkey),map_str(${sessions}) if { var(txn.gh_hkey) -m found }`,
  ];
  const live = maxLifeS === undefined ? "" : ` ${LIVE}`;
  if (maxLifeS !== undefined) lines.push("http-request set-var(txn.gh_now) date");
  for (let n = 1; n <= slots; n++)
    lines.push(`use-server s${n} if { var(txn.gh_hslot) -m str s${n} }${live}`);
  // The session the request presented is kept when its server served it; otherwise a new one.
  lines.push("http-response set-var(txn.gh_srv) srv_name");
  lines.push(
    `http-response set-var(txn.gh_hk) var(txn.gh_hs) if { var(txn.gh_hslot),strcmp(txn.gh_srv) -m int eq 0 }${live}`,
  );
  if (h !== undefined)
    lines.push(
      `http-response set-header ${word(h.name)} ${word("%[var(txn.gh_hk)]")} if { var(txn.gh_hk) -m found }`,
    );
  lines.push(
    `http-response set-var(txn.gh_hep) ${word(`be_name,concat(#,txn.gh_srv),map_str(${keys})`)} if !{ var(txn.gh_hk) -m found }`,
  );
  const token = `${tag}.%[var(txn.gh_hep)]${maxLifeS === undefined ? "" : `.%[date(${maxLifeS})]`}`;
  if (h !== undefined)
    lines.push(`http-response set-header ${word(h.name)} ${word(token)} if { var(txn.gh_hep) -m found }`);
  if (c !== undefined) {
    const attributes = [`Path=${lf(c.path)}`, "HttpOnly", "SameSite=Lax"];
    if (c.maxAgeS !== undefined) attributes.push(`Max-Age=${c.maxAgeS}`);
    const cookie = `${lf(c.name)}=${token}; ${attributes.join("; ")}`;
    lines.push(
      `http-response add-header Set-Cookie ${word(cookie)} if { var(txn.gh_hep) -m found } !{ ssl_fc }`,
      `http-response add-header Set-Cookie ${word(`${cookie}; Secure`)} if { var(txn.gh_hep) -m found } { ssl_fc }`,
      // A shared cache must not hand this session to other clients (HAProxy's `nocache`).
      "http-response add-header Cache-Control private if { var(txn.gh_hep) -m found } !{ res.hdr(cache-control) -m sub -i private no-store }",
    );
  }
  return lines;
}

/** A session that has an expiry is alive until then (txn.gh_now: the request's date). */
const LIVE = "{ var(txn.gh_hs),field(3,.),sub(txn.gh_now) -m int gt 0 }";
