// A gRPC health check (grpc.health.v1.Health/Check) over plaintext HTTP/2, as the kubelet's `grpc`
// probe does it: one unary call with the probe's service name; the probe passes only when the call
// ends with grpc-status 0 and the answer's status is SERVING. The two messages are hand-encoded
// (the project has no gRPC library):
//
//   message HealthCheckRequest  { string service = 1; }
//   message HealthCheckResponse { ServingStatus status = 1; }   // SERVING = 1
//
// Each gRPC message is framed as 1 byte "compressed" flag (0), 4 bytes big-endian length, payload.
import { connect, constants } from "node:http2";

export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

export type HealthResult = { ok: true; status: "SERVING" } | { ok: false; reason: string; status?: string };

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** A length-prefixed gRPC message carrying HealthCheckRequest{service}. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, "utf8");
  // An empty string is the field's default: proto3 leaves it out.
  const payload =
    name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function readVarint(buf: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  let factor = 1;
  let i = offset;
  for (;;) {
    if (i >= buf.length) throw new Error("truncated varint");
    const byte = buf[i++] ?? 0;
    value += (byte & 0x7f) * factor;
    if ((byte & 0x80) === 0) return { value, next: i };
    factor *= 128;
    if (factor > 2 ** 63) throw new Error("varint too long");
  }
}

/**
 * The ServingStatus of a gRPC-framed HealthCheckResponse (the body of the call). Unknown fields
 * are skipped; a missing status field is UNKNOWN (0), as in proto3.
 */
export function decodeHealthCheckResponse(body: Buffer): number {
  if (body.length < 5) throw new Error(`response of ${body.length} bytes: no gRPC message`);
  if (body.readUInt8(0) !== 0) throw new Error("compressed response (not requested)");
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new Error(`truncated message (${body.length - 5} of ${length} bytes)`);
  const msg = body.subarray(5, 5 + length);
  let status = 0;
  let i = 0;
  while (i < msg.length) {
    const key = readVarint(msg, i);
    i = key.next;
    const field = Math.floor(key.value / 8);
    const wire = key.value & 7;
    if (wire === 0) {
      const v = readVarint(msg, i);
      i = v.next;
      if (field === 1) status = v.value;
    } else if (wire === 2) {
      const len = readVarint(msg, i);
      i = len.next + len.value;
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
    if (i > msg.length) throw new Error("truncated field");
  }
  return status;
}

/** A grpc-message trailer (percent-encoded) as one printable line. */
function grpcMessage(raw: string): string {
  let text = raw;
  try {
    text = decodeURIComponent(raw);
  } catch {
    // not valid percent-encoding: as sent
  }
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, " ").slice(0, 200);
}

/** One Health/Check call to `host:port` for `service` ("" = the server as a whole). */
export function grpcHealthCheck(
  host: string,
  port: number,
  service: string,
  timeoutMs: number,
): Promise<HealthResult> {
  return new Promise((resolve) => {
    let settled = false;
    const authority = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    const session = connect(authority);
    const finish = (result: HealthResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: `timeout after ${timeoutMs} ms` }), timeoutMs);
    session.on("error", (error: Error) => finish({ ok: false, reason: error.message }));
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: "POST",
      [constants.HTTP2_HEADER_PATH]: "/grpc.health.v1.Health/Check",
      [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
      te: "trailers",
      "user-agent": "gatehouse-minicluster-kubelet",
    });
    const chunks: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    stream.on("response", (h) => (headers = { ...h }));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error: Error) => finish({ ok: false, reason: error.message }));
    stream.on("trailers", (trailers: Record<string, unknown>) => (headers = { ...headers, ...trailers }));
    stream.on("end", () => {
      const httpStatus = Number(headers[constants.HTTP2_HEADER_STATUS]);
      if (httpStatus !== 200) return finish({ ok: false, reason: `HTTP status ${httpStatus}` });
      const grpcStatus = headers["grpc-status"];
      if (grpcStatus !== "0") {
        const raw = headers["grpc-message"];
        const message = typeof raw === "string" && raw !== "" ? `: ${grpcMessage(raw)}` : "";
        const code = typeof grpcStatus === "string" ? grpcStatus : "missing";
        return finish({ ok: false, reason: `grpc-status ${code}${message}` });
      }
      let status: number;
      try {
        status = decodeHealthCheckResponse(Buffer.concat(chunks));
      } catch (error) {
        return finish({ ok: false, reason: `bad HealthCheckResponse: ${(error as Error).message}` });
      }
      const name = SERVING_STATUS[status] ?? `status ${status}`;
      finish(status === 1 ? { ok: true, status: "SERVING" } : { ok: false, reason: name, status: name });
    });
    stream.end(encodeHealthCheckRequest(service));
  });
}
