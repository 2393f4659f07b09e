// A stale HAProxy of a state directory: one left by an earlier Gatehouse that died without stopping
// it (with the parent-death signal in place this only happens while it is still draining, or when
// `setpriv` was missing). The data plane stops with the control plane, so the next Gatehouse on the
// directory (holding its lock: no live Gatehouse owns that HAProxy) stops it before starting its own.
//
// The master writes its pid to `<stateDir>/haproxy.pid` (`-p`). A pid file alone could name an
// unrelated process that reused the pid, so the process must also be an haproxy whose command line
// names this directory's master socket.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** What stopStaleHAProxy needs of the host's processes. */
export interface ProcessTable {
  /** The command line of `pid`, or undefined when there is no such process (or only its zombie). */
  commandLine(pid: number): Promise<string[] | undefined>;
  /** Sends `signal`; false when the process is gone. */
  signal(pid: number, signal: NodeJS.Signals): boolean;
}

/** /proc and process.kill. */
export const linuxProcessTable: ProcessTable = {
  async commandLine(pid) {
    try {
      const raw = await readFile(`/proc/${pid}/cmdline`, "utf8");
      const args = raw.split("\0").filter((arg) => arg !== "");
      return args.length === 0 ? undefined : args; // (a zombie has none: it is gone)
    } catch {
      return undefined;
    }
  },
  signal(pid, signal) {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  },
};

export interface StaleHAProxy {
  pid: number;
  /** How it ended: it left after SIGTERM, or had to be killed. */
  stoppedBy: "SIGTERM" | "SIGKILL";
}

/**
 * Stops the HAProxy master named by `pidFile` if it is this state directory's (its command line
 * has `masterSocket`): SIGTERM (hard stop of the master and its workers), SIGKILL after
 * `killAfterMs`. Returns what it stopped, or undefined when there was nothing to stop.
 */
export async function stopStaleHAProxy(
  pidFile: string,
  masterSocket: string,
  options: { processes?: ProcessTable; killAfterMs?: number } = {},
): Promise<StaleHAProxy | undefined> {
  const processes = options.processes ?? linuxProcessTable;
  let text: string;
  try {
    text = await readFile(pidFile, "utf8");
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const args = await processes.commandLine(pid);
  if (args === undefined || !isMasterOf(args, masterSocket)) return undefined;
  if (!processes.signal(pid, "SIGTERM")) return undefined;
  const deadline = Date.now() + (options.killAfterMs ?? 3_000);
  while (Date.now() < deadline) {
    if ((await processes.commandLine(pid)) === undefined) return { pid, stoppedBy: "SIGTERM" };
    await sleep(20);
  }
  processes.signal(pid, "SIGKILL");
  while ((await processes.commandLine(pid)) !== undefined) await sleep(20);
  return { pid, stoppedBy: "SIGKILL" };
}

/** An haproxy command line whose master socket (`-S <path>[,options]`) is `masterSocket`. */
export function isMasterOf(args: readonly string[], masterSocket: string): boolean {
  const program = args[0];
  if (program === undefined || !basename(program).startsWith("haproxy")) return false;
  return args.some((arg, i) => args[i - 1] === "-S" && arg.split(",")[0] === masterSocket);
}
