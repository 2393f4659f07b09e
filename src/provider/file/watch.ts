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
import { readdir, stat } from "node:fs/promises";
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
 */
export function treeWatch(
  root: string,
  onEvent: (event: WatchEvent) => void,
  onError: (error: Error) => void,
): WatchHandle {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  const report = (dir: string, type: WatchEventType, name: string | null): void => {
    const filename = name === null ? null : relative(root, join(dir, name));
    onEvent({ type, filename });
  };
  const add = (dir: string): void => {
    if (closed || watchers.has(dir)) return;
    const watcher = watch(dir, { persistent: true, encoding: "utf8" }, (type, name) => {
      const kind: WatchEventType = type === "rename" ? "rename" : "change";
      report(dir, kind, name);
      if (kind === "rename" && name !== null) void settle(join(dir, name));
    });
    watcher.on("error", (error) => {
      if (dir === root) onError(error);
      else drop(dir);
    });
    watchers.set(dir, watcher);
  };
  const drop = (dir: string): void => {
    for (const [path, watcher] of watchers) {
      if (path === dir || path.startsWith(`${dir}/`)) {
        watcher.close();
        watchers.delete(path);
      }
    }
  };
  /** An entry appeared or vanished: watch it (and what is below) if it is a directory. */
  const settle = async (path: string): Promise<void> => {
    try {
      if ((await stat(path)).isDirectory()) await walk(path, true);
      else drop(path);
    } catch {
      drop(path);
    }
  };
  const walk = async (dir: string, announce: boolean): Promise<void> => {
    add(dir);
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
  void walk(root, false);
  return {
    close: () => {
      closed = true;
      for (const watcher of watchers.values()) watcher.close();
      watchers.clear();
    },
  };
}
