// Who may read the admin API. `/healthz` and `/ready` are always open (probes carry no
// credentials); every other path needs `Authorization: Bearer <token>` once a token is configured
// (`--admin-token-file`). Binding beyond loopback without a token is refused unless the operator
// opts out explicitly (`--admin-insecure-no-auth`), which is logged loudly at start.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { isIP } from "node:net";
import { GatehouseError } from "../errors.ts";

/** Paths answered without a token: what probes and load balancers ask. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/healthz", "/ready"]);

/** Shortest token accepted from a token file (`openssl rand -hex 32` gives 64 characters). */
export const MIN_TOKEN_LENGTH = 16;

/** A token file is missing, unreadable, empty or too short. */
export class AdminTokenError extends GatehouseError {}

/** True for addresses only this host can reach: 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || /^(?:0*:)*:?0*1$/.test(h) || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Does `authorization` (the request header) carry `token`? Compared in constant time: both sides
 * are hashed first, so neither the content nor the length of the token leaks through timing.
 */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? "");
  const given = match?.[1] ?? "";
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b) && given !== "";
}

/** Reads a token file: the first line, trimmed; AdminTokenError when unusable. */
export function readTokenFile(path: string, read: (path: string) => string = readText): string {
  let text: string;
  try {
    text = read(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new AdminTokenError(`cannot read --admin-token-file ${path}: ${why}`, { cause: error });
  }
  const token = (text.split(/\r?\n/).find((line) => line.trim() !== "") ?? "").trim();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new AdminTokenError(
      `--admin-token-file ${path} holds ${token === "" ? "no token" : `a token of ${token.length} characters`}; ` +
        `write one of at least ${MIN_TOKEN_LENGTH} (e.g. \`openssl rand -hex 32 > ${path}\`)`,
    );
  }
  return token;
}

function readText(path: string): string {
  return readFileSync(path, "utf8");
}

/**
 * Watches a token file (polling its metadata, which also follows the symlink swaps of a
 * Kubernetes Secret volume) and calls `onToken` with each new valid token; a file that becomes
 * unusable keeps the previous token and is reported through `onError`. Returns a stop function.
 */
export function watchTokenFile(
  path: string,
  onToken: (token: string) => void,
  onError: (error: AdminTokenError) => void,
  intervalMs = 2000,
): () => void {
  const listener = (): void => {
    try {
      onToken(readTokenFile(path));
    } catch (error) {
      if (error instanceof AdminTokenError) onError(error);
      else throw error;
    }
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(path, listener);
}
