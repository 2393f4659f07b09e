// The messages between HAProxy's `gh_epp` / `gh_epp_served` Lua actions (render/epp.ts) and the
// picker bridge, in the Lua `string.pack` formats the actions use (big-endian, `sN` = string with an
// N-byte length, B = byte, I2 = 2-byte unsigned).
//   pick request:   s1 key, s2 method, s4 path, s4 host, s1 scheme, B complete,
//                   I2 header count, (s2 name, s4 value)*, s4 body
//   pick verdict:   B 1 (pick), s1 stream id, s2 destination list, I2 count, (B op, s2 name, s4 value)*
//                   B 0 (respond), I2 status, I2 count, (s2 name, s4 value)*, s4 body
//                   B 2 (unavailable: the action applies the pool's failureMode)
//   served request: s1 stream id, s2 served endpoint, I2 status, I2 count, (s2 name, s4 value)*
//   served reply:   I2 count, (B op, s2 name, s4 value)*
// op: 0 set (replace), 1 add, 2 remove, 3 add if absent.
import { WireError, WireReader, WireWriter } from "../lua-wire.ts";

export { WireError };

export interface PickRequest {
  key: string;
  method: string;
  path: string;
  host: string;
  scheme: string;
  /** Whether `body` is the whole body (false: HAProxy's buffer held only a prefix). */
  complete: boolean;
  /** Lower-case names (HTX), one entry per value. */
  headers: Array<[string, string]>;
  body: Buffer;
}

export type HeaderOp =
  { op: "set" | "add" | "addIfAbsent"; name: string; value: string } | { op: "remove"; name: string };

export type PickVerdict =
  | { kind: "pick"; stream: string; destination: string; ops: HeaderOp[] }
  | { kind: "respond"; status: number; headers: Array<[string, string]>; body: Buffer }
  | { kind: "unavailable" };

export interface ServedRequest {
  stream: string;
  /** `ip:port` (IPv6 in brackets) HAProxy connected to; "" when no server was reached. */
  served: string;
  status: number;
  headers: Array<[string, string]>;
}

const OPS = { set: 0, add: 1, remove: 2, addIfAbsent: 3 } as const;

function writeOps(w: WireWriter, ops: readonly HeaderOp[]): void {
  w.uint(2, ops.length);
  for (const o of ops)
    w.uint(1, OPS[o.op])
      .str(2, o.name)
      .str(4, o.op === "remove" ? "" : o.value);
}

function readOps(r: WireReader): HeaderOp[] {
  const ops: HeaderOp[] = [];
  const n = r.uint(2);
  for (let i = 0; i < n; i++) {
    const op = r.uint(1);
    const name = r.str(2);
    const value = r.str(4);
    if (op === 2) ops.push({ op: "remove", name });
    else ops.push({ op: op === 1 ? "add" : op === 3 ? "addIfAbsent" : "set", name, value });
  }
  return ops;
}

export function decodePickRequest(buf: Buffer): PickRequest {
  const r = new WireReader(buf);
  const out: PickRequest = {
    key: r.str(1),
    method: r.str(2),
    path: r.str(4),
    host: r.str(4),
    scheme: r.str(1),
    complete: r.uint(1) === 1,
    headers: r.headers(),
    body: Buffer.from(r.raw(4)),
  };
  r.end();
  return out;
}

export function encodePickRequest(p: PickRequest): Buffer {
  const w = new WireWriter()
    .str(1, p.key)
    .str(2, p.method)
    .str(4, p.path)
    .str(4, p.host)
    .str(1, p.scheme)
    .uint(1, p.complete ? 1 : 0)
    .headers(p.headers);
  return w.str(4, p.body).finish();
}

export function encodePickVerdict(v: PickVerdict): Buffer {
  const w = new WireWriter();
  if (v.kind === "unavailable") return w.uint(1, 2).finish();
  if (v.kind === "pick") {
    w.uint(1, 1).str(1, v.stream).str(2, v.destination);
    writeOps(w, v.ops);
    return w.finish();
  }
  w.uint(1, 0).uint(2, v.status).headers(v.headers);
  return w.str(4, v.body).finish();
}

export function decodePickVerdict(buf: Buffer): PickVerdict {
  const r = new WireReader(buf);
  const kind = r.uint(1);
  if (kind === 2) {
    r.end();
    return { kind: "unavailable" };
  }
  if (kind === 1) {
    const stream = r.str(1);
    const destination = r.str(2);
    const ops = readOps(r);
    r.end();
    return { kind: "pick", stream, destination, ops };
  }
  if (kind !== 0) throw new WireError(`unknown verdict ${kind}`);
  const status = r.uint(2);
  const hs = r.headers();
  const body = Buffer.from(r.raw(4));
  r.end();
  return { kind: "respond", status, headers: hs, body };
}

export function decodeServedRequest(buf: Buffer): ServedRequest {
  const r = new WireReader(buf);
  const out: ServedRequest = { stream: r.str(1), served: r.str(2), status: r.uint(2), headers: [] };
  out.headers = r.headers();
  r.end();
  return out;
}

export function encodeServedRequest(s: ServedRequest): Buffer {
  const w = new WireWriter().str(1, s.stream).str(2, s.served).uint(2, s.status).headers(s.headers);
  return w.finish();
}

export function encodeServedReply(ops: readonly HeaderOp[]): Buffer {
  const w = new WireWriter();
  writeOps(w, ops);
  return w.finish();
}

export function decodeServedReply(buf: Buffer): HeaderOp[] {
  const r = new WireReader(buf);
  const ops = readOps(r);
  r.end();
  return ops;
}
