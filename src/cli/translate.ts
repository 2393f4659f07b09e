// `gatehouse translate`: loads resources from YAML, runs the translator once and prints
// `{statuses, ir}` as JSON. Input problems go to stderr, one line each; the command fails (exit 1)
// only when there is nothing at all to translate. The IR is printed without private keys: each
// listener certificate shows `keySha256` (the key's fingerprint) instead of `keyPem`, so the output
// can be kept as a CI artefact or pasted into an issue.
import { parseArgs } from "node:util";
import { redactIR, redactText } from "../admin/redact.ts";
import { GatehouseError, LoadError, UsageError } from "../errors.ts";
import { loadSnapshot, type SnapshotLoadResult } from "../resources/load.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../translate/index.ts";
import type { CliIO, Command } from "./main.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";

const USAGE = `Usage: gatehouse translate --config PATH [--controller-name NAME] [--now RFC3339]

Translates Gateway API resources read from YAML into the statuses Gatehouse would write and the
data-plane IR, printed as JSON ({"statuses": [...], "ir": {...}}) on stdout. Private keys of
listener certificates are never printed: the IR shows their SHA-256 fingerprint (keySha256).

Flags:
  -c, --config PATH        A YAML file, or a directory searched recursively for *.yaml and *.yml
                           files (hidden files and directories are skipped). Required.
      --controller-name NAME
                           The GatewayClass controllerName to answer to
                           (default ${DEFAULT_CONTROLLER_NAME}).
      --now RFC3339        The time written as lastTransitionTime of conditions, e.g.
                           2025-01-01T00:00:00Z (default: the current time).
  -h, --help               Show this help.

Problems in the input (YAML syntax, schema violations, duplicates) are printed on stderr, one per
line, and the objects concerned are left out; the rest is still translated (exit 0). The exit code
is 1 only when nothing could be translated: the path does not exist or holds no valid object.
`;

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Loads `--config PATH` for a one-shot command (`translate`, `explain`): an unreadable path is a
 * GatehouseError naming the flag; the input's warnings and errors are printed on stderr, one line
 * each, redacted.
 */
export async function loadConfig(path: string, io: CliIO): Promise<SnapshotLoadResult> {
  let loaded: SnapshotLoadResult;
  try {
    loaded = await loadSnapshot(path);
  } catch (error) {
    if (error instanceof LoadError)
      throw new GatehouseError(`cannot read --config ${error.message}`, { cause: error });
    throw error;
  }
  for (const warning of loaded.warnings) io.stderr(`warning: ${redactText(warning)}\n`);
  for (const error of loaded.errors) io.stderr(`error: ${redactText(error.message)}\n`);
  return loaded;
}

/** One full translation of loaded input, with HAProxy's limits as the rule validators. */
export function translateOnce(
  loaded: SnapshotLoadResult,
  controllerName: string,
  now: string,
): ReturnType<typeof translate> {
  return translate(loaded.snapshot, { controllerName, now, validators: haproxyValidators });
}

/** The current time as Kubernetes writes it (RFC 3339, whole seconds, UTC). */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z");
}

export const translateCommand: Command = {
  name: "translate",
  summary: "Translate resources from YAML files to statuses and data-plane IR (JSON)",
  usage: USAGE,
  run: runTranslate,
};

async function runTranslate(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: "string", short: "c" },
      "controller-name": { type: "string" },
      now: { type: "string" },
    },
    strict: true,
    allowPositionals: false,
  });
  const path = values.config;
  if (path === undefined || path === "") throw new UsageError("--config PATH is required");
  const controllerName = values["controller-name"] ?? DEFAULT_CONTROLLER_NAME;
  if (controllerName === "") throw new UsageError("--controller-name must not be empty");
  const now = values.now ?? formatTime(io.now());
  if (!RFC3339.test(now) || Number.isNaN(Date.parse(now))) {
    throw new UsageError(`--now must be an RFC 3339 time such as 2025-01-01T00:00:00Z, not "${now}"`);
  }

  const loaded = await loadConfig(path, io);
  if (loaded.objects.length === 0) {
    const why =
      loaded.errors.length === 0
        ? "no objects found"
        : `no valid objects (${loaded.errors.length} errors above)`;
    throw new GatehouseError(`nothing to translate in ${path}: ${why}`);
  }

  const { statuses, ir } = translateOnce(loaded, controllerName, now);
  io.stdout(`${redactText(JSON.stringify({ statuses, ir: redactIR(ir) }, null, 2))}\n`);
  return 0;
}
