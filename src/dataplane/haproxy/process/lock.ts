// The state directory lock: one Gatehouse per state directory. Two instances on one directory would
// share HAProxy's master socket (the second reloading the first one's HAProxy) and each report
// status about a configuration the other may have replaced.
//
// The lock is a listening unix socket in Linux's abstract namespace, named after the directory's
// identity (device and inode, so symlinks and bind mounts of one directory get one lock). Binding it
// is atomic and the kernel releases it when the process dies, however it dies (kill -9 included):
// there is no stale lock to detect, unlike a pid file. The holder answers a connection with who it
// is, so the refused instance can name it. Limit: abstract sockets are per network namespace, so
// instances in different network namespaces sharing a directory (an unusual setup) are not seen.
import { createHash } from "node:crypto";
import { lstat, mkdir, stat } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { dirname } from "node:path";
import { GatehouseError } from "../../../errors.ts";

/** What the holder of a lock says about itself. */
export interface LockHolder {
  pid: number;
  /** ISO time the lock was taken. */
  since: string;
  /** Free-form details (e.g. the admin address). */
  [key: string]: unknown;
}

/** The state directory is locked by another live Gatehouse. */
export class StateDirLockedError extends GatehouseError {
  readonly stateDir: string;
  /** Undefined when the holder did not say who it is in time. */
  readonly holder: LockHolder | undefined;
  constructor(stateDir: string, holder: LockHolder | undefined, options?: ErrorOptions) {
    const who =
      holder === undefined
        ? "another process"
        : `another Gatehouse (pid ${holder.pid}, since ${holder.since}${describeDetails(holder)})`;
    super(
      `the state directory ${stateDir} is in use by ${who}: stop that one, or give this one its own --state-dir`,
      options,
    );
    this.stateDir = stateDir;
    this.holder = holder;
  }
}

/** The state directory cannot be used (not a directory, someone else's, unreadable). */
export class StateDirError extends GatehouseError {
  readonly stateDir: string;
  constructor(stateDir: string, problem: string, options?: ErrorOptions) {
    super(`state directory ${stateDir}: ${problem}`, options);
    this.stateDir = stateDir;
  }
}

export interface StateDirLock {
  readonly stateDir: string;
  /** The abstract socket name (without the leading NUL). */
  readonly name: string;
  /** Releases the lock. Idempotent. */
  release(): Promise<void>;
}

/**
 * Creates `stateDir` if missing (mode 0700), checks it is a directory owned by this user, and locks
 * it for the life of this process (or until release()). Throws StateDirLockedError naming the
 * holder when another live process has it, StateDirError when the directory is unusable.
 */
export async function lockStateDir(
  stateDir: string,
  details: Record<string, unknown> = {},
): Promise<StateDirLock> {
  await prepareDir(stateDir);
  const identity = await stat(stateDir);
  const digest = createHash("sha256").update(`${identity.dev}:${identity.ino}`).digest("hex").slice(0, 32);
  const name = `gatehouse/state/${digest}`;
  const holder: LockHolder = { ...details, pid: process.pid, since: new Date().toISOString() };
  const server = createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.end(JSON.stringify(holder));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(`\0${name}`, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE")
      throw new StateDirLockedError(stateDir, await askHolder(name), { cause: error });
    throw new StateDirError(stateDir, `cannot take its lock: ${(error as Error).message}`, { cause: error });
  }
  // The lock never keeps the process alive on its own.
  server.unref();
  return { stateDir, name, release: () => close(server) };
}

/**
 * A directory only this user can write into: created with mode 0700 if missing; an existing one
 * must be a real directory (not a symlink) owned by this user that no one else can write.
 * For parents of per-instance state directories in shared places such as /tmp.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new StateDirError(dir, "is not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid)
    throw new StateDirError(dir, `belongs to uid ${info.uid}, not to this user (uid ${uid})`);
  if ((info.mode & 0o022) !== 0)
    throw new StateDirError(dir, `can be written by other users (mode ${(info.mode & 0o777).toString(8)})`);
}

async function prepareDir(stateDir: string): Promise<void> {
  try {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StateDirError(stateDir, `cannot create it: ${(error as Error).message}`, { cause: error });
  }
  const info = await stat(stateDir);
  if (!info.isDirectory()) throw new StateDirError(stateDir, "is not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid)
    throw new StateDirError(
      stateDir,
      `belongs to uid ${info.uid}, not to this user (uid ${uid}); pick another --state-dir (parent ${dirname(stateDir)})`,
    );
}

/** Asks the holder who it is (bounded: a holder that is stuck answers nothing). */
function askHolder(name: string): Promise<LockHolder | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const socket = connect(`\0${name}`);
    const done = (holder: LockHolder | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(holder);
    };
    const timer = setTimeout(() => done(undefined), 1_000);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("error", () => done(undefined));
    socket.on("end", () => done(parseHolder(text)));
  });
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null) return undefined;
    const holder = value as Record<string, unknown>;
    if (typeof holder["pid"] !== "number" || typeof holder["since"] !== "string") return undefined;
    return holder as LockHolder;
  } catch {
    return undefined;
  }
}

function describeDetails(holder: LockHolder): string {
  const parts = Object.entries(holder)
    .filter(([key, value]) => key !== "pid" && key !== "since" && typeof value === "string")
    .map(([key, value]) => `${key} ${String(value)}`);
  return parts.length === 0 ? "" : `, ${parts.join(", ")}`;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
