import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ManualClock } from "../provider/clock.ts";
import { FakeKubeApi } from "../provider/kubernetes/testing/fake.ts";
import { EventRecorder, type EventInput } from "./events.ts";

const EVENTS = "/apis/events.k8s.io/v1/namespaces/app/events";

function setup(options: { burst?: number } = {}) {
  const api = new FakeKubeApi();
  const clock = new ManualClock();
  const dropped: string[] = [];
  const recorder = new EventRecorder({
    api,
    clock,
    now: () => new Date(Date.UTC(2026, 0, 1) + clock.now()),
    reportingController: "gatehouse.dev/gateway-controller",
    reportingInstance: "pod-1_abcd",
    onDropped: (reason) => dropped.push(reason),
    ...options,
  });
  return { api, clock, recorder, dropped };
}

const programFailed = (note = "haproxy -c: parsing error"): EventInput => ({
  regarding: {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    namespace: "app",
    name: "gw",
    uid: "u1",
  },
  type: "Warning",
  reason: "Invalid",
  action: "Program",
  note,
});

type Stored = {
  metadata: { name: string };
  series?: { count: number; lastObservedTime: string };
  note: string;
  eventTime: string;
  regarding: Record<string, string>;
};
const stored = (api: FakeKubeApi): Stored[] =>
  [...api.objects.entries()]
    .filter(([path]) => path.startsWith(`${EVENTS}/`))
    .map(([, o]) => o as unknown as Stored);

async function flush(recorder: EventRecorder): Promise<void> {
  await recorder.flush();
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  await recorder.flush();
}

describe("EventRecorder", () => {
  test("an Event in the regarding object's namespace, with the fields events.k8s.io/v1 requires", async () => {
    const { api, recorder } = setup();
    recorder.record(programFailed());
    await flush(recorder);
    const [event] = stored(api);
    assert.ok(event !== undefined);
    assert.match(event.metadata.name, /^gw\.[0-9a-f]{16}$/);
    assert.deepEqual(
      { ...(event as unknown as Record<string, unknown>), metadata: undefined },
      {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: undefined,
        eventTime: "2026-01-01T00:00:00.000000Z",
        reportingController: "gatehouse.dev/gateway-controller",
        reportingInstance: "pod-1_abcd",
        action: "Program",
        reason: "Invalid",
        type: "Warning",
        note: "haproxy -c: parsing error",
        regarding: {
          apiVersion: "gateway.networking.k8s.io/v1",
          kind: "Gateway",
          namespace: "app",
          name: "gw",
          uid: "u1",
        },
      },
    );
  });

  test("repeats are one Event with a series, its count written at most every 30 s", async () => {
    const { api, clock, recorder } = setup();
    recorder.record(programFailed());
    await flush(recorder);
    for (let i = 0; i < 9; i++) {
      clock.advance(1_000);
      recorder.record(programFailed("a different note: not part of the key"));
    }
    await flush(recorder);
    assert.equal(api.writes.length, 1, "no write before the flush interval");
    clock.advance(21_000); // 30 s after the first
    await flush(recorder);
    assert.equal(stored(api).length, 1);
    assert.deepEqual(stored(api)[0]?.series, { count: 10, lastObservedTime: "2026-01-01T00:00:09.000000Z" });
    assert.equal(stored(api)[0]?.note, "haproxy -c: parsing error", "the first note stays");
    assert.deepEqual(
      api.writes.map((w) => w.method),
      ["POST", "PATCH"],
    );
    // Quiet for longer than the series window: the next one is a new Event.
    clock.advance(6 * 60_000);
    recorder.record(programFailed());
    await flush(recorder);
    assert.equal(stored(api).length, 2);
  });

  test("different reasons, actions or objects are different Events", async () => {
    const { api, recorder } = setup();
    recorder.record(programFailed());
    recorder.record({ ...programFailed(), reason: "AddressNotUsable" });
    recorder.record({ ...programFailed(), action: "Accept" });
    recorder.record({ ...programFailed(), regarding: { ...programFailed().regarding, name: "other" } });
    await flush(recorder);
    assert.equal(stored(api).length, 4);
  });

  test("rate limited per object: a burst, then one per refill interval", async () => {
    const { api, clock, recorder, dropped } = setup({ burst: 3 });
    for (let i = 0; i < 5; i++) recorder.record({ ...programFailed(), reason: `R${i}` });
    recorder.record({
      ...programFailed(),
      reason: "Other",
      regarding: { ...programFailed().regarding, name: "b" },
    });
    await flush(recorder);
    assert.equal(stored(api).length, 4, "3 about gw, 1 about b");
    assert.deepEqual(dropped, ["rateLimited", "rateLimited"]);
    clock.advance(300_000);
    recorder.record({ ...programFailed(), reason: "Later" });
    recorder.record({ ...programFailed(), reason: "Later2" });
    await flush(recorder);
    assert.equal(stored(api).length, 5);
    assert.equal(dropped.length, 3);
  });

  test("a cluster-scoped object's Events go to `default`; notes are cut at 1 kB", async () => {
    const { api, recorder } = setup();
    recorder.record({
      regarding: { apiVersion: "gateway.networking.k8s.io/v1", kind: "GatewayClass", name: "gatehouse" },
      type: "Warning",
      reason: "InvalidParameters",
      action: "Accept",
      note: "x".repeat(5000),
    });
    await flush(recorder);
    const post = api.writes[0];
    assert.equal(post?.path, "/apis/events.k8s.io/v1/namespaces/default/events");
    assert.equal((post?.body as { note: string }).note.length, 1024);
  });

  test("a failed write is dropped and counted; recording never throws", async () => {
    const { api, recorder, dropped } = setup();
    api.intercept = () => {
      throw new Error("connect ECONNREFUSED");
    };
    recorder.record(programFailed());
    await flush(recorder);
    assert.deepEqual(dropped, ["writeFailed"]);
  });

  test("an expired Event (404 on the series update) is created again with the count", async () => {
    const { api, clock, recorder } = setup();
    recorder.record(programFailed());
    await flush(recorder);
    api.objects.clear();
    clock.advance(1_000);
    recorder.record(programFailed());
    clock.advance(30_000);
    await flush(recorder);
    assert.equal(stored(api).length, 1);
    assert.equal(stored(api)[0]?.series?.count, 2);
  });

  test("stop() sends what is queued, then records nothing", async () => {
    const { api, recorder } = setup();
    recorder.record(programFailed());
    await recorder.stop();
    recorder.record({ ...programFailed(), reason: "After" });
    await flush(recorder);
    assert.equal(stored(api).length, 1);
  });
});
