// File-system change notification behind a small interface, so the file provider's coalescing logic
// can be driven by a fake in tests. The real implementation is node:fs `watch`.
//
// On Linux, Node 24 implements `recursive: true` in JavaScript (lib/internal/fs/recursive_watch.js):
// one inotify watch per file and directory, new subdirectories (even `mkdir -p a/b/c`) are picked up
// as they appear, removed ones are dropped. It does NOT survive the watched directory itself being
// removed or replaced (the watch stays on the old inode and goes silent), and watching a single file
// loses it when an editor replaces the file by renaming over it. The file provider therefore also
// watches the parent directory of its path and re-establishes the watches when the path is replaced.
import { watch, type FSWatcher } from "node:fs";
import { lstat, readdir } from "node:fs/promises";
import { join, relative } from "node:path";

export type WatchEventType = "rename" | "change";

export interface WatchEvent {
  /** `rename`: an entry appeared, disappeared or was replaced; `change`: contents changed. */
  type: WatchEventType;
  /** Path relative to the watched directory, when the platform reports it ("" = the watched path itself). */
  filename: string | null;
}

export interface WatchRequest {
  /** Absolute path of the file or directory to watch. */
  path: string;
  /** Also report changes anywhere below `path`. */
  recursive: boolean;
}

export interface WatchHandle {
  close(): void;
  /**
   * Resolves once everything that exists below the path is watched (a tree watch sets up its
   * subdirectories' watches asynchronously); changes made after that are reported. Absent: at once.
   */
  readonly ready?: Promise<void>;
}

/**
 * Starts watching. May throw synchronously (the path does not exist, too many watches); afterwards,
 * failures arrive through `onError`, after which no more events are reported.
 */
export type WatchFactory = (
  request: WatchRequest,
  onEvent: (event: WatchEvent) => void,
  onError: (error: Error) => void,
) => WatchHandle;

/** The real thing: node:fs `watch` (persistent, utf8 file names); recursive via treeWatch. */
export const nodeWatch: WatchFactory = (request, onEvent, onError) => {
  if (request.recursive) return treeWatch(request.path, onEvent, onError);
  const watcher = watch(request.path, { persistent: true, encoding: "utf8" }, (type, filename) => {
    onEvent({ type: type === "rename" ? "rename" : "change", filename });
  });
  watcher.on("error", onError);
  return { close: () => watcher.close() };
};

/**
 * Watches a directory tree with one non-recursive watch per DIRECTORY. Node's own `recursive: true`
 * on Linux keeps one inotify watch per file and re-reads the whole tree synchronously on every
 * event: writing 5,000 files blocked the event loop for about a minute (see bench/README.md). Here a
 * `rename` event only stats the one entry concerned, asynchronously, to start watching a new
 * subdirectory (walking it, since `mkdir -p a/b/c` reports only `a`) or to stop watching a removed one.
 *
 * A `rename` of a directory always re-establishes its watches: the watch follows the inode, so a
 * directory moved away and another created under the same name (or moved in) would otherwise stay
 * unwatched while the old watch reports the moved one under the old name. Files found by such a walk
 * are reported as changed, as they may have changed before their watch existed. Entries are settled
 * one at a time, in event order.
 */
export function treeWatch(
  root: string,
  onEvent: (event: WatchEvent) => void,
  onError: (error: Error) => void,
): WatchHandle {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  let settling = Promise.resolve();
  const report = (dir: string, type: WatchEventType, name: string | null): void => {
    const filename = name === null ? null : relative(root, join(dir, name));
    onEvent({ type, filename });
  };
  /** Watching stops working as a whole: reported once (the caller then re-establishes or retries). */
  let failed = false;
  const fail = (error: unknown): void => {
    if (failed || closed) return;
    failed = true;
    onError(error instanceof Error ? error : new Error(String(error)));
  };
  /** Watches `dir`; false when it cannot be (gone already, or watching failed as a whole). */
  const add = (dir: string): boolean => {
    if (closed) return false;
    if (watchers.has(dir)) return true;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: true, encoding: "utf8" }, (type, name) => {
        const kind: WatchEventType = type === "rename" ? "rename" : "change";
        report(dir, kind, name);
        if (kind === "rename" && name !== null) {
          const path = join(dir, name);
          settling = settling.then(() => settle(path)).catch(fail);
        }
      });
    } catch (error) {
      if (dir === root) throw error;
      // Gone again before it could be watched: its removal is reported by its parent. Anything
      // else (too many watches) means part of the tree would go unwatched.
      if (!isCode(error, "ENOENT", "ENOTDIR")) fail(error);
      return false;
    }
    watcher.on("error", (error) => {
      if (dir === root) fail(error);
      else drop(dir);
    });
    watchers.set(dir, watcher);
    return true;
  };
  const drop = (dir: string): void => {
    for (const [path, watcher] of watchers) {
      if (path === dir || path.startsWith(`${dir}/`)) {
        watcher.close();
        watchers.delete(path);
      }
    }
  };
  /**
   * An entry appeared, vanished or was replaced: watch it (and what is below) if it is a directory.
   * A symbolic link is not followed (lstat), like in `walk` (a directory entry's own kind): a link
   * to `.` or `..` would otherwise add a watch per path through the loop. Changes seen through links
   * are the index's business (with links in the tree, every change is a full load).
   */
  const settle = async (path: string): Promise<void> => {
    let directory: boolean;
    try {
      directory = (await lstat(path)).isDirectory();
    } catch {
      directory = false;
    }
    drop(path);
    if (directory) await walk(path, true);
  };
  const walk = async (dir: string, announce: boolean): Promise<void> => {
    if (!add(dir)) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) {
        // Files created before the new directory's watch existed would go unnoticed.
        if (announce) report(dir, "rename", entry.name);
        continue;
      }
      await walk(join(dir, entry.name), announce);
    }
  };
  add(root); // synchronous: throws like fs.watch when the root cannot be watched
  return {
    ready: walk(root, false).catch(fail),
    close: () => {
      closed = true;
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}

function isCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === "object" && error !== null && "code" in error && codes.includes(String(error.code));
}
