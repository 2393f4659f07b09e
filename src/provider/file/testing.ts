// Test doubles for the file provider: an in-memory file system and a scriptable watch factory.
import type { FileSystem } from "../../resources/load.ts";
import type { WatchEvent, WatchFactory, WatchRequest } from "./watch.ts";

function fsError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/**
 * Files keyed by absolute path; directories exist implicitly above every file (plus any added with
 * `mkdir`). `gate`, when set, holds every readFile until it resolves, to keep a load in flight.
 */
export class MemoryFileSystem implements FileSystem {
  readonly files = new Map<string, string>();
  readonly dirs = new Set<string>();
  gate: Promise<void> | undefined;
  reads = 0;

  constructor(files: Record<string, string> = {}) {
    for (const [path, text] of Object.entries(files)) this.files.set(path, text);
  }

  write(path: string, text: string): void {
    this.files.set(path, text);
  }

  remove(prefix: string): void {
    for (const path of [...this.files.keys()]) {
      if (path === prefix || path.startsWith(`${prefix}/`)) this.files.delete(path);
    }
    for (const dir of [...this.dirs])
      if (dir === prefix || dir.startsWith(`${prefix}/`)) this.dirs.delete(dir);
  }

  mkdir(path: string): void {
    this.dirs.add(path);
  }

  #isDir(path: string): boolean {
    if (this.dirs.has(path)) return true;
    const prefix = `${path}/`;
    for (const file of this.files.keys()) if (file.startsWith(prefix)) return true;
    for (const dir of this.dirs) if (dir.startsWith(prefix)) return true;
    return false;
  }

  stat(path: string): Promise<{ isFile(): boolean; isDirectory(): boolean }> {
    const isFile = this.files.has(path);
    const isDirectory = !isFile && this.#isDir(path);
    if (!isFile && !isDirectory) return Promise.reject(fsError("ENOENT", path));
    return Promise.resolve({ isFile: () => isFile, isDirectory: () => isDirectory });
  }

  readdir(path: string): Promise<string[]> {
    if (!this.#isDir(path)) return Promise.reject(fsError("ENOENT", path));
    const prefix = `${path}/`;
    const names = new Set<string>();
    for (const entry of [...this.files.keys(), ...this.dirs]) {
      if (!entry.startsWith(prefix)) continue;
      const name = entry.slice(prefix.length).split("/")[0];
      if (name !== undefined && name !== "") names.add(name);
    }
    return Promise.resolve([...names]);
  }

  async readFile(path: string): Promise<string> {
    this.reads++;
    if (this.gate !== undefined) await this.gate;
    const text = this.files.get(path);
    if (text === undefined) throw fsError("ENOENT", path);
    return text;
  }
}

export interface FakeWatch {
  readonly request: WatchRequest;
  closed: boolean;
  emit(event: WatchEvent): void;
  fail(error: Error): void;
}

/** A watch factory whose watches the test fires by hand. */
export class FakeWatcher {
  readonly watches: FakeWatch[] = [];
  /** When set, the next factory call throws it (then it is cleared). */
  throwNext: Error | undefined;

  readonly factory: WatchFactory = (request, onEvent, onError) => {
    if (this.throwNext !== undefined) {
      const error = this.throwNext;
      this.throwNext = undefined;
      throw error;
    }
    const watch: FakeWatch = {
      request,
      closed: false,
      emit: (event) => {
        if (!watch.closed) onEvent(event);
      },
      fail: (error) => {
        if (!watch.closed) onError(error);
      },
    };
    this.watches.push(watch);
    return {
      close: () => {
        watch.closed = true;
      },
    };
  };

  /** Open watches, as `path` or `path (recursive)`. */
  open(): string[] {
    return this.watches
      .filter((watch) => !watch.closed)
      .map((watch) => (watch.request.recursive ? `${watch.request.path} (recursive)` : watch.request.path));
  }

  /** The open watch on `path`; throws when there is none. */
  on(path: string): FakeWatch {
    const watch = this.watches.find((candidate) => !candidate.closed && candidate.request.path === path);
    if (watch === undefined) throw new Error(`no open watch on ${path}`);
    return watch;
  }
}
