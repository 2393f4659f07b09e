// The messages of Envoy's ext_authz gRPC service (envoy.service.auth.v3.Authorization/Check), the
// protocol the Gateway API names for ExternalAuth with protocol GRPC. Only the fields Gatehouse sends
// or reads are encoded, with their field numbers from envoy/service/auth/v3/{external_auth,
// attribute_context}.proto, envoy/config/core/v3/{base,address}.proto, envoy/type/v3/http_status.proto
// and google/rpc/status.proto. Unknown fields are skipped. Both directions of both messages are here:
// the bridge encodes CheckRequest and decodes CheckResponse; the test servers do the opposite.
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** AttributeContext.HttpRequest and the peer address: what the authorization service is told. */
export interface CheckRequest {
  /** Client address (source.address.socket_address). */
  sourceAddress: string;
  sourcePort: number;
  method: string;
  /** Lower-case names; repeated headers joined with "," (as the proto asks). */
  headers: Record<string, string>;
  /** Path and query, as in the request line. */
  path: string;
  host: string;
  scheme: string;
  protocol: string;
  /** Body bytes (raw_body), empty when the body is not forwarded. */
  body: Uint8Array;
  /** Request size in bytes, -1 when unknown. */
  size: number;
}

/** A header of OkHttpResponse/DeniedHttpResponse (HeaderValueOption). */
export interface CheckHeader {
  name: string;
  value: string;
  /** `append` (true: add a value; false, the default here: replace). */
  append: boolean;
}

export type CheckResponse =
  | { ok: true; headers: CheckHeader[]; headersToRemove: string[] }
  | { ok: false; grpcCode: number; message: string; status?: number; headers: CheckHeader[]; body: string };

function message(w: BinaryWriter, field: number, write: (w: BinaryWriter) => void): void {
  w.tag(field, WireType.LengthDelimited).fork();
  write(w);
  w.join();
}

function str(w: BinaryWriter, field: number, value: string): void {
  if (value !== "") w.tag(field, WireType.LengthDelimited).string(value);
}

export function encodeCheckRequest(r: CheckRequest): Uint8Array {
  const w = new BinaryWriter();
  // CheckRequest.attributes = 1
  message(w, 1, (w) => {
    // AttributeContext.source = 1 → Peer.address = 1 → Address.socket_address = 1
    message(w, 1, (w) =>
      message(w, 1, (w) =>
        message(w, 1, (w) => {
          str(w, 2, r.sourceAddress);
          if (r.sourcePort > 0) w.tag(3, WireType.Varint).uint32(r.sourcePort);
        }),
      ),
    );
    // AttributeContext.request = 4 → Request.http = 2 → HttpRequest
    message(w, 4, (w) =>
      message(w, 2, (w) => {
        str(w, 2, r.method);
        for (const name of Object.keys(r.headers).sort()) {
          // map<string, string> headers = 3: entries with key = 1, value = 2
          message(w, 3, (w) => {
            str(w, 1, name);
            str(w, 2, r.headers[name] ?? "");
          });
        }
        str(w, 4, r.path);
        str(w, 5, r.host);
        str(w, 6, r.scheme);
        if (r.size !== 0) w.tag(9, WireType.Varint).int64(r.size);
        str(w, 10, r.protocol);
        if (r.body.length > 0) w.tag(12, WireType.LengthDelimited).bytes(r.body);
      }),
    );
  });
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

export function decodeCheckRequest(bytes: Uint8Array): CheckRequest {
  const out: CheckRequest = {
    sourceAddress: "",
    sourcePort: 0,
    method: "",
    headers: {},
    path: "",
    host: "",
    scheme: "",
    protocol: "",
    body: new Uint8Array(),
    size: 0,
  };
  fields(bytes, (f, _t, r) => {
    if (f !== 1) return false;
    fields(r.bytes(), (f, _t, r) => {
      if (f === 1) {
        fields(r.bytes(), (f, _t, r) => {
          if (f !== 1) return false;
          fields(r.bytes(), (f, _t, r) => {
            if (f !== 1) return false;
            fields(r.bytes(), (f, _t, r) => {
              if (f === 2) out.sourceAddress = r.string();
              else if (f === 3) out.sourcePort = r.uint32();
              else return false;
              return true;
            });
            return true;
          });
          return true;
        });
        return true;
      }
      if (f !== 4) return false;
      fields(r.bytes(), (f, _t, r) => {
        if (f !== 2) return false;
        fields(r.bytes(), (f, _t, r) => {
          switch (f) {
            case 2:
              out.method = r.string();
              return true;
            case 3: {
              let key = "";
              let value = "";
              fields(r.bytes(), (f, _t, r) => {
                if (f === 1) key = r.string();
                else if (f === 2) value = r.string();
                else return false;
                return true;
              });
              out.headers[key] = value;
              return true;
            }
            case 4:
              out.path = r.string();
              return true;
            case 5:
              out.host = r.string();
              return true;
            case 6:
              out.scheme = r.string();
              return true;
            case 9:
              out.size = Number(r.int64());
              return true;
            case 10:
              out.protocol = r.string();
              return true;
            case 12:
              out.body = r.bytes();
              return true;
            default:
              return false;
          }
        });
        return true;
      });
      return true;
    });
    return true;
  });
  return out;
}

function encodeHeaders(w: BinaryWriter, field: number, headers: readonly CheckHeader[]): void {
  for (const h of headers) {
    // HeaderValueOption: header = 1 (HeaderValue: key = 1, value = 2), append = 2 (BoolValue: value = 1)
    message(w, field, (w) => {
      message(w, 1, (w) => {
        str(w, 1, h.name);
        str(w, 2, h.value);
      });
      if (h.append) message(w, 2, (w) => w.tag(1, WireType.Varint).bool(true));
    });
  }
}

export function encodeCheckResponse(r: CheckResponse): Uint8Array {
  const w = new BinaryWriter();
  // CheckResponse.status = 1 (google.rpc.Status: code = 1, message = 2)
  message(w, 1, (w) => {
    if (!r.ok && r.grpcCode !== 0) w.tag(1, WireType.Varint).int32(r.grpcCode);
    if (!r.ok) str(w, 2, r.message);
  });
  if (r.ok) {
    // ok_response = 3: headers = 2, headers_to_remove = 5
    message(w, 3, (w) => {
      encodeHeaders(w, 2, r.headers);
      for (const name of r.headersToRemove) w.tag(5, WireType.LengthDelimited).string(name);
    });
  } else {
    // denied_response = 2: status = 1 (HttpStatus: code = 1), headers = 2, body = 3
    message(w, 2, (w) => {
      if (r.status !== undefined) message(w, 1, (w) => w.tag(1, WireType.Varint).int32(r.status ?? 0));
      encodeHeaders(w, 2, r.headers);
      str(w, 3, r.body);
    });
  }
  return w.finish();
}

function decodeHeader(bytes: Uint8Array): CheckHeader {
  const h: CheckHeader = { name: "", value: "", append: false };
  fields(bytes, (f, _t, r) => {
    if (f === 1) {
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1) h.name = r.string();
        else if (f === 2) h.value = r.string();
        // raw_value = 3 (bytes), used by newer servers instead of value.
        else if (f === 3) h.value = new TextDecoder().decode(r.bytes());
        else return false;
        return true;
      });
      return true;
    }
    if (f === 2) {
      fields(r.bytes(), (f, _t, r) => {
        if (f !== 1) return false;
        h.append = r.bool();
        return true;
      });
      return true;
    }
    // append_action = 3: APPEND_IF_EXISTS_OR_ADD (0) is the default; OVERWRITE_IF_EXISTS_OR_ADD (2).
    if (f === 3) {
      const action = r.int32();
      if (action === 0) h.append = true;
      if (action === 2) h.append = false;
      return true;
    }
    return false;
  });
  return h;
}

/** Decodes a CheckResponse; the gRPC status of the call itself is checked by the caller. */
export function decodeCheckResponse(bytes: Uint8Array): CheckResponse {
  let code = 0;
  let text = "";
  let ok: { headers: CheckHeader[]; headersToRemove: string[] } | undefined;
  let denied: { status?: number; headers: CheckHeader[]; body: string } | undefined;
  fields(bytes, (f, _t, r) => {
    if (f === 1) {
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1) code = r.int32();
        else if (f === 2) text = r.string();
        else return false;
        return true;
      });
      return true;
    }
    if (f === 3) {
      const o: { headers: CheckHeader[]; headersToRemove: string[] } = { headers: [], headersToRemove: [] };
      fields(r.bytes(), (f, _t, r) => {
        if (f === 2) o.headers.push(decodeHeader(r.bytes()));
        else if (f === 5) o.headersToRemove.push(r.string());
        else return false;
        return true;
      });
      ok = o;
      return true;
    }
    if (f === 2) {
      const d: { status?: number; headers: CheckHeader[]; body: string } = { headers: [], body: "" };
      fields(r.bytes(), (f, _t, r) => {
        if (f === 1) {
          fields(r.bytes(), (f, _t, r) => {
            if (f !== 1) return false;
            d.status = r.int32();
            return true;
          });
        } else if (f === 2) d.headers.push(decodeHeader(r.bytes()));
        else if (f === 3) d.body = r.string();
        else return false;
        return true;
      });
      denied = d;
      return true;
    }
    return false;
  });
  if (code === 0) return { ok: true, headers: ok?.headers ?? [], headersToRemove: ok?.headersToRemove ?? [] };
  return {
    ok: false,
    grpcCode: code,
    message: text,
    ...(denied?.status !== undefined && denied.status !== 0 ? { status: denied.status } : {}),
    headers: denied?.headers ?? [],
    body: denied?.body ?? "",
  };
}
