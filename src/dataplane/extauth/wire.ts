// The messages between HAProxy's `gh_extauth` Lua action (render/extauth.ts) and the bridge, in the
// Lua `string.pack` formats the action uses (big-endian, `sN` = string with an N-byte length).
//   request:  s1 key, s2 method, s4 path, s4 host, s1 scheme, s2 source, s1 version,
//             I2 header count, (s2 name, s4 value)*, s4 body
//   verdict:  B 1 (allow), I2 count, (B op: 0 set / 1 add / 2 remove, s2 name, s4 value)*
//             B 0 (deny), I2 status, I2 count, (s2 name, s4 value)*, s4 body

export interface AuthRequest {
  key: string;
  method: string;
  path: string;
  host: string;
  scheme: string;
  source: string;
  version: string;
  /** In request order, lower-case names (HTX), one entry per value. */
  headers: Array<[string, string]>;
  body: Buffer;
}

export type HeaderOp = { op: "set" | "add"; name: string; value: string } | { op: "remove"; name: string };

export type Verdict =
  | { allow: true; ops: HeaderOp[] }
  | { allow: false; status: number; headers: Array<[string, string]>; body: string };

export class WireError extends Error {
  override readonly name = "WireError";
}

class Reader {
  #pos = 0;
  readonly #buf: Buffer;
  constructor(buf: Buffer) {
    this.#buf = buf;
  }
  #need(n: number): void {
    if (this.#pos + n > this.#buf.length) throw new WireError("truncated message");
  }
  uint(bytes: 1 | 2 | 4): number {
    this.#need(bytes);
    const v = this.#buf.readUIntBE(this.#pos, bytes);
    this.#pos += bytes;
    return v;
  }
  raw(lengthBytes: 1 | 2 | 4): Buffer {
    const n = this.uint(lengthBytes);
    this.#need(n);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }
  str(lengthBytes: 1 | 2 | 4): string {
    return this.raw(lengthBytes).toString("latin1");
  }
  end(): void {
    if (this.#pos !== this.#buf.length) throw new WireError("trailing bytes");
  }
}

/**
 * Header names and values travel as bytes (latin1 keeps every byte); the HTTP client of the bridge
 * sends them back out the same way.
 */
export function decodeRequest(buf: Buffer): AuthRequest {
  const r = new Reader(buf);
  const out: AuthRequest = {
    key: r.str(1),
    method: r.str(2),
    path: r.str(4),
    host: r.str(4),
    scheme: r.str(1),
    source: r.str(2),
    version: r.str(1),
    headers: [],
    body: Buffer.alloc(0),
  };
  const n = r.uint(2);
  for (let i = 0; i < n; i++) out.headers.push([r.str(2), r.str(4)]);
  out.body = Buffer.from(r.raw(4));
  r.end();
  return out;
}

class Writer {
  readonly parts: Buffer[] = [];
  uint(bytes: 1 | 2 | 4, v: number): this {
    const b = Buffer.alloc(bytes);
    b.writeUIntBE(v, 0, bytes);
    this.parts.push(b);
    return this;
  }
  str(lengthBytes: 1 | 2 | 4, s: string | Buffer): this {
    const b = typeof s === "string" ? Buffer.from(s, "latin1") : s;
    this.uint(lengthBytes, b.length);
    this.parts.push(b);
    return this;
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function encodeRequest(r: AuthRequest): Buffer {
  const w = new Writer()
    .str(1, r.key)
    .str(2, r.method)
    .str(4, r.path)
    .str(4, r.host)
    .str(1, r.scheme)
    .str(2, r.source)
    .str(1, r.version)
    .uint(2, r.headers.length);
  for (const [name, value] of r.headers) w.str(2, name).str(4, value);
  return w.str(4, r.body).finish();
}

const OPS = { set: 0, add: 1, remove: 2 } as const;

export function encodeVerdict(v: Verdict): Buffer {
  const w = new Writer();
  if (v.allow) {
    w.uint(1, 1).uint(2, v.ops.length);
    for (const o of v.ops)
      w.uint(1, OPS[o.op])
        .str(2, o.name)
        .str(4, o.op === "remove" ? "" : o.value);
    return w.finish();
  }
  w.uint(1, 0).uint(2, v.status).uint(2, v.headers.length);
  for (const [name, value] of v.headers) w.str(2, name).str(4, value);
  return w.str(4, Buffer.from(v.body, "utf8")).finish();
}

export function decodeVerdict(buf: Buffer): Verdict {
  const r = new Reader(buf);
  if (r.uint(1) === 1) {
    const ops: HeaderOp[] = [];
    const n = r.uint(2);
    for (let i = 0; i < n; i++) {
      const op = r.uint(1);
      const name = r.str(2);
      const value = r.str(4);
      ops.push(op === 2 ? { op: "remove", name } : { op: op === 1 ? "add" : "set", name, value });
    }
    r.end();
    return { allow: true, ops };
  }
  const status = r.uint(2);
  const headers: Array<[string, string]> = [];
  const n = r.uint(2);
  for (let i = 0; i < n; i++) headers.push([r.str(2), r.str(4)]);
  const body = r.raw(4).toString("utf8");
  r.end();
  return { allow: false, status, headers, body };
}
