import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend } from "../../../ir/types.ts";
import { checkIR } from "./check.ts";
import { pickerBackendLines, pickerKey } from "./epp.ts";

const ctx = { abs: (rel: string) => `/state/${rel}` };

function pool(failureMode: "FailOpen" | "FailClose", bridge?: string): IRBackend {
  return {
    id: "inferencepool/models/llm",
    source: { kind: "InferencePool", namespace: "models", name: "llm" },
    port: 8000,
    protocol: "http",
    endpoints: [{ address: "10.0.0.1", port: 8000 }],
    picker: {
      service: "models/epp:9002",
      endpoints: [{ address: "10.0.0.9", port: 9002 }],
      transport: "tls",
      failureMode,
      ...(bridge !== undefined ? { bridge } : {}),
    },
  };
}

test("bridged: the SPOE filter and messages, the action with the mode, one use-server per slot, the response", () => {
  const lines = pickerBackendLines(pool("FailOpen", "127.0.0.1:4000"), 3, ctx);
  assert.deepEqual(lines, [
    "filter spoe engine gh_epp config /state/spoe/epp.conf",
    "http-request wait-for-body time 10s",
    `http-request set-var(txn.gh_epp_key) str(${pickerKey("inferencepool/models/llm")})`,
    "http-request send-spoe-group gh_epp gh_epp_req",
    "http-request lua.gh_epp open",
    "use-server s1 if { var(txn.gh_epp_slot) -m str s1 }",
    "use-server s2 if { var(txn.gh_epp_slot) -m str s2 }",
    "use-server s3 if { var(txn.gh_epp_slot) -m str s3 }",
    "http-response send-spoe-group gh_epp gh_epp_res if { var(txn.gh_epp_id) -m found }",
    "http-response lua.gh_epp_served if { var(txn.gh_epp.ops) -m found }",
  ]);
  assert.match(pickerKey("inferencepool/models/llm"), /^[0-9a-f]{20}$/);
  assert.notEqual(pickerKey("inferencepool/models/llm"), pickerKey("inferencepool/models/other"));
});

test("not bridged (or a bridge that is no address): FailOpen balances, FailClose answers 503", () => {
  assert.ok(!pickerBackendLines(pool("FailOpen"), 2, ctx).some((l) => !l.startsWith("#")));
  assert.deepEqual(
    pickerBackendLines(pool("FailClose"), 2, ctx).filter((l) => !l.startsWith("#")),
    ["http-request deny deny_status 503"],
  );
  const hostile = pickerBackendLines(pool("FailClose", "127.0.0.1:1 if TRUE\nhttp-request allow"), 2, ctx);
  assert.deepEqual(
    hostile.filter((l) => !l.startsWith("#")),
    ["http-request deny deny_status 503"],
  );
  const plain = pool("FailOpen");
  delete plain.picker;
  assert.deepEqual(pickerBackendLines(plain, 2, ctx), []);
});

test("checkIR reports a picker bridge that is not an address", () => {
  const ir = { gateways: [], backends: [pool("FailClose", "evil host")] } as unknown as IR;
  assert.ok(checkIR(ir).some((i) => i.path === "backends[0].picker.bridge"));
});
