// The gatehouse command line: `gatehouse <command> [flags]`. Each subcommand is a Command in the
// registry below; this module only dispatches, prints help and maps failures to exit codes:
//   0 success, 1 failure (a GatehouseError or a bug), 2 usage error (usage printed on stderr).
import { GatehouseError, UsageError } from "../errors.ts";
import { gatehouseVersion } from "../version.ts";

export { gatehouseVersion };

/** What a command may touch of the outside world; injectable for tests. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The clock. The CLI is the edge: the only place that reads the current time. */
  now(): Date;
}

export interface Command {
  /** The subcommand word, e.g. `translate`. */
  readonly name: string;
  /** One line for the command overview. */
  readonly summary: string;
  /** Full help text (`gatehouse <name> --help`), ending with a newline. */
  readonly usage: string;
  /**
   * Runs the command with the arguments after its name and returns the exit code. Throws UsageError
   * (or lets node:util parseArgs throw) for a bad command line, GatehouseError for a failure.
   */
  run(args: readonly string[], io: CliIO): Promise<number>;
}

/**
 * A command known by name and summary, its module loaded only when it runs or its help is asked for:
 * `gatehouse translate` then does not load the Kubernetes client and the serve machinery (about 1.5 s
 * of module loading on a busy two-core machine). main.test.ts checks these summaries against the
 * commands' own.
 */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

/** Every subcommand, in the order the overview lists them. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "serve",
    summary: "Run the gateway standalone on YAML files, with HAProxy as the data plane",
    load: async () => (await import("./serve.ts")).serveCommand,
  },
  {
    name: "controller",
    summary: "Run as a Kubernetes Gateway API controller (API server → HAProxy, status written back)",
    load: async () => (await import("./controller.ts")).controllerCommand,
  },
  {
    name: "dataplane",
    summary: "Run one Gateway's data plane, configured by the controller (--infrastructure kubernetes)",
    load: async () => (await import("./dataplane.ts")).dataplaneCommand,
  },
  {
    name: "translate",
    summary: "Translate resources from YAML files to statuses and data-plane IR (JSON)",
    load: async () => (await import("./translate.ts")).translateCommand,
  },
  {
    name: "explain",
    summary: "Explain which listener and rule serve a request or a route, and why not",
    load: async () => (await import("./explain.ts")).explainCommand,
  },
];

export const processIO: CliIO = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  now: () => new Date(),
};

export function overview(commands: readonly CommandEntry[] = COMMANDS): string {
  const width = Math.max(...commands.map((command) => command.name.length));
  const lines = commands.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`);
  return [
    "Usage: gatehouse <command> [flags]",
    "",
    "Gatehouse: a Kubernetes Gateway API implementation on HAProxy.",
    "",
    "Commands:",
    ...lines,
    "",
    "Run `gatehouse <command> --help` for the flags of a command, `gatehouse --version` for its version.",
    "",
  ].join("\n");
}

const HELP = new Set(["-h", "--help"]);
const VERSION = new Set(["-V", "--version"]);

/** Runs the CLI with `argv` (without the node and script paths) and returns the exit code. */
export async function main(
  argv: readonly string[],
  io: CliIO = processIO,
  commands: readonly CommandEntry[] = COMMANDS,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    io.stderr(overview(commands));
    return 2;
  }
  if (VERSION.has(first) || first === "version") {
    io.stdout(`gatehouse ${gatehouseVersion()}\n`);
    return 0;
  }
  if (HELP.has(first) || first === "help") {
    const topic = first === "help" ? rest[0] : undefined;
    if (topic === undefined) {
      io.stdout(overview(commands));
      return 0;
    }
    const entry = commands.find((candidate) => candidate.name === topic);
    if (entry === undefined) return usageError(io, `unknown command "${topic}"`, overview(commands));
    io.stdout((await entry.load()).usage);
    return 0;
  }
  const entry = commands.find((candidate) => candidate.name === first);
  if (entry === undefined) {
    const what = first.startsWith("-") ? `unknown flag "${first}"` : `unknown command "${first}"`;
    return usageError(io, what, overview(commands));
  }
  const command = await entry.load();
  const flags = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (flags.some((arg) => HELP.has(arg))) {
    io.stdout(command.usage);
    return 0;
  }
  if (flags.some((arg) => VERSION.has(arg))) {
    io.stdout(`gatehouse ${gatehouseVersion()}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    const prefix = `gatehouse ${command.name}`;
    if (error instanceof UsageError || isParseArgsError(error)) {
      return usageError(io, error.message, command.usage, prefix);
    }
    if (error instanceof GatehouseError) {
      io.stderr(`${prefix}: ${error.message}\n`);
      return 1;
    }
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    io.stderr(`${prefix}: internal error: ${detail}\n`);
    return 1;
  }
}

function usageError(io: CliIO, message: string, usage: string, prefix = "gatehouse"): number {
  io.stderr(`${prefix}: ${message}\n\n${usage}`);
  return 2;
}

/** node:util parseArgs rejects bad command lines with TypeErrors coded ERR_PARSE_ARGS_*. */
function isParseArgsError(error: unknown): error is Error {
  if (!(error instanceof Error) || !("code" in error)) return false;
  return typeof error.code === "string" && error.code.startsWith("ERR_PARSE_ARGS_");
}
