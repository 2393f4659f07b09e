// Container logs in the CRI format the real kubelet writes (`<RFC3339Nano> <stream> F <line>`), and
// their reading as `/containerLogs` serves them: sinceTime/sinceSeconds, tailLines, timestamps,
// limitBytes, follow.
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

const originNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Current time as RFC 3339 with nanoseconds (monotonic within this process). */
export function nowRfc3339Nano(): string {
  const ns = originNs + process.hrtime.bigint();
  const ms = Number(ns / 1_000_000n);
  const seconds = new Date(ms).toISOString().slice(0, 19);
  const fraction = (ns % 1_000_000_000n).toString().padStart(9, "0");
  return `${seconds}.${fraction}Z`;
}

/** Parses an RFC 3339 timestamp into nanoseconds since the epoch (BigInt keeps the precision). */
export function parseTimestampNs(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (m === null) return undefined;
  const seconds = Date.parse(`${m[1] ?? ""}${m[3] ?? "Z"}`);
  if (Number.isNaN(seconds)) return undefined;
  const fraction = BigInt((m[2] ?? "").padEnd(9, "0") || "0");
  return BigInt(seconds) * 1_000_000n + fraction;
}

/** Appends a process's output to a CRI log file, line by line, each with its own timestamp. */
export class LogWriter {
  readonly file: string;
  readonly #partial: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };

  constructor(file: string) {
    this.file = file;
  }

  write(stream: "stdout" | "stderr", chunk: Buffer | string): void {
    const text = this.#partial[stream] + chunk.toString();
    const lines = text.split("\n");
    this.#partial[stream] = lines.pop() ?? "";
    if (lines.length === 0) return;
    appendFileSync(this.file, lines.map((line) => `${nowRfc3339Nano()} ${stream} F ${line}\n`).join(""));
  }

  /** Writes what is left of unterminated lines (at process exit). */
  flush(): void {
    for (const stream of ["stdout", "stderr"] as const) {
      if (this.#partial[stream] !== "") {
        appendFileSync(this.file, `${nowRfc3339Nano()} ${stream} F ${this.#partial[stream]}\n`);
        this.#partial[stream] = "";
      }
    }
  }
}

export interface LogEntry {
  timestamp: string;
  ns: bigint;
  stream: string;
  content: string;
}

export function parseLogLine(line: string): LogEntry | undefined {
  const first = line.indexOf(" ");
  const second = line.indexOf(" ", first + 1);
  const third = line.indexOf(" ", second + 1);
  if (first < 0 || second < 0 || third < 0) return undefined;
  const timestamp = line.slice(0, first);
  const ns = parseTimestampNs(timestamp);
  if (ns === undefined) return undefined;
  return { timestamp, ns, stream: line.slice(first + 1, second), content: line.slice(third + 1) };
}

export interface LogOptions {
  /** Only entries at or after this time (nanoseconds since the epoch). */
  sinceNs?: bigint;
  tailLines?: number;
  timestamps?: boolean;
  limitBytes?: number;
}

/** Parses the query of a /containerLogs request (the API server passes PodLogOptions through). */
export function logOptionsFromQuery(
  query: URLSearchParams,
  now = Date.now(),
): LogOptions & { follow: boolean; previous: boolean } {
  const options: LogOptions & { follow: boolean; previous: boolean } = {
    follow: query.get("follow") === "true",
    previous: query.get("previous") === "true",
    timestamps: query.get("timestamps") === "true",
  };
  const sinceTime = query.get("sinceTime");
  const sinceSeconds = query.get("sinceSeconds");
  if (sinceTime !== null && sinceTime !== "") {
    const ns = parseTimestampNs(sinceTime);
    if (ns === undefined) throw new Error(`bad sinceTime ${sinceTime}`);
    options.sinceNs = ns;
  } else if (sinceSeconds !== null && sinceSeconds !== "") {
    options.sinceNs = BigInt(now - Number(sinceSeconds) * 1000) * 1_000_000n;
  }
  const tail = query.get("tailLines");
  if (tail !== null && tail !== "" && Number(tail) >= 0) options.tailLines = Number(tail);
  const limit = query.get("limitBytes");
  if (limit !== null && limit !== "" && Number(limit) > 0) options.limitBytes = Number(limit);
  return options;
}

export function formatEntry(entry: LogEntry, timestamps: boolean | undefined): string {
  return timestamps === true ? `${entry.timestamp} ${entry.content}\n` : `${entry.content}\n`;
}

/** The entries of a log file, filtered: tail first, then since (as the kubelet does). */
export function readLog(file: string, options: LogOptions): { text: string; offset: number } {
  if (!existsSync(file)) return { text: "", offset: 0 };
  const raw = readFileSync(file);
  const end = raw.lastIndexOf(0x0a) + 1; // whole lines only
  let entries = raw
    .subarray(0, end)
    .toString("utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map(parseLogLine)
    .filter((e): e is LogEntry => e !== undefined);
  if (options.tailLines !== undefined)
    entries = options.tailLines === 0 ? [] : entries.slice(-options.tailLines);
  if (options.sinceNs !== undefined) {
    const since = options.sinceNs;
    entries = entries.filter((e) => e.ns >= since);
  }
  let text = entries.map((e) => formatEntry(e, options.timestamps)).join("");
  if (options.limitBytes !== undefined)
    text = Buffer.from(text).subarray(0, options.limitBytes).toString("utf8");
  return { text, offset: end };
}

/**
 * Follows a log file from `offset`, calling `emit` with new formatted entries, until `done()` is
 * true (the container stopped) and everything is read, or `signal` aborts.
 *
 * The file is read through one descriptor opened at the start, as `tail -f` does: a stopped Pod's
 * directory is removed right after its containers exit, and a follower that reopened the file by
 * name would lose the lines written between its last read and the removal (the last lines of a
 * process, often the ones that say how it stopped).
 */
export async function followLog(
  file: string,
  offset: number,
  options: LogOptions,
  emit: (text: string) => void,
  done: () => boolean,
  signal: AbortSignal,
): Promise<void> {
  let fd: number | undefined;
  try {
    let position = offset;
    let budget = options.limitBytes ?? Infinity;
    while (!signal.aborted && budget > 0) {
      if (fd === undefined && existsSync(file)) fd = openSync(file, "r");
      // Read `done()` before the size: what the process wrote before it was done is then read.
      const finished = done();
      const size = fd === undefined ? 0 : fstatSync(fd).size;
      if (fd !== undefined && size > position) {
        const chunk = Buffer.alloc(size - position);
        const read = readSync(fd, chunk, 0, chunk.length, position);
        const end = chunk.subarray(0, read).lastIndexOf(0x0a) + 1;
        position += end;
        const text = chunk
          .subarray(0, end)
          .toString("utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map(parseLogLine)
          .filter(
            (e): e is LogEntry =>
              e !== undefined && (options.sinceNs === undefined || e.ns >= options.sinceNs),
          )
          .map((e) => formatEntry(e, options.timestamps))
          .join("");
        const bytes = Buffer.from(text);
        const out = bytes.length > budget ? bytes.subarray(0, budget).toString("utf8") : text;
        budget -= Math.min(bytes.length, budget);
        if (out !== "") emit(out);
        if (end > 0) continue;
      }
      if (finished) return;
      await sleep(200);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
