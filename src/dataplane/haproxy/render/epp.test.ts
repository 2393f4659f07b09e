import assert from "node:assert/strict";
import { test } from "node:test";
import type { IR, IRBackend } from "../../../ir/types.ts";
import { checkIR } from "./check.ts";
import { pickerBackendLines, pickerKey } from "./epp.ts";

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

test("bridged: the action with the pool's key and mode, one use-server per slot, the response report", () => {
  const lines = pickerBackendLines(pool("FailOpen", "127.0.0.1:4000"), 3);
  assert.deepEqual(lines, [
    "http-request wait-for-body time 10s",
    `http-request lua.gh_epp 127.0.0.1:4000 ${pickerKey("inferencepool/models/llm")} open`,
    "use-server s1 if { var(txn.gh_epp_slot) -m str s1 }",
    "use-server s2 if { var(txn.gh_epp_slot) -m str s2 }",
    "use-server s3 if { var(txn.gh_epp_slot) -m str s3 }",
    "http-response lua.gh_epp_served 127.0.0.1:4000 if { var(txn.gh_epp_id) -m found }",
  ]);
  assert.match(pickerKey("inferencepool/models/llm"), /^[0-9a-f]{20}$/);
  assert.notEqual(pickerKey("inferencepool/models/llm"), pickerKey("inferencepool/models/other"));
});

test("not bridged (or a bridge that is no address): FailOpen balances, FailClose answers 503", () => {
  assert.ok(!pickerBackendLines(pool("FailOpen"), 2).some((l) => !l.startsWith("#")));
  assert.deepEqual(
    pickerBackendLines(pool("FailClose"), 2).filter((l) => !l.startsWith("#")),
    ["http-request deny deny_status 503"],
  );
  const hostile = pickerBackendLines(pool("FailClose", "127.0.0.1:1 if TRUE\nhttp-request allow"), 2);
  assert.deepEqual(
    hostile.filter((l) => !l.startsWith("#")),
    ["http-request deny deny_status 503"],
  );
  const plain = pool("FailOpen");
  delete plain.picker;
  assert.deepEqual(pickerBackendLines(plain, 2), []);
});

test("checkIR reports a picker bridge that is not an address", () => {
  const ir = { gateways: [], backends: [pool("FailClose", "evil host")] } as unknown as IR;
  assert.ok(checkIR(ir).some((i) => i.path === "backends[0].picker.bridge"));
});
