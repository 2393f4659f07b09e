// Processes of the mini-cluster: started in their own process group with output appended to a log
// file, identified by pid AND start time (so that a recycled pid is never signalled), stopped with
// SIGTERM then SIGKILL to their process group.
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

/** A process we started: enough to find it again from another process (the `stop` command). */
export interface ProcessRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks since boot); distinguishes a recycled pid. */
  startTime: number;
}

/** Start time of a live, non-zombie process, or undefined. */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const start = Number(fields[19]);
  if (state === "Z" || state === "X" || !Number.isFinite(start)) return undefined;
  return start;
}

export function isAlive(record: ProcessRecord): boolean {
  return processStartTime(record.pid) === record.startTime;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Starts `file args` in a new process group (detached, so it outlives this process and a Ctrl-C in
 * the terminal does not reach it), stdout and stderr appended to `logFile`.
 */
export function startProcess(
  name: string,
  file: string,
  args: readonly string[],
  logFile: string,
  options: StartOptions = {},
): ProcessRecord {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(file, [...args], {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: options.env ?? process.env,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    });
    child.on("error", () => {
      /* reported through isAlive/the log */
    });
    child.unref();
    if (child.pid === undefined) throw new Error(`${name}: could not start ${file}`);
    const startTime = processStartTime(child.pid);
    if (startTime === undefined) throw new Error(`${name}: ${file} exited immediately (see ${logFile})`);
    return { name, pid: child.pid, startTime };
  } finally {
    closeSync(fd);
  }
}

/**
 * Stops a recorded process: SIGTERM to its process group, SIGKILL after `graceMs`. Returns how it
 * ended ("gone" when it was not running any more).
 */
export async function stopProcess(
  record: ProcessRecord,
  graceMs = 10_000,
): Promise<"gone" | "terminated" | "killed"> {
  if (!isAlive(record)) return "gone";
  signalGroup(record, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(record)) return "terminated";
    await sleep(50);
  }
  signalGroup(record, "SIGKILL");
  for (let i = 0; i < 100 && isAlive(record); i++) await sleep(50);
  return "killed";
}

function signalGroup(record: ProcessRecord, signal: NodeJS.Signals): void {
  if (!isAlive(record)) return;
  try {
    process.kill(-record.pid, signal); // the group it leads (we started it with detached: true)
  } catch {
    try {
      process.kill(record.pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Runs a command to completion; resolves with stdout, rejects with stderr in the message. */
export function run(
  file: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      {
        timeout: options.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        ...(options.env !== undefined ? { env: options.env } : {}),
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      },
      (error, stdout, stderr) => {
        if (error !== null) {
          const detail = stderr.trim() || stdout.trim() || error.message;
          reject(new Error(`${file} ${args.join(" ")}: ${detail}`, { cause: error }));
        } else {
          resolve(stdout);
        }
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Thrown by a waitFor check: stop waiting, this will not get better. */
export class Fatal extends Error {}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or times out. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof Fatal) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
