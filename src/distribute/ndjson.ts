// NDJSON framing with a bound on each line: JSON.stringify never emits a raw newline (it escapes
// them inside strings), so one value is one line.
import { GatehouseError } from "../errors.ts";

export class FramingError extends GatehouseError {}

export function encodeLine(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

/** Splits a byte stream into parsed JSON values; throws FramingError on a too-long or invalid line. */
export class NdjsonDecoder {
  readonly #maxLineBytes: number;
  #parts: Buffer[] = [];
  #pending = 0;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** The complete values in `chunk` (with what came before it). */
  push(chunk: Buffer): unknown[] {
    const values: unknown[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.#pending + piece.length > this.#maxLineBytes) throw this.#tooLong();
      const line = this.#parts.length === 0 ? piece : Buffer.concat([...this.#parts, piece]);
      this.#parts = [];
      this.#pending = 0;
      start = nl + 1;
      if (line.length === 0) continue;
      try {
        values.push(JSON.parse(line.toString("utf8")));
      } catch (err) {
        throw new FramingError("a line is not valid JSON", { cause: err });
      }
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#pending += rest.length;
      if (this.#pending > this.#maxLineBytes) throw this.#tooLong();
      this.#parts.push(Buffer.from(rest));
    }
    return values;
  }

  #tooLong(): FramingError {
    this.#parts = [];
    this.#pending = 0;
    return new FramingError(`a line exceeds ${this.#maxLineBytes} bytes`);
  }
}
