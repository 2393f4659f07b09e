import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../provider/clock.ts";
import { FakeKubeApi } from "../provider/kubernetes/testing/fake.ts";
import { LeaderElector, leaseTimingsProblem, microTime, type LeaseSpec } from "./leader.ts";

const LEASES = "/apis/coordination.k8s.io/v1/namespaces/gatehouse-system/leases";
const LEASE = `${LEASES}/gatehouse-status`;

/** Lets promise chains (fake API calls) run to completion. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

function candidate(api: FakeKubeApi, clock: ManualClock, identity: string, changes: boolean[] = []) {
  return new LeaderElector({
    api,
    namespace: "gatehouse-system",
    identity,
    clock,
    now: () => new Date(Date.UTC(2025, 0, 1) + clock.now()),
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onChange: (leader) => changes.push(leader),
  });
}

const spec = (api: FakeKubeApi): LeaseSpec => (api.get(LEASE) as { spec: LeaseSpec }).spec;

describe("LeaderElector", () => {
  test("creates the Lease when there is none and leads", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const changes: boolean[] = [];
    const a = candidate(api, clock, "a", changes);
    a.start();
    await flush();
    assert.ok(a.isLeader);
    assert.deepEqual(changes, [true]);
    assert.equal(spec(api).holderIdentity, "a");
    assert.equal(spec(api).leaseDurationSeconds, 15);
    assert.equal(spec(api).leaseTransitions, 0);
    assert.equal(spec(api).renewTime, "2025-01-01T00:00:00.000000Z");
    await a.stop();
  });

  test("a second candidate waits while the Lease is renewed, and takes over once it expires", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const a = candidate(api, clock, "a");
    const bChanges: boolean[] = [];
    const b = candidate(api, clock, "b", bChanges);
    a.start();
    await flush();
    b.start();
    await flush();
    assert.ok(a.isLeader);
    assert.ok(!b.isLeader);
    // a keeps renewing: b never leads.
    for (let i = 0; i < 20; i++) {
      clock.advance(2_000);
      await flush();
    }
    assert.ok(a.isLeader && !b.isLeader);
    // a dies without releasing (no more renewals): b waits leaseDuration from its last observation.
    const renewTime = spec(api).renewTime;
    await a.stop(); // releases... so simulate a crash instead: restore the lease as a left it
    api.put(LEASE, {
      ...(api.get(LEASE) as object),
      spec: { holderIdentity: "a", leaseDurationSeconds: 15, renewTime, leaseTransitions: 0 },
    });
    clock.advance(2_000);
    await flush();
    assert.ok(!b.isLeader, "just observed a change: the lease counts as fresh");
    for (let t = 0; t < 12_000; t += 2_000) {
      clock.advance(2_000);
      await flush();
    }
    assert.ok(!b.isLeader, "still within leaseDuration of the last observed change");
    clock.advance(2_000);
    await flush();
    clock.advance(2_000);
    await flush();
    assert.ok(b.isLeader);
    assert.deepEqual(bChanges, [true]);
    assert.equal(spec(api).holderIdentity, "b");
    assert.equal(spec(api).leaseTransitions, 1);
    await b.stop();
  });

  test("stop() releases the Lease so a successor leads at its next attempt", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const aChanges: boolean[] = [];
    const a = candidate(api, clock, "a", aChanges);
    const b = candidate(api, clock, "b");
    a.start();
    await flush();
    b.start();
    await flush();
    await a.stop();
    assert.deepEqual(aChanges, [true, false]);
    assert.equal(spec(api).holderIdentity, undefined);
    clock.advance(2_000);
    await flush();
    assert.ok(b.isLeader);
    await b.stop();
  });

  test("a leader that cannot renew for renewDeadline steps down, and leads again when it can", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const changes: boolean[] = [];
    const a = candidate(api, clock, "a", changes);
    a.start();
    await flush();
    let down = true;
    api.intercept = () => {
      if (down) throw Object.assign(new Error("connect ECONNREFUSED"), { statusCode: undefined });
      return undefined;
    };
    for (let t = 0; t < 8_000; t += 2_000) {
      clock.advance(2_000);
      await flush();
    }
    assert.ok(a.isLeader, "within renewDeadline");
    clock.advance(2_000);
    await flush();
    assert.ok(!a.isLeader, "renewDeadline passed");
    down = false;
    clock.advance(2_000);
    await flush();
    assert.ok(a.isLeader, "the lease is still ours: renewed at once");
    assert.deepEqual(changes, [true, false, true]);
    await a.stop();
  });

  test("a renewal that hangs: the term ends at renewDeadline after the last renewal was sent, the fence aborts", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const changes: boolean[] = [];
    const a = candidate(api, clock, "a", changes);
    a.start();
    await flush();
    const fence = a.fence();
    assert.ok(fence !== undefined);
    assert.equal(fence.remainingMs(), 10_000);
    // From now on the API server accepts requests and never answers.
    api.intercept = () => new Promise(() => undefined);
    clock.advance(2_000);
    await flush();
    const renewal = api.requests.at(-1);
    assert.equal(renewal?.method, "GET");
    assert.equal(renewal?.options?.timeoutMs, 8_000, "bounded by what is left of the term");
    assert.equal(renewal?.options?.signal, fence.signal, "and cut off when the term ends");
    clock.advance(7_999);
    await flush();
    assert.ok(a.isLeader && !fence.signal.aborted);
    assert.equal(fence.remainingMs(), 1);
    clock.advance(1);
    await flush();
    assert.ok(!a.isLeader, "stepped down at the deadline although the renewal is still in flight");
    assert.ok(fence.signal.aborted);
    assert.equal(a.fence(), undefined);
    assert.deepEqual(changes, [true, false]);
  });

  test("a leader that finds another holder in the Lease steps down at once", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const a = candidate(api, clock, "a");
    a.start();
    await flush();
    const fence = a.fence();
    assert.ok(fence !== undefined);
    // Someone else wrote the Lease (e.g. we were paused longer than the lease duration).
    api.put(LEASE, {
      ...(api.get(LEASE) as object),
      spec: { holderIdentity: "b", leaseDurationSeconds: 15, renewTime: "2025-01-01T00:00:30.000000Z" },
    });
    clock.advance(2_000);
    await flush();
    assert.ok(!a.isLeader);
    assert.ok(fence.signal.aborted);
    assert.equal(spec(api).holderIdentity, "b", "their Lease is left alone");
    await a.stop();
    assert.equal(spec(api).holderIdentity, "b", "stop() does not release someone else's Lease");
  });

  test("failures are logged rate-limited: the first, one a minute, the recovery", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const lines: string[] = [];
    const a = new LeaderElector({
      api,
      namespace: "gatehouse-system",
      identity: "a",
      clock,
      now: () => new Date(Date.UTC(2025, 0, 1) + clock.now()),
      log: { info: (m) => lines.push(`INFO ${m}`), warn: (m) => lines.push(`WARN ${m}`) },
    });
    let down = true;
    api.intercept = () => {
      if (down) throw new Error("connect ECONNREFUSED");
      return undefined;
    };
    a.start();
    await flush();
    for (let t = 0; t < 90_000; t += 2_000) {
      clock.advance(2_000);
      await flush();
    }
    down = false;
    clock.advance(2_000);
    await flush();
    assert.deepEqual(lines, [
      "WARN leader election (lease gatehouse-system/gatehouse-status): connect ECONNREFUSED",
      "WARN leader election (lease gatehouse-system/gatehouse-status): still failing after 60 s (31 failures; last: connect ECONNREFUSED)",
      "INFO leader election (lease gatehouse-system/gatehouse-status): working again after 92 s (46 failures)",
      "INFO leader election: a is now the leader (lease gatehouse-system/gatehouse-status)",
    ]);
    await a.stop();
  });

  test("two candidates racing for a free Lease: exactly one wins (409 for the other)", async () => {
    const api = new FakeKubeApi();
    const clock = new ManualClock();
    const a = candidate(api, clock, "a");
    const b = candidate(api, clock, "b");
    a.start();
    b.start();
    await flush();
    assert.equal(Number(a.isLeader) + Number(b.isLeader), 1);
    await a.stop();
    await b.stop();
  });

  test("timings are checked as client-go does", () => {
    assert.equal(
      leaseTimingsProblem({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 }),
      undefined,
    );
    assert.match(
      leaseTimingsProblem({ leaseDurationMs: 15_000, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }) ?? "",
      /1\.2 × the retry period/,
    );
    assert.match(
      leaseTimingsProblem({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 0 }) ?? "",
      /positive/,
    );
  });

  test("rejects renewDeadline >= leaseDuration", () => {
    assert.throws(
      () =>
        new LeaderElector({
          api: new FakeKubeApi(),
          namespace: "x",
          identity: "a",
          clock: new ManualClock(),
          now: () => new Date(),
          leaseDurationMs: 5000,
          renewDeadlineMs: 5000,
        }),
      RangeError,
    );
  });

  test("microTime has six fractional digits", () => {
    assert.equal(microTime(new Date("2025-01-02T03:04:05.678Z")), "2025-01-02T03:04:05.678000Z");
  });
});
