// File-system change notification behind a small interface, so the file provider's coalescing logic
// can be driven by a fake in tests. The real implementation is node:fs `watch`.
//
// On Linux, Node 24 implements `recursive: true` in JavaScript (lib/internal/fs/recursive_watch.js):
// one inotify watch per file and directory, new subdirectories (even `mkdir -p a/b/c`) are picked up
// as they appear, removed ones are dropped. It does NOT survive the watched directory itself being
// removed or replaced (the watch stays on the old inode and goes silent), and watching a single file
// loses it when an editor replaces the file by renaming over it. The file provider therefore also
// watches the parent directory of its path and re-establishes the watches when the path is replaced.
import { watch } from "node:fs";

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

/** The real thing: node:fs `watch` (persistent, utf8 file names). */
export const nodeWatch: WatchFactory = (request, onEvent, onError) => {
  const watcher = watch(
    request.path,
    { recursive: request.recursive, persistent: true, encoding: "utf8" },
    (type, filename) => {
      onEvent({ type: type === "rename" ? "rename" : "change", filename });
    },
  );
  watcher.on("error", onError);
  return { close: () => watcher.close() };
};
