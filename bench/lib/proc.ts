// Child processes and temporary directories of a bench run, and their cleanup.
//
// Every child is started in its own process group (detached), so that a child's own children
// (HAProxy under `gatehouse serve`, nginx workers) can be ended with it, by the group id of a process
// we started. Cleanup runs on normal exit, on failure and on SIGINT/SIGTERM; a synchronous last
// resort on `exit` SIGKILLs whatever is left and removes the temporary directories.
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** stdout+stderr of the process. */
  readonly logFile: string;
  /** Resolves with the exit code (or the signal name) when the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the process is still running. */
  alive(): boolean;
}

export interface SpawnOptions {
  /** CPU list for `taskset -c` (e.g. "1"); undefined = no pinning. */
  cpus?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout/stderr go (default `<name>.log` in a fresh temporary directory). */
  logFile?: string;
}

const procs = new Set<Proc>();
const dirs = new Set<string>();
let installed = false;
let shuttingDown = false;

/** Creates a temporary directory that is removed at cleanup. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gatehouse-bench-${label}-`));
  dirs.add(dir);
  return dir;
}

/** Removes a temporary directory now (it is also forgotten by the final cleanup). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Starts `command args` (pinned with taskset when `cpus` is set) in its own process group. */
export function start(
  name: string,
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Proc {
  installCleanup();
  const logFile = options.logFile ?? join(tempDir("log"), `${name}.log`);
  const fd = openSync(logFile, "a");
  const [cmd, argv] =
    options.cpus === undefined ? [command, [...args]] : ["taskset", ["-c", options.cpus, command, ...args]];
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: options.env ?? process.env,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      resolve(code ?? signal ?? "unknown");
    });
  });
  const proc: Proc = { name, pid, child, logFile, exited, alive: () => running };
  procs.add(proc);
  return proc;
}

/** Last lines of a process's log (for error messages). */
export function tail(proc: Proc, lines = 15): string {
  try {
    return readFileSync(proc.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Stops a process: `signal` to the process itself, up to `graceMs` for it to exit (Gatehouse stops
 * its HAProxy then), then SIGKILL to its whole process group if anything of it is left.
 */
export async function stop(
  proc: Proc,
  options: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<void> {
  if (proc.alive()) {
    try {
      process.kill(proc.pid, options.signal ?? "SIGTERM");
    } catch {
      // already gone
    }
    await Promise.race([proc.exited, sleep(options.graceMs ?? 8000)]);
  }
  for (let i = 0; i < 50 && groupAlive(proc.pid); i++) {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      break;
    }
    await sleep(20);
  }
  procs.delete(proc);
}

/** Stops every process still running (newest first) and removes every temporary directory. */
export async function cleanupAll(): Promise<void> {
  for (const proc of [...procs].reverse()) await stop(proc, { graceMs: 5000 });
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

function lastResort(): void {
  for (const proc of procs) {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  procs.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/** Installs the signal and exit handlers (idempotent). */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  const onSignal = (signal: NodeJS.Signals, code: number) => {
    if (shuttingDown) {
      lastResort();
      process.exit(code);
    }
    shuttingDown = true;
    process.stderr.write(`\nbench: ${signal}, cleaning up...\n`);
    const timer = setTimeout(() => {
      lastResort();
      process.exit(code);
    }, 15_000);
    void cleanupAll().finally(() => {
      clearTimeout(timer);
      process.exit(code);
    });
  };
  process.on("SIGINT", () => onSignal("SIGINT", 130));
  process.on("SIGTERM", () => onSignal("SIGTERM", 143));
  process.on("exit", lastResort);
}

/** Runs a command to completion (bounded), returning its output. */
export function runSync(
  command: string,
  args: readonly string[],
  timeoutMs = 60_000,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, [...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.error !== undefined ? null : r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export { sleep };
