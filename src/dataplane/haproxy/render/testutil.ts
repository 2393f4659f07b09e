// Test helpers: validate a rendered configuration with the real `haproxy -c`, and re-tokenize a
// configuration the way HAProxy's line parser does (to prove no resource string added a word,
// a directive or a section).
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { IR, IRBackend, IRHTTPListener, IRHTTPSListener, IRVirtualHost } from "../../../ir/types.ts";
import { render } from "./index.ts";
import type { RenderOptions } from "./model.ts";

/**
 * An IR with one Gateway (`default/gw`) and one listener: HTTP on port 80 named `http` unless
 * `listener` says otherwise.
 */
/** Fields of the test listener to override (an HTTP listener by default, or HTTPS with `tls`). */
export type ListenerOverrides = Partial<Omit<IRHTTPListener, "protocol">> &
  Partial<Omit<IRHTTPSListener, "protocol">> & { protocol?: "HTTP" | "HTTPS" };

export function gatewayIR(
  virtualHosts: IRVirtualHost[],
  backends: IRBackend[],
  listener: ListenerOverrides = {},
  addresses: string[] = [],
): IR {
  return {
    gateways: [
      {
        id: "default/gw",
        namespace: "default",
        name: "gw",
        gatewayClassName: "gatehouse",
        addresses,
        listeners: [
          {
            id: "default/gw/http",
            name: "http",
            port: 80,
            protocol: "HTTP",
            virtualHosts,
            ...listener,
          },
        ],
      },
    ],
    backends,
  };
}

export const GOLDEN_OPTIONS: RenderOptions = {
  stateDir: "/var/lib/gatehouse",
  runtimeSocket: "/run/gatehouse/haproxy.sock",
  serverSlots: 4,
  hardStopAfter: "30s",
  // Two spares (gh_spare_1, gh_spare_2) in every configuration with an HTTP listener.
  spareBackends: 2,
};

let available: boolean | undefined;

export function haproxyAvailable(): boolean {
  available ??= spawnSync("haproxy", ["-v"], { encoding: "utf8" }).status === 0;
  return available;
}

/** Renders `ir` into a fresh temporary stateDir and runs `haproxy -c` on it. */
export function haproxyCheck(
  ir: IR,
  options: Partial<RenderOptions> = {},
): { ok: boolean; output: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "gh-render-"));
  try {
    const rendered = render(ir, {
      ...GOLDEN_OPTIONS,
      ...options,
      stateDir: dir,
      runtimeSocket: join(dir, "admin.sock"),
    });
    for (const [rel, content] of Object.entries(rendered.files)) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), content);
    }
    mkdirSync(join(dir, "sock"), { recursive: true });
    const cfg = join(dir, "haproxy.cfg");
    writeFileSync(cfg, rendered.config);
    const result = spawnSync("haproxy", ["-c", "-f", cfg], { encoding: "utf8" });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`, config: rendered.config };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Directive {
  /** Header of the enclosing section ("" before the first one). */
  section: string;
  words: string[];
}

/**
 * Splits a configuration into directives and words following HAProxy's parser (configuration.txt
 * §2.2): blanks separate words; `#` outside quotes starts a comment; `\` escapes outside quotes and
 * inside double quotes; single quotes are literal; `$VAR` expands only inside double quotes (kept
 * verbatim here and reported by `expansions`).
 */
export function tokenize(config: string): { directives: Directive[]; expansions: string[] } {
  const directives: Directive[] = [];
  const expansions: string[] = [];
  let section = "";
  for (const raw of config.split("\n")) {
    const words: string[] = [];
    let current: string | undefined;
    let quote: "'" | '"' | undefined;
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i] ?? "";
      if (quote === "'") {
        if (c === "'") quote = undefined;
        else current = (current ?? "") + c;
        continue;
      }
      if (c === "\\" && i + 1 < raw.length) {
        const next = raw[++i] ?? "";
        const map: Record<string, string> = { n: "\n", r: "\r", t: "\t" };
        current = (current ?? "") + (map[next] ?? next);
        continue;
      }
      if (quote === '"') {
        if (c === '"') quote = undefined;
        else {
          if (c === "$") expansions.push(raw);
          current = (current ?? "") + c;
        }
        continue;
      }
      if (c === "'" || c === '"') {
        quote = c;
        current ??= "";
        continue;
      }
      if (c === "#") break;
      if (c === " " || c === "\t") {
        if (current !== undefined) words.push(current);
        current = undefined;
        continue;
      }
      current = (current ?? "") + c;
    }
    if (quote !== undefined) throw new Error(`unterminated quote in: ${raw}`);
    if (current !== undefined) words.push(current);
    if (words.length === 0) continue;
    if (!raw.startsWith(" ") && !raw.startsWith("\t")) {
      section = words.join(" ");
      continue;
    }
    directives.push({ section, words });
  }
  return { directives, expansions };
}
