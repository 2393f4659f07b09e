// The messages of Envoy's external processing service (envoy.service.ext_proc.v3.ExternalProcessor/
// Process), the protocol an InferencePool's endpoint picker speaks (Gateway API Inference Extension,
// proposal 004). Only the fields the picker bridge sends or reads are encoded, with their field
// numbers from envoy/service/ext_proc/v3/external_processor.proto, envoy/config/core/v3/base.proto,
// envoy/type/v3/http_status.proto and google/protobuf/struct.proto (go-control-plane v1.37.0, the
// version gateway-api-inference-extension v1.6.0 requires). Unknown fields are skipped. Both
// directions are here: the bridge encodes ProcessingRequest and decodes ProcessingResponse; the test
// pickers do the opposite.
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export const PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

/** google.protobuf.Value, as plain data. */
export type StructValue = null | number | string | boolean | StructValue[] | { [key: string]: StructValue };
export type StructObject = { [key: string]: StructValue };

/** Header names and values as byte strings (latin1): every byte is kept. */
export type Header = [name: string, value: string];

export type ProcessingRequest =
  | {
      kind: "requestHeaders" | "responseHeaders";
      headers: Header[];
      endOfStream: boolean;
      /** metadata_context.filter_metadata: namespace → Struct. */
      metadata?: Record<string, StructObject>;
    }
  | { kind: "requestBody" | "responseBody"; body: Uint8Array; endOfStream: boolean };

/**
 * How a header of a mutation is applied: `append` (HeaderValueOption.append true, or append_action
 * APPEND_IF_EXISTS_OR_ADD given explicitly is indistinguishable from unset, see decodeOption),
 * `set` (replace), `addIfAbsent`, `overwriteIfExists`.
 */
export type SetAction = "append" | "set" | "addIfAbsent" | "overwriteIfExists";

export interface HeaderMutation {
  set: Array<{ name: string; value: string; action: SetAction }>;
  remove: string[];
}

export type ProcessingResponse =
  | {
      kind: "requestHeaders" | "responseHeaders" | "requestBody" | "responseBody";
      mutation: HeaderMutation;
      dynamicMetadata?: StructObject;
    }
  | {
      kind: "immediate";
      status: number;
      headers: HeaderMutation;
      body: Uint8Array;
      details: string;
      dynamicMetadata?: StructObject;
    }
  | { kind: "other"; field: number };

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");

function message(w: BinaryWriter, field: number, write: (w: BinaryWriter) => void): void {
  w.tag(field, WireType.LengthDelimited).fork();
  write(w);
  w.join();
}

function str(w: BinaryWriter, field: number, value: string): void {
  if (value !== "") w.tag(field, WireType.LengthDelimited).string(value);
}

function encodeValue(w: BinaryWriter, v: StructValue): void {
  if (v === null) w.tag(1, WireType.Varint).int32(0);
  else if (typeof v === "number") w.tag(2, WireType.Bit64).double(v);
  else if (typeof v === "string") w.tag(3, WireType.LengthDelimited).string(v);
  else if (typeof v === "boolean") w.tag(4, WireType.Varint).bool(v);
  else if (Array.isArray(v))
    message(w, 6, (w) => v.forEach((item) => message(w, 1, (w) => encodeValue(w, item))));
  else message(w, 5, (w) => encodeStruct(w, v));
}

/** Struct.fields (map<string, Value> = 1), keys sorted. */
function encodeStruct(w: BinaryWriter, s: StructObject): void {
  for (const key of Object.keys(s).sort()) {
    message(w, 1, (w) => {
      str(w, 1, key);
      message(w, 2, (w) => encodeValue(w, s[key] ?? null));
    });
  }
}

function encodeHeaderMap(w: BinaryWriter, field: number, headers: readonly Header[]): void {
  // HeaderMap = field, HeaderValue headers = 1 (key = 1, raw_value = 3).
  message(w, field, (w) => {
    for (const [name, value] of headers)
      message(w, 1, (w) => {
        str(w, 1, name);
        if (value !== "") w.tag(3, WireType.LengthDelimited).bytes(Buffer.from(value, "latin1"));
      });
  });
}

export function encodeProcessingRequest(r: ProcessingRequest): Uint8Array {
  const w = new BinaryWriter();
  if (r.kind === "requestHeaders" || r.kind === "responseHeaders") {
    const { headers, endOfStream } = r;
    // request_headers = 2, response_headers = 3: HttpHeaders { headers = 1, end_of_stream = 3 }
    message(w, r.kind === "requestHeaders" ? 2 : 3, (w) => {
      encodeHeaderMap(w, 1, headers);
      if (endOfStream) w.tag(3, WireType.Varint).bool(true);
    });
    if (r.metadata !== undefined) {
      const metadata = r.metadata;
      // metadata_context = 8: Metadata { map<string, Struct> filter_metadata = 1 }
      message(w, 8, (w) => {
        for (const ns of Object.keys(metadata).sort())
          message(w, 1, (w) => {
            str(w, 1, ns);
            message(w, 2, (w) => encodeStruct(w, metadata[ns] ?? {}));
          });
      });
    }
  } else {
    // request_body = 4, response_body = 5: HttpBody { body = 1, end_of_stream = 2 }
    const { body, endOfStream } = r as Extract<ProcessingRequest, { body: Uint8Array }>;
    message(w, r.kind === "requestBody" ? 4 : 5, (w) => {
      if (body.length > 0) w.tag(1, WireType.LengthDelimited).bytes(body);
      if (endOfStream) w.tag(2, WireType.Varint).bool(true);
    });
  }
  return w.finish();
}

/** Reads the fields of one message: `on` gets each field number and a reader positioned at its value. */
function fields(bytes: Uint8Array, on: (field: number, type: WireType, r: BinaryReader) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (!on(field, type, r)) r.skip(type, field);
  }
}

function decodeValue(bytes: Uint8Array): StructValue {
  let v: StructValue = null;
  fields(bytes, (f, _t, r) => {
    switch (f) {
      case 1:
        r.int32();
        v = null;
        return true;
      case 2:
        v = r.double();
        return true;
      case 3:
        v = r.string();
        return true;
      case 4:
        v = r.bool();
        return true;
      case 5:
        v = decodeStruct(r.bytes());
        return true;
      case 6: {
        const list: StructValue[] = [];
        fields(r.bytes(), (f, _t, r) => {
          if (f !== 1) return false;
          list.push(decodeValue(r.bytes()));
          return true;
        });
        v = list;
        return true;
      }
      default:
        return false;
    }
  });
  return v;
}

export function decodeStruct(bytes: Uint8Array): StructObject {
  const out: StructObject = {};
  fields(bytes, (f, _t, r) => {
    if (f !== 1) return false;
    let key = "";
    let value: StructValue = null;
    fields(r.bytes(), (f, _t, r) => {
      if (f === 1) key = r.string();
      else if (f === 2) value = decodeValue(r.bytes());
      else return false;
      return true;
    });
    out[key] = value;
    return true;
  });
  return out;
}

function decodeHeaderValue(bytes: Uint8Array): Header {
  let name = "";
  let value = "";
  let raw: string | undefined;
  fields(bytes, (f, _t, r) => {
    if (f === 1) name = r.string();
    else if (f === 2) value = r.string();
    else if (f === 3) raw = latin1(r.bytes());
    else return false;
    return true;
  });
  // raw_value wins when present (Envoy sends only raw_value since 1.27).
  return [name, raw ?? value];
}

function decodeHeaderMap(bytes: Uint8Array): Header[] {
  const out: Header[] = [];
  fields(bytes, (f, _t, r) => {
    if (f !== 1) return false;
    out.push(decodeHeaderValue(r.bytes()));
    return true;
  });
  return out;
}

/**
 * HeaderValueOption. "The `append` field in HeaderValueOption defaults to false when used in this
 * message" (HeaderMutation.set_headers): without `append`, the value replaces, unless append_action
 * says ADD_IF_ABSENT or OVERWRITE_IF_EXISTS (APPEND_IF_EXISTS_OR_ADD is its zero value, which proto3
 * cannot tell from unset; OVERWRITE_IF_EXISTS_OR_ADD replaces too).
 */
function decodeOption(bytes: Uint8Array): HeaderMutation["set"][number] {
  let header: Header = ["", ""];
  let append: boolean | undefined;
  let action = 0;
  fields(bytes, (f, _t, r) => {
    if (f === 1) header = decodeHeaderValue(r.bytes());
    else if (f === 2) {
      append = false;
      fields(r.bytes(), (f, _t, r) => {
        if (f !== 1) return false;
        append = r.bool();
        return true;
      });
    } else if (f === 3) action = r.int32();
    else return false;
    return true;
  });
  const kind: SetAction =
    append === true ? "append" : action === 1 ? "addIfAbsent" : action === 3 ? "overwriteIfExists" : "set";
  return { name: header[0], value: header[1], action: kind };
}

function decodeMutation(bytes: Uint8Array): HeaderMutation {
  const m: HeaderMutation = { set: [], remove: [] };
  fields(bytes, (f, _t, r) => {
    if (f === 1) m.set.push(decodeOption(r.bytes()));
    else if (f === 2) m.remove.push(r.string());
    else return false;
    return true;
  });
  return m;
}

/** HeadersResponse / BodyResponse { CommonResponse response = 1 { header_mutation = 2 } } */
function decodeCommon(bytes: Uint8Array): HeaderMutation {
  let mutation: HeaderMutation = { set: [], remove: [] };
  fields(bytes, (f, _t, r) => {
    if (f !== 1) return false;
    fields(r.bytes(), (f, _t, r) => {
      if (f !== 2) return false;
      mutation = decodeMutation(r.bytes());
      return true;
    });
    return true;
  });
  return mutation;
}

const RESPONSE_KINDS = {
  1: "requestHeaders",
  2: "responseHeaders",
  3: "requestBody",
  4: "responseBody",
} as const;

export function decodeProcessingResponse(bytes: Uint8Array): ProcessingResponse {
  let out: ProcessingResponse | undefined;
  let dynamicMetadata: StructObject | undefined;
  fields(bytes, (f, _t, r) => {
    if (f === 1 || f === 2 || f === 3 || f === 4) {
      out = { kind: RESPONSE_KINDS[f], mutation: decodeCommon(r.bytes()) };
      return true;
    }
    if (f === 7) {
      const imm = {
        kind: "immediate" as const,
        status: 0,
        headers: { set: [], remove: [] } as HeaderMutation,
      };
      let body: Uint8Array = new Uint8Array();
      let details = "";
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1)
          fields(r.bytes(), (f, _t, r) => {
            if (f !== 1) return false;
            imm.status = r.int32();
            return true;
          });
        else if (f === 2) imm.headers = decodeMutation(r.bytes());
        else if (f === 3) body = r.bytes();
        else if (f === 5) details = r.string();
        else return false;
        return true;
      });
      out = { ...imm, body, details };
      return true;
    }
    if (f === 8) {
      dynamicMetadata = decodeStruct(r.bytes());
      return true;
    }
    if (f === 5 || f === 6 || f === 11) {
      out = { kind: "other", field: f };
      return false;
    }
    return false;
  });
  const res: ProcessingResponse = out ?? { kind: "other", field: 0 };
  if (dynamicMetadata !== undefined && res.kind !== "other") res.dynamicMetadata = dynamicMetadata;
  return res;
}

// The other direction, for pickers written in tests.

export function decodeProcessingRequest(bytes: Uint8Array): ProcessingRequest {
  let out: ProcessingRequest | undefined;
  let metadata: Record<string, StructObject> | undefined;
  fields(bytes, (f, _t, r) => {
    if (f === 2 || f === 3) {
      const kind = f === 2 ? "requestHeaders" : "responseHeaders";
      let headers: Header[] = [];
      let endOfStream = false;
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1) headers = decodeHeaderMap(r.bytes());
        else if (f === 3) endOfStream = r.bool();
        else return false;
        return true;
      });
      out = { kind, headers, endOfStream };
      return true;
    }
    if (f === 4 || f === 5) {
      let body: Uint8Array = new Uint8Array();
      let endOfStream = false;
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1) body = r.bytes();
        else if (f === 2) endOfStream = r.bool();
        else return false;
        return true;
      });
      out = { kind: f === 4 ? "requestBody" : "responseBody", body, endOfStream };
      return true;
    }
    if (f === 8) {
      const m: Record<string, StructObject> = {};
      fields(r.bytes(), (f, _t, r) => {
        if (f !== 1) return false;
        let ns = "";
        let s: StructObject = {};
        fields(r.bytes(), (f, _t, r) => {
          if (f === 1) ns = r.string();
          else if (f === 2) s = decodeStruct(r.bytes());
          else return false;
          return true;
        });
        m[ns] = s;
        return true;
      });
      metadata = m;
      return true;
    }
    return false;
  });
  if (out === undefined) throw new Error("ProcessingRequest without a request");
  if (metadata !== undefined && (out.kind === "requestHeaders" || out.kind === "responseHeaders"))
    out.metadata = metadata;
  return out;
}

function encodeMutation(w: BinaryWriter, m: HeaderMutation): void {
  for (const s of m.set)
    message(w, 1, (w) => {
      message(w, 1, (w) => {
        str(w, 1, s.name);
        if (s.value !== "") w.tag(3, WireType.LengthDelimited).bytes(Buffer.from(s.value, "latin1"));
      });
      if (s.action === "append") message(w, 2, (w) => w.tag(1, WireType.Varint).bool(true));
      const action = { addIfAbsent: 1, overwriteIfExists: 3 }[
        s.action as "addIfAbsent" | "overwriteIfExists"
      ];
      if (action !== undefined) w.tag(3, WireType.Varint).int32(action);
    });
  for (const name of m.remove) w.tag(2, WireType.LengthDelimited).string(name);
}

export function encodeProcessingResponse(r: ProcessingResponse): Uint8Array {
  const w = new BinaryWriter();
  if (r.kind === "other") return w.finish();
  if (r.kind === "immediate") {
    message(w, 7, (w) => {
      message(w, 1, (w) => w.tag(1, WireType.Varint).int32(r.status));
      message(w, 2, (w) => encodeMutation(w, r.headers));
      if (r.body.length > 0) w.tag(3, WireType.LengthDelimited).bytes(r.body);
      str(w, 5, r.details);
    });
  } else {
    const field = { requestHeaders: 1, responseHeaders: 2, requestBody: 3, responseBody: 4 }[r.kind];
    message(w, field, (w) => message(w, 1, (w) => message(w, 2, (w) => encodeMutation(w, r.mutation))));
  }
  if (r.dynamicMetadata !== undefined) {
    const md = r.dynamicMetadata;
    message(w, 8, (w) => encodeStruct(w, md));
  }
  return w.finish();
}

/** gRPC length-prefixed message framing (uncompressed). */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits gRPC frames out of a byte stream: push chunks, get whole messages. */
export class Deframer {
  #buf: Buffer = Buffer.alloc(0);
  readonly #max: number;
  constructor(max = 4 * 1024 * 1024) {
    this.#max = max;
  }
  push(chunk: Buffer): Buffer[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.#buf.length < 5) return out;
      if (this.#buf[0] !== 0) throw new Error("compressed gRPC message (no compression was negotiated)");
      const size = this.#buf.readUInt32BE(1);
      if (size > this.#max) throw new Error(`gRPC message of ${size} bytes exceeds ${this.#max}`);
      if (this.#buf.length < 5 + size) return out;
      out.push(this.#buf.subarray(5, 5 + size));
      this.#buf = this.#buf.subarray(5 + size);
    }
  }
}
