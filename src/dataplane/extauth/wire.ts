// The messages between HAProxy's `gh_extauth` Lua action (render/extauth.ts) and the bridge, in the
// Lua `string.pack` formats the action uses (big-endian, `sN` = string with an N-byte length).
//   request:  s1 key, s2 method, s4 path, s4 host, s1 scheme, s2 source, s1 version,
//             I2 header count, (s2 name, s4 value)*, s4 body
//   verdict:  B 1 (allow), I2 count, (B op: 0 set / 1 add / 2 remove, s2 name, s4 value)*
//             B 0 (deny), I2 status, I2 count, (s2 name, s4 value)*, s4 body

import { WireError, WireReader, WireWriter } from "../lua-wire.ts";

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

export { WireError };

/**
 * Header names and values travel as bytes (latin1 keeps every byte); the HTTP client of the bridge
 * sends them back out the same way.
 */
export function decodeRequest(buf: Buffer): AuthRequest {
  const r = new WireReader(buf);
  const out: AuthRequest = {
    key: r.str(1),
    method: r.str(2),
    path: r.str(4),
    host: r.str(4),
    scheme: r.str(1),
    source: r.str(2),
    version: r.str(1),
    headers: r.headers(),
    body: Buffer.from(r.raw(4)),
  };
  r.end();
  return out;
}

export function encodeRequest(r: AuthRequest): Buffer {
  const w = new WireWriter()
    .str(1, r.key)
    .str(2, r.method)
    .str(4, r.path)
    .str(4, r.host)
    .str(1, r.scheme)
    .str(2, r.source)
    .str(1, r.version)
    .headers(r.headers);
  return w.str(4, r.body).finish();
}

const OPS = { set: 0, add: 1, remove: 2 } as const;

export function encodeVerdict(v: Verdict): Buffer {
  const w = new WireWriter();
  if (v.allow) {
    w.uint(1, 1).uint(2, v.ops.length);
    for (const o of v.ops)
      w.uint(1, OPS[o.op])
        .str(2, o.name)
        .str(4, o.op === "remove" ? "" : o.value);
    return w.finish();
  }
  w.uint(1, 0).uint(2, v.status).headers(v.headers);
  return w.str(4, Buffer.from(v.body, "utf8")).finish();
}

export function decodeVerdict(buf: Buffer): Verdict {
  const r = new WireReader(buf);
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
  const headers = r.headers();
  const body = r.raw(4).toString("utf8");
  r.end();
  return { allow: false, status, headers, body };
}
