import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../clock.ts";
import { KubeApiError } from "./client.ts";
import { ApiServerReachability, isUnreachable } from "./reachability.ts";
import { FakeKubeApi } from "./testing/fake.ts";

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** An API whose /readyz answers per `state` ("down": connection refused; a number: that status). */
function setup() {
  const api = new FakeKubeApi();
  const clock = new ManualClock();
  const state = { readyz: "down" as "down" | number };
  api.intercept = (_method, path) => {
    if (path !== "/readyz") return undefined;
    if (state.readyz === "down") throw new Error("connect ECONNREFUSED");
    if (state.readyz !== 200)
      throw new KubeApiError(`GET /readyz: ${state.readyz}`, {
        statusCode: state.readyz,
        method: "GET",
        path,
      });
    return "ok";
  };
  const lines: string[] = [];
  const reach = new ApiServerReachability({
    api,
    clock,
    probeMs: 500,
    random: () => 0,
    log: { info: (m) => lines.push(`INFO ${m}`), warn: (m) => lines.push(`WARN ${m}`) },
  });
  const probes = () => api.requests.filter((r) => r.path === "/readyz").length;
  return { clock, state, reach, lines, probes };
}

async function step(clock: ManualClock, ms: number): Promise<void> {
  clock.advance(ms);
  await flush();
}

describe("ApiServerReachability", () => {
  test("after an outage every waiter resumes at the first ready probe, whatever its own backoff", async () => {
    const { clock, state, reach, lines, probes } = setup();
    const resumed: Array<[string, boolean, number]> = [];
    reach.waitForRecovery((r) => resumed.push(["a", r, clock.now()]), 30_000);
    reach.waitForRecovery((r) => resumed.push(["b", r, clock.now()]), 16_000);
    for (let i = 0; i < 20; i++) await step(clock, 500);
    assert.deepEqual(resumed, []);
    assert.equal(probes(), 20, "one probe per interval for all waiters");
    state.readyz = 500; // up, not ready yet (RBAC, CRDs still loading)
    await step(clock, 500);
    assert.deepEqual(resumed, []);
    state.readyz = 200;
    await step(clock, 500);
    assert.deepEqual(resumed, [
      ["a", true, 11_000],
      ["b", true, 11_000],
    ]);
    assert.equal(reach.waiting, 0);
    await step(clock, 5_000);
    assert.equal(probes(), 22, "no probes while nobody waits");
    assert.deepEqual(lines, [
      "WARN API server: not ready or unreachable (connect ECONNREFUSED); the last known objects stay in use",
      "INFO API server: working again after 10.5 s (21 failures)",
    ]);
  });

  test("when the API server is fine (only the caller's requests fail), the caller's own backoff holds", async () => {
    const { clock, state, reach } = setup();
    state.readyz = 200;
    const resumed: Array<[boolean, number]> = [];
    reach.waitForRecovery((r) => resumed.push([r, clock.now()]), 2_000);
    for (let i = 0; i < 3; i++) await step(clock, 500);
    assert.deepEqual(resumed, []);
    await step(clock, 500);
    assert.deepEqual(resumed, [[false, 2_000]]);
  });

  test("401, 403 and 404 from /readyz count as up (a cluster that hides it)", async () => {
    const { clock, state, reach } = setup();
    const resumed: boolean[] = [];
    reach.waitForRecovery((r) => resumed.push(r), 60_000);
    await step(clock, 500);
    state.readyz = 403;
    await step(clock, 500);
    assert.deepEqual(resumed, [true]);
  });

  test("a cancelled wait never resumes; stop() ends probing", async () => {
    const { clock, state, reach, probes } = setup();
    const resumed: string[] = [];
    const cancel = reach.waitForRecovery(() => resumed.push("a"), 0);
    reach.waitForRecovery(() => resumed.push("b"), 0);
    cancel();
    await step(clock, 500);
    reach.stop();
    state.readyz = 200;
    await step(clock, 5_000);
    assert.deepEqual(resumed, []);
    assert.equal(probes(), 1);
  });

  test("isUnreachable: network errors, 429 and 5xx; not 403, 404, 409, 410", () => {
    const e = (statusCode?: number) => new KubeApiError("x", { statusCode, method: "GET", path: "/" });
    assert.deepEqual(
      [undefined, 429, 500, 503, 403, 404, 409, 410].map((c) => isUnreachable(e(c))),
      [true, true, true, true, false, false, false, false],
    );
  });
});
