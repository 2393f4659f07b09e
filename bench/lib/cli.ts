// Shared command-line handling: every module is runnable alone (`node bench/<module>.ts [--quick]`).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cleanupAll, installCleanup } from "./proc.ts";
import { ensureTools } from "./tools.ts";

export interface CommonOptions {
  quick: boolean;
  log: (line: string) => void;
}

export function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(url));
  } catch {
    return false;
  }
}

export function parseCommon(argv: readonly string[]): { quick: boolean; only?: string[]; out?: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: { quick: { type: "boolean" }, only: { type: "string" }, out: { type: "string" } },
    strict: true,
  });
  return {
    quick: values.quick ?? false,
    ...(values.only !== undefined ? { only: values.only.split(",").map((s) => s.trim()) } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
  };
}

/** Runs one module standalone: tools, cleanup, the run, JSON and Markdown on stdout. */
export async function runStandalone<R>(
  run: (options: CommonOptions) => Promise<R>,
  markdown: (result: R) => string,
): Promise<void> {
  installCleanup();
  const { quick } = parseCommon(process.argv.slice(2));
  let code = 0;
  try {
    ensureTools(log);
    const result = await run({ quick, log });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n\n${markdown(result)}\n`);
  } catch (err) {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    code = 1;
  } finally {
    await cleanupAll();
  }
  process.exit(code);
}
