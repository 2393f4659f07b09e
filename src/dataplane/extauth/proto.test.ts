import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeCheckRequest,
  decodeCheckResponse,
  encodeCheckRequest,
  encodeCheckResponse,
  type CheckRequest,
} from "./proto.ts";

test("CheckResponse bytes, hand-encoded", () => {
  // 0a 02 08 07            status = 1 { code = 1: 7 }
  // 12 09                  denied_response = 2 (9 bytes)
  //   0a 03 08 91 03       status = 1 { code = 1: 401 }
  //   1a 02 6e 6f          body = 3: "no"
  const hex = "0a020807" + "1209" + "0a03089103" + "1a026e6f";
  const decoded = decodeCheckResponse(Buffer.from(hex, "hex"));
  assert.deepEqual(decoded, { ok: false, grpcCode: 7, message: "", status: 401, headers: [], body: "no" });
  assert.equal(
    Buffer.from(
      encodeCheckResponse({ ok: false, grpcCode: 7, message: "", status: 401, headers: [], body: "no" }),
    ).toString("hex"),
    hex,
  );
});

test("an OK CheckResponse: an absent status code is OK; headers, append and headers_to_remove", () => {
  const bytes = encodeCheckResponse({
    ok: true,
    headers: [
      { name: "x-user", value: "alice", append: false },
      { name: "x-group", value: "a", append: true },
    ],
    headersToRemove: ["authorization"],
  });
  assert.deepEqual(decodeCheckResponse(bytes), {
    ok: true,
    headers: [
      { name: "x-user", value: "alice", append: false },
      { name: "x-group", value: "a", append: true },
    ],
    headersToRemove: ["authorization"],
  });
  // An empty message (status absent) allows, as the proto says (code 0 = OK).
  assert.deepEqual(decodeCheckResponse(new Uint8Array()), { ok: true, headers: [], headersToRemove: [] });
});

test("CheckRequest: HttpRequest fields under attributes.request.http", () => {
  const req: CheckRequest = {
    sourceAddress: "192.0.2.1",
    sourcePort: 0,
    method: "GET",
    headers: { authorization: "Bearer x", "x-a": "1,2" },
    path: "/p?q",
    host: "h.test",
    scheme: "http",
    protocol: "HTTP/1.1",
    body: new Uint8Array([1, 2]),
    size: 2,
  };
  const bytes = encodeCheckRequest(req);
  assert.deepEqual(decodeCheckRequest(bytes), req);
  // attributes (field 1) → request (field 4) → http (field 2) → method (field 2) "GET"
  const hex = Buffer.from(bytes).toString("hex");
  assert.ok(hex.startsWith("0a"), "CheckRequest.attributes = 1");
  assert.ok(hex.includes("1203474554"), "HttpRequest.method = 2: GET");
});
