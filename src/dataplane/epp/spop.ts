// SPOP, the Stream Processing Offload Protocol of HAProxy's SPOE filter (HAProxy 2.6 doc/SPOE.txt,
// version "2.0"), the agent's side: frames, SPOP's varint, typed data, KV lists and actions.
//   frame:  <length:4 BE> <type:1> <flags:4 BE> <stream-id:varint> <frame-id:varint> <payload>
//   varint: < 240 in one byte; else the low 4 bits with 0xf0 set, then 7 bits per byte, high bit set
//           while more follow (the value minus 240 shifted, as HAProxy's encode_varint)
//   typed data: <type | flags << 4> then the value (ints as varint, strings/binary varint-length
//           prefixed, ipv4 4 bytes, ipv6 16 bytes, bool in the flags: 0x10 true)
// No fragmentation (the agent does not announce it): every frame has the FIN flag.

export class SpopError extends Error {
  override readonly name = "SpopError";
}

export const FrameType = {
  haproxyHello: 1,
  haproxyDisconnect: 2,
  notify: 3,
  agentHello: 101,
  agentDisconnect: 102,
  ack: 103,
} as const;

export const FLAG_FIN = 0x00000001;
export const FLAG_ABORT = 0x00000002;

export const DataType = {
  null: 0,
  bool: 1,
  int32: 2,
  uint32: 3,
  int64: 4,
  uint64: 5,
  ipv4: 6,
  ipv6: 7,
  string: 8,
  binary: 9,
} as const;

export const VarScope = { process: 0, session: 1, transaction: 2, request: 3, response: 4 } as const;
export type VarScopeName = keyof typeof VarScope;

/** Status codes of the DISCONNECT frames (SPOE.txt 3.4). */
export const Status = {
  normal: 0,
  io: 1,
  timeout: 2,
  tooBig: 3,
  invalid: 4,
  noVersion: 5,
  noFrameSize: 6,
  noCapability: 7,
  badVersion: 8,
  badFrameSize: 9,
  fragNotSupported: 10,
  interlacedFrames: 11,
  frameIdNotFound: 12,
  resAlloc: 13,
  unknown: 99,
} as const;

export type TypedData =
  | { type: "null" }
  | { type: "bool"; value: boolean }
  | { type: "int32" | "uint32" | "int64" | "uint64"; value: bigint }
  | { type: "ipv4" | "ipv6"; value: Buffer }
  | { type: "string" | "binary"; value: Buffer };

export interface Frame {
  type: number;
  flags: number;
  streamId: bigint;
  frameId: bigint;
  payload: Buffer;
}

export interface Message {
  name: string;
  args: Array<[string, TypedData]>;
}

export type Action =
  | { action: "set-var"; scope: VarScopeName; name: string; value: TypedData }
  | { action: "unset-var"; scope: VarScopeName; name: string };

const MAX_VARINT = (1n << 64n) - 1n;

/** SPOP's varint (HAProxy's encode_varint). */
export function encodeVarint(value: bigint | number): Buffer {
  let i = BigInt(value);
  if (i < 0n || i > MAX_VARINT) throw new SpopError(`varint out of range: ${i}`);
  if (i < 240n) return Buffer.from([Number(i)]);
  const out: number[] = [Number((i & 0xffn) | 0xf0n)];
  i = (i - 240n) >> 4n;
  while (i >= 128n) {
    out.push(Number((i & 0xffn) | 0x80n));
    i = (i - 128n) >> 7n;
  }
  out.push(Number(i));
  return Buffer.from(out);
}

/** Reads a frame payload or a decoded value; any read past the end is a SpopError. */
export class SpopReader {
  pos: number;
  readonly buf: Buffer;
  constructor(buf: Buffer, pos = 0) {
    this.buf = buf;
    this.pos = pos;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new SpopError("truncated data");
    return this.buf[this.pos++] as number;
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new SpopError("truncated data");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  varint(): bigint {
    let b = this.byte();
    let i = BigInt(b);
    if (b < 240) return i;
    let r = 4n;
    do {
      if (r > 63n) throw new SpopError("varint too long");
      b = this.byte();
      i += BigInt(b) << r;
      r += 7n;
    } while (b >= 128);
    if (i > MAX_VARINT) throw new SpopError("varint out of range");
    return i;
  }
  /** A varint that must fit a JS length. */
  length(): number {
    const n = this.varint();
    if (n > BigInt(this.buf.length - this.pos)) throw new SpopError("truncated data");
    return Number(n);
  }
  buffer(): Buffer {
    return this.bytes(this.length());
  }
  string(): string {
    return this.buffer().toString("latin1");
  }
  typed(): TypedData {
    const t = this.byte();
    switch (t & 0x0f) {
      case DataType.null:
        return { type: "null" };
      case DataType.bool:
        return { type: "bool", value: (t & 0x10) !== 0 };
      case DataType.int32:
      case DataType.int64: {
        const raw = this.varint();
        // Negative values travel as their 64-bit two's complement.
        const value = BigInt.asIntN(64, raw);
        return { type: (t & 0x0f) === DataType.int32 ? "int32" : "int64", value };
      }
      case DataType.uint32:
        return { type: "uint32", value: this.varint() };
      case DataType.uint64:
        return { type: "uint64", value: this.varint() };
      case DataType.ipv4:
        return { type: "ipv4", value: Buffer.from(this.bytes(4)) };
      case DataType.ipv6:
        return { type: "ipv6", value: Buffer.from(this.bytes(16)) };
      case DataType.string:
        return { type: "string", value: Buffer.from(this.buffer()) };
      case DataType.binary:
        return { type: "binary", value: Buffer.from(this.buffer()) };
      default:
        throw new SpopError(`unknown data type ${t & 0x0f}`);
    }
  }
  /** KV items until the end of the data. */
  kvList(): Map<string, TypedData> {
    const out = new Map<string, TypedData>();
    while (!this.done) {
      const k = this.string();
      out.set(k, this.typed());
    }
    return out;
  }
}

/** Builds a payload. */
export class SpopWriter {
  readonly #parts: Buffer[] = [];
  #size = 0;
  get size(): number {
    return this.#size;
  }
  raw(b: Buffer): this {
    this.#parts.push(b);
    this.#size += b.length;
    return this;
  }
  byte(n: number): this {
    return this.raw(Buffer.from([n & 0xff]));
  }
  varint(v: bigint | number): this {
    return this.raw(encodeVarint(v));
  }
  buffer(b: Buffer | string): this {
    const buf = typeof b === "string" ? Buffer.from(b, "latin1") : b;
    return this.varint(buf.length).raw(buf);
  }
  typed(d: TypedData): this {
    switch (d.type) {
      case "null":
        return this.byte(DataType.null);
      case "bool":
        return this.byte(DataType.bool | (d.value ? 0x10 : 0));
      case "int32":
      case "int64": {
        const bits = d.type === "int32" ? 32 : 64;
        if (BigInt.asIntN(bits, d.value) !== d.value) throw new SpopError(`${d.type} out of range`);
        return this.byte(DataType[d.type]).varint(BigInt.asUintN(64, d.value));
      }
      case "uint32":
      case "uint64": {
        const bits = d.type === "uint32" ? 32 : 64;
        if (BigInt.asUintN(bits, d.value) !== d.value) throw new SpopError(`${d.type} out of range`);
        return this.byte(DataType[d.type]).varint(d.value);
      }
      case "ipv4":
      case "ipv6":
        if (d.value.length !== (d.type === "ipv4" ? 4 : 16)) throw new SpopError(`bad ${d.type} address`);
        return this.byte(DataType[d.type]).raw(d.value);
      case "string":
      case "binary":
        return this.byte(DataType[d.type]).buffer(d.value);
    }
  }
  kv(key: string, value: TypedData): this {
    return this.buffer(key).typed(value);
  }
  finish(): Buffer {
    return Buffer.concat(this.#parts, this.#size);
  }
}

export const str = (s: string): TypedData => ({ type: "string", value: Buffer.from(s, "latin1") });
export const bin = (b: Buffer): TypedData => ({ type: "binary", value: b });
export const u32 = (n: number): TypedData => ({ type: "uint32", value: BigInt(n) });

/** A whole frame, its 4-byte length included. */
export function encodeFrame(f: Omit<Frame, "flags"> & { flags?: number }): Buffer {
  const head = new SpopWriter()
    .byte(f.type)
    .raw(Buffer.from([0, 0, 0, 0]))
    .varint(f.streamId)
    .varint(f.frameId)
    .finish();
  head.writeUInt32BE((f.flags ?? FLAG_FIN) >>> 0, 1);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length + f.payload.length);
  return Buffer.concat([len, head, f.payload]);
}

/** A frame from its bytes after the 4-byte length. */
export function decodeFrame(body: Buffer): Frame {
  const r = new SpopReader(body);
  const type = r.byte();
  const flags = r.bytes(4).readUInt32BE(0);
  const streamId = r.varint();
  const frameId = r.varint();
  return { type, flags, streamId, frameId, payload: body.subarray(r.pos) };
}

/** The messages of a NOTIFY payload. */
export function decodeMessages(payload: Buffer): Message[] {
  const r = new SpopReader(payload);
  const out: Message[] = [];
  while (!r.done) {
    const name = r.string();
    const n = r.byte();
    const args: Array<[string, TypedData]> = [];
    for (let i = 0; i < n; i++) {
      const k = r.string();
      args.push([k, r.typed()]);
    }
    out.push({ name, args });
  }
  return out;
}

export function encodeMessages(messages: readonly Message[]): Buffer {
  const w = new SpopWriter();
  for (const m of messages) {
    w.buffer(m.name).byte(m.args.length);
    for (const [k, v] of m.args) w.kv(k, v);
  }
  return w.finish();
}

/** An ACK payload. */
export function encodeActions(actions: readonly Action[]): Buffer {
  const w = new SpopWriter();
  for (const a of actions) {
    if (a.action === "set-var") w.byte(1).byte(3).byte(VarScope[a.scope]).buffer(a.name).typed(a.value);
    else w.byte(2).byte(2).byte(VarScope[a.scope]).buffer(a.name);
  }
  return w.finish();
}

export function decodeActions(payload: Buffer): Action[] {
  const r = new SpopReader(payload);
  const scopes = Object.keys(VarScope) as VarScopeName[];
  const out: Action[] = [];
  while (!r.done) {
    const type = r.byte();
    const n = r.byte();
    const scope = scopes[r.byte()];
    if (scope === undefined) throw new SpopError("unknown variable scope");
    const name = r.string();
    if (type === 1 && n === 3) out.push({ action: "set-var", scope, name, value: r.typed() });
    else if (type === 2 && n === 2) out.push({ action: "unset-var", scope, name });
    else throw new SpopError(`unknown action ${type}/${n}`);
  }
  return out;
}

export function encodeKvList(items: ReadonlyArray<[string, TypedData]>): Buffer {
  const w = new SpopWriter();
  for (const [k, v] of items) w.kv(k, v);
  return w.finish();
}

/**
 * HAProxy's `req.hdrs_bin` / `res.hdrs_bin`: (name, value) as varint-length strings, ending with two
 * empty strings.
 */
export function decodeHeadersBin(b: Buffer): Array<[string, string]> {
  const r = new SpopReader(b);
  const out: Array<[string, string]> = [];
  for (;;) {
    if (r.done) return out;
    const name = r.string();
    const value = r.string();
    if (name === "" && value === "") return out;
    out.push([name.toLowerCase(), value]);
  }
}

export function encodeHeadersBin(headers: ReadonlyArray<[string, string]>): Buffer {
  const w = new SpopWriter();
  for (const [n, v] of headers) w.buffer(n).buffer(v);
  return w.byte(0).byte(0).finish();
}
