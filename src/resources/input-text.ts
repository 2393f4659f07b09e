// What the loader lets through from a file into memory and into messages: files up to a size limit
// that are text (UTF-8, no NUL byte), and messages of one bounded line with control characters
// escaped. A binary file, a 3 GB file or a 70,000-character alias name must cost one short message,
// not a parse of garbage or a 72 KB log line.
import { open } from "node:fs/promises";
import { RefusedFileError } from "../errors.ts";

/** Files larger than this are refused without being read (16 MiB: far above any hand-written config). */
export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Longest user-supplied text (a problem's description, a name) kept in a message, in characters. */
export const MAX_TEXT_CHARS = 200;

/**
 * Whether the UTF-16 code unit at `i` must be escaped: C0 and C1 controls, DEL, line/paragraph
 * separators, bidi overrides and isolates (they make a line display other than it reads), lone
 * surrogates.
 */
function unsafeAt(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  if (c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
    return true;
  if (c >= 0xd800 && c <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    return !(next >= 0xdc00 && next <= 0xdfff);
  }
  if (c >= 0xdc00 && c <= 0xdfff) {
    const previous = i > 0 ? text.charCodeAt(i - 1) : 0;
    return !(previous >= 0xd800 && previous <= 0xdbff);
  }
  return false;
}

/**
 * `text` as one safe line of at most `max` characters (plus a note saying how much was left out):
 * control characters become `\n`, `\t`, `\u0007`, ...
 */
export function boundedText(text: string, max = MAX_TEXT_CHARS): string {
  let end = Math.min(text.length, max);
  // Do not cut a surrogate pair in half.
  if (end < text.length) {
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
  }
  let out = "";
  let from = 0;
  for (let i = 0; i < end; i++) {
    if (!unsafeAt(text, i)) continue;
    out += text.slice(from, i) + escapeChar(text.charCodeAt(i));
    from = i + 1;
  }
  out += text.slice(from, end);
  return end === text.length ? out : `${out}… (${text.length - end} more characters)`;
}

/** Whether boundedText would change `text` (a cheap check, so that clean input is never copied). */
export function needsBounding(text: string, max = MAX_TEXT_CHARS): boolean {
  if (text.length > max) return true;
  for (let i = 0; i < text.length; i++) if (unsafeAt(text, i)) return true;
  return false;
}

function escapeChar(code: number): string {
  switch (code) {
    case 10:
      return "\\n";
    case 13:
      return "\\r";
    case 9:
      return "\\t";
    default:
      return `\\u${code.toString(16).padStart(4, "0")}`;
  }
}

/** The size of a file in a message: `17.3 MiB`, `900 KiB`, `12 bytes`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KiB`;
  return `${bytes} bytes`;
}

/** The refusal of a file larger than `limit` (`size`: its size when known). */
export function tooLarge(path: string, limit: number, size?: number): RefusedFileError {
  const actual = size === undefined ? "" : ` (${formatBytes(size)})`;
  return new RefusedFileError(
    `refused: larger than ${formatBytes(limit)}${actual}; split it into several files`,
    path,
  );
}

/**
 * Reads at most `limit` bytes of a regular file. Throws RefusedFileError when the file is larger
 * (decided by its size before reading, and again while reading, should it grow meanwhile), and the
 * file-system error when it cannot be read.
 */
export async function readLimited(path: string, limit: number): Promise<Uint8Array> {
  const handle = await open(path, "r");
  try {
    const { size } = await handle.stat();
    if (size > limit) throw tooLarge(path, limit, size);
    // One byte more than the limit tells a file that grew beyond it since the stat.
    let buffer = Buffer.allocUnsafe(Math.min(size, limit) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > limit) throw tooLarge(path, limit);
        const bigger = Buffer.allocUnsafe(Math.min(buffer.length * 2, limit + 1));
        buffer.copy(bigger, 0, 0, length);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) throw tooLarge(path, limit);
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * The text of a file's bytes. Throws RefusedFileError for a binary file: a NUL byte (never in YAML
 * text) or bytes that are not UTF-8. A byte order mark is dropped.
 */
export function decodeText(bytes: Uint8Array, path: string): string {
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    const { line, column } = position(bytes, nul);
    return refuse(path, `refused: not a text file (NUL byte at line ${line}, column ${column})`);
  }
  try {
    return decoder.decode(bytes);
  } catch (error) {
    return refuse(path, "refused: not a text file (not valid UTF-8)", error);
  }
}

/**
 * Checks text that arrived already decoded (a FileSystem without `readBytes`): the same refusals,
 * as far as a string can tell (invalid UTF-8 was replaced by U+FFFD before it got here).
 */
export function checkText(text: string, path: string, limit: number): string {
  if (text.length > limit || Buffer.byteLength(text, "utf8") > limit) throw tooLarge(path, limit);
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const before = text.slice(0, nul);
    const line = before.split("\n").length;
    const column = nul - before.lastIndexOf("\n");
    refuse(path, `refused: not a text file (NUL byte at line ${line}, column ${column})`);
  }
  return text;
}

function refuse(path: string, message: string, cause?: unknown): never {
  throw new RefusedFileError(message, path, cause === undefined ? undefined : { cause });
}

/** 1-based line and column (in bytes) of `offset`. */
function position(bytes: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = bytes.indexOf(10); i >= 0 && i < offset; i = bytes.indexOf(10, i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}
