import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError } from "../errors.ts";
import type { IR } from "../ir/types.ts";
import { redactIR } from "./redact.ts";
import { AdminStateStore, inputErrorReport } from "./state.ts";

const IR_A: IR = { gateways: [], backends: [] };
const IR_B: IR = { gateways: [], backends: [{ id: "b" } as IR["backends"][number]] };
const at = () => new Date("2025-01-01T00:00:00Z");

describe("inputErrorReport", () => {
  test("flattens the location, with the document as file#index", () => {
    const error = new InputError("must start with /", {
      file: "routes.yaml",
      index: 2,
      kind: "HTTPRoute",
      namespace: "default",
      name: "web",
      field: "spec.rules[0].matches[0].path.value",
    });
    assert.deepEqual(inputErrorReport(error), {
      message: "routes.yaml#2 HTTPRoute default/web: spec.rules[0].matches[0].path.value: must start with /",
      detail: "must start with /",
      file: "routes.yaml",
      document: "routes.yaml#2",
      index: 2,
      kind: "HTTPRoute",
      namespace: "default",
      name: "web",
      field: "spec.rules[0].matches[0].path.value",
    });
  });

  test("a syntax error carries line and column, a file error only the file", () => {
    assert.deepEqual(
      inputErrorReport(new InputError("bad", { file: "a.yaml", index: 0, line: 3, column: 5 })),
      {
        message: "a.yaml#0: line 3, column 5: bad",
        detail: "bad",
        file: "a.yaml",
        document: "a.yaml#0",
        index: 0,
        line: 3,
        column: 5,
      },
    );
    assert.deepEqual(inputErrorReport(new InputError("does not exist", { file: "cfg" })), {
      message: "cfg: does not exist",
      detail: "does not exist",
      file: "cfg",
    });
  });
});

describe("AdminStateStore", () => {
  test("not ready before any input, nor before the first configuration is programmed", () => {
    const store = new AdminStateStore(at);
    assert.deepEqual(store.ready(), { ready: false, reason: "no configuration loaded yet" });
    assert.equal(store.config(), undefined);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    assert.deepEqual(store.ready(), {
      ready: false,
      reason: "configuration generation 1 not programmed yet",
    });
    store.recordApply(1, IR_A, { ok: false, error: new Error("haproxy -c failed"), method: "start" });
    assert.deepEqual(store.ready(), {
      ready: false,
      reason: "configuration generation 1 failed to apply: haproxy -c failed",
    });
    assert.equal(store.config(), undefined);
  });

  test("ready once programmed; a later failure keeps the old configuration in effect and says so", () => {
    const store = new AdminStateStore(at);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    assert.deepEqual(store.ready(), { ready: true });
    assert.deepEqual(store.config(), redactIR(IR_A));

    store.setInput({ generation: 2, errors: [], warnings: [] });
    assert.deepEqual(store.ready(), { ready: true, reason: "serving generation 1; generation 2 is pending" });
    store.recordApply(2, IR_B, { ok: false, error: "reload failed", method: "reload" });
    assert.deepEqual(store.ready(), {
      ready: true,
      reason: "serving generation 1; generation 2 failed to apply: reload failed",
    });
    assert.deepEqual(store.config(), redactIR(IR_A), "the IR in effect is still the old one");
    const failure = {
      generation: 2,
      result: "failure",
      method: "reload",
      at: "2025-01-01T00:00:00.000Z",
      error: "reload failed",
    };
    assert.deepEqual(store.status().dataplane, {
      appliedGeneration: 1,
      lastApply: failure,
      lastError: failure,
      events: [],
    });
    store.recordProcessEvent("HAProxy exited unexpectedly (code 1, signal null); restarting");
    assert.deepEqual(store.status().dataplane.events, [
      {
        at: "2025-01-01T00:00:00.000Z",
        message: "HAProxy exited unexpectedly (code 1, signal null); restarting",
      },
    ]);

    store.setInput({ generation: 3, errors: [], warnings: [] });
    store.recordApply(3, IR_B, { ok: true, method: "runtime" });
    assert.deepEqual(store.ready(), { ready: true });
    assert.deepEqual(store.config(), redactIR(IR_B));
    assert.deepEqual(store.status().dataplane.lastError, failure, "the last error stays visible");
  });

  test("status carries objects, input errors and warnings of the latest input", () => {
    const store = new AdminStateStore(at);
    const error = new InputError("is required", {
      file: "a.yaml",
      index: 0,
      kind: "Gateway",
      field: "metadata.name",
    });
    store.setInput({ generation: 7, errors: [error], warnings: ["a.yaml#1: ignoring v1 Pod p"] });
    store.setStatuses([
      { apiVersion: "v1", kind: "Gateway", metadata: { name: "gw", namespace: "x" }, status: {} },
    ]);
    const status = store.status();
    assert.equal(status.generation, 7);
    assert.equal(status.objects.length, 1);
    assert.deepEqual(status.errors, [inputErrorReport(error)]);
    assert.deepEqual(status.warnings, ["a.yaml#1: ignoring v1 Pod p"]);
  });
});

describe("AdminStateStore readiness and listeners", () => {
  const gateway = (...listeners: Array<[string, "True" | "False", string?]>) => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name: "gw", namespace: "ns" },
    status: {
      listeners: listeners.map(([name, status, reason]) => ({
        name,
        conditions: [
          {
            type: "Programmed",
            status,
            reason: reason ?? (status === "True" ? "Programmed" : "Pending"),
            message: status === "True" ? "Listener is programmed" : "port 53 is in use",
            lastTransitionTime: "2025-01-01T00:00:00Z",
          },
        ],
      })),
    },
  });

  test("a configuration without any listener is not ready, and says so", () => {
    const store = new AdminStateStore(at);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    store.setStatuses([]);
    assert.deepEqual(store.ready(), {
      ready: false,
      reason: "no listener is programmed: generation 1 has no listener",
    });
  });

  test("a controller whose Gateways run in their own pods is ready without listeners of its own", () => {
    const store = new AdminStateStore(at, { listenersRequired: false });
    store.setInput({ generation: 1, errors: [], warnings: [] });
    assert.equal(store.ready().ready, false, "nothing published yet");
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    store.setStatuses([]);
    assert.equal(store.ready().ready, true);
  });

  test("every listener not programmed: not ready, with the listeners' reasons", () => {
    const store = new AdminStateStore(at);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    store.setStatuses([gateway(["dns", "False"], ["a", "False"], ["b", "False"], ["c", "False"])]);
    assert.deepEqual(store.ready(), {
      ready: false,
      reason:
        "no listener is programmed: ns/gw/dns: Pending: port 53 is in use; ns/gw/a: Pending: port 53 is in use; " +
        "ns/gw/b: Pending: port 53 is in use; and 1 more",
    });
    store.setInput({ generation: 2, errors: [], warnings: [] });
    store.recordApply(2, IR_A, { ok: true, method: "runtime" });
    store.setStatuses([gateway(["dns", "False"], ["web", "True"])]);
    assert.deepEqual(store.ready(), { ready: true });
  });

  test("statuses set before the apply count once the apply succeeds", () => {
    const store = new AdminStateStore(at);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.setStatuses([]);
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    assert.equal(store.ready().ready, false);
  });

  test("a newer generation without listeners that failed to apply leaves the served one ready", () => {
    const store = new AdminStateStore(at);
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.recordApply(1, IR_A, { ok: true, method: "start" });
    store.setStatuses([gateway(["web", "True"])]);
    store.setInput({ generation: 2, errors: [], warnings: [] });
    store.recordApply(2, IR_B, { ok: false, error: new Error("haproxy -c failed"), method: "reload" });
    store.setStatuses([]);
    assert.deepEqual(store.ready(), {
      ready: true,
      reason: "serving generation 1; generation 2 failed to apply: haproxy -c failed",
    });
  });

  test("subscribers hear every change, and the version moves with it", () => {
    const store = new AdminStateStore(at);
    let heard = 0;
    const unsubscribe = store.subscribe(() => heard++);
    const before = store.version();
    store.setInput({ generation: 1, errors: [], warnings: [] });
    store.setStatuses([]);
    store.recordApply(1, IR_A, { ok: true });
    store.recordSpares({});
    store.recordProcessEvent("started");
    assert.equal(heard, 5);
    assert.equal(store.version(), before + 5);
    unsubscribe();
    store.recordProcessEvent("again");
    assert.equal(heard, 5);
  });
});
