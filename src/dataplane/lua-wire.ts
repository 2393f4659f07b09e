// The binary framing shared by the messages between HAProxy's Lua actions and Gatehouse's loopback
// bridges (ExternalAuth: extauth/wire.ts; the endpoint picker: epp/wire.ts): Lua `string.pack`
// formats, big-endian, unsigned integers of 1, 2 or 4 bytes and strings with a 1-, 2- or 4-byte
// length. Strings travel as bytes (latin1 keeps every byte).

export class WireError extends Error {
  override readonly name = "WireError";
}

export type LengthBytes = 1 | 2 | 4;

/** Reads a message; any read past its end, or bytes left after `end()`, is a WireError. */
export class WireReader {
  #pos = 0;
  readonly #buf: Buffer;
  constructor(buf: Buffer) {
    this.#buf = buf;
  }
  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new WireError("truncated message");
  }
  uint(bytes: LengthBytes): number {
    this.#need(bytes);
    const v = this.#buf.readUIntBE(this.#pos, bytes);
    this.#pos += bytes;
    return v;
  }
  raw(lengthBytes: LengthBytes): Buffer {
    const n = this.uint(lengthBytes);
    this.#need(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }
  str(lengthBytes: LengthBytes): string {
    return this.raw(lengthBytes).toString("latin1");
  }
  /** `count` (2 bytes), then that many (s2 name, s4 value) pairs. */
  headers(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    const n = this.uint(2);
    for (let i = 0; i < n; i++) out.push([this.str(2), this.str(4)]);
    return out;
  }
  end(): void {
    if (this.#pos !== this.#buf.length) throw new WireError("trailing bytes");
  }
}

/** Builds a message; a string longer than its length field can say is a WireError. */
export class WireWriter {
  readonly #parts: Buffer[] = [];
  uint(bytes: LengthBytes, v: number): this {
    const b = Buffer.alloc(bytes);
    b.writeUIntBE(v, 0, bytes);
    this.#parts.push(b);
    return this;
  }
  str(lengthBytes: LengthBytes, s: string | Buffer): this {
    const b = typeof s === "string" ? Buffer.from(s, "latin1") : s;
    if (b.length >= 2 ** (8 * lengthBytes)) throw new WireError(`a field of ${b.length} bytes does not fit`);
    this.uint(lengthBytes, b.length);
    this.#parts.push(b);
    return this;
  }
  /** The pairs as WireReader.headers() reads them. */
  headers(pairs: ReadonlyArray<readonly [string, string]>): this {
    this.uint(2, pairs.length);
    for (const [name, value] of pairs) this.str(2, name).str(4, value);
    return this;
  }
  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
