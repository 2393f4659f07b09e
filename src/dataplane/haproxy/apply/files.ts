// Writing rendered files: atomically (write to a temporary name, then rename) so HAProxy never reads
// a half-written map or configuration, even when it restarts in the middle of an apply.
import { mkdir, rename, rm, writeFile, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface FileWriter {
  /** Writes `content` to `path` atomically, creating parent directories. */
  write(path: string, content: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Removes a file or directory tree; missing is fine. */
  remove(path: string): Promise<void>;
  list(dir: string): Promise<string[]>;
}

let counter = 0;

export const nodeFileWriter: FileWriter = {
  async write(path, content) {
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${++counter}`;
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, path);
  },
  async mkdir(path) {
    await mkdir(path, { recursive: true });
  },
  async remove(path) {
    await rm(path, { recursive: true, force: true });
  },
  async list(dir) {
    try {
      return await readdir(dir);
    } catch {
      return [];
    }
  },
};

/** Writes every rendered file under `dir` (concurrently: each write is atomic on its own). */
export async function writeTree(
  writer: FileWriter,
  dir: string,
  files: Record<string, string>,
): Promise<void> {
  await Promise.all(Object.entries(files).map(([rel, content]) => writer.write(join(dir, rel), content)));
}
