// Gatehouse's version: the `version` of the package.json at the root of the installation (the CLI's
// --version, the admin server's /status).
import { readFileSync } from "node:fs";

let cached: string | undefined;

export function gatehouseVersion(): string {
  if (cached !== undefined) return cached;
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  const { version } = JSON.parse(text) as { version?: unknown };
  cached = typeof version === "string" ? version : "unknown";
  return cached;
}
