// The SPOP agent server on a real loopback socket, HAProxy's side played by testing-spop.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SpoaServer } from "./spoa.ts";
import { FrameType, SpopReader, decodeActions, encodeFrame, str, type Action, type Message } from "./spop.ts";
import { SpopTestClient } from "./testing-spop.ts";

function setVar(name: string, value: string): Action {
  return { action: "set-var", scope: "transaction", name, value: str(value) };
}

test("hello: version 2.0, the frame size asked for, pipelining; ACKs out of order by their ids", async () => {
  const gates = new Map<string, () => void>();
  const server = new SpoaServer({
    handle: async (messages: Message[]) => {
      const m = messages[0];
      const arg = m?.args[0]?.[1];
      const tag = arg?.type === "string" ? arg.value.toString() : "";
      await new Promise<void>((resolve) => gates.set(tag, resolve));
      return [setVar("tag", tag)];
    },
  });
  const address = await server.listen();
  const c = await SpopTestClient.open(address);
  try {
    c.hello();
    const hello = await c.next();
    assert.equal(hello?.type, FrameType.agentHello);
    const kv = new SpopReader(hello.payload).kvList();
    assert.deepEqual(kv.get("version"), str("2.0"));
    assert.deepEqual(kv.get("max-frame-size"), { type: "uint32", value: 16380n });
    assert.deepEqual(kv.get("capabilities"), str("pipelining"));
    c.notify(1n, 1n, [{ name: "m", args: [["t", str("first")]] }]);
    c.notify(2n, 7n, [{ name: "m", args: [["t", str("second")]] }]);
    while (gates.size < 2) await new Promise((r) => setTimeout(r, 10));
    gates.get("second")?.();
    const a = await c.next();
    assert.equal(a?.type, FrameType.ack);
    assert.deepEqual([a.streamId, a.frameId], [2n, 7n]);
    assert.deepEqual(decodeActions(a.payload), [setVar("tag", "second")]);
    gates.get("first")?.();
    const b = await c.next();
    assert.deepEqual([b?.streamId, b?.frameId], [1n, 1n]);
    assert.deepEqual(decodeActions(b?.payload ?? Buffer.alloc(0)), [setVar("tag", "first")]);
  } finally {
    c.close();
    await server.close();
  }
});

test("a healthcheck hello is answered and closed; an unsupported version is a disconnect", async () => {
  const server = new SpoaServer({ handle: () => Promise.resolve([]) });
  const address = await server.listen();
  try {
    const hc = await SpopTestClient.open(address);
    hc.hello([["healthcheck", { type: "bool", value: true }]]);
    assert.equal((await hc.next())?.type, FrameType.agentHello);
    assert.equal(await hc.next(), undefined);
    const old = await SpopTestClient.open(address);
    old.hello([], "1.0");
    const d = await old.next();
    assert.equal(d?.type, FrameType.agentDisconnect);
    assert.deepEqual(new SpopReader(d.payload).kvList().get("status-code"), { type: "uint32", value: 8n });
    assert.equal(await old.next(), undefined);
    const early = await SpopTestClient.open(address);
    early.notify(1n, 1n, []);
    assert.equal((await early.next())?.type, FrameType.agentDisconnect);
    const fragment = await SpopTestClient.open(address);
    fragment.hello();
    assert.equal((await fragment.next())?.type, FrameType.agentHello);
    fragment.write(
      encodeFrame({ type: FrameType.notify, flags: 0, streamId: 1n, frameId: 1n, payload: Buffer.alloc(0) }),
    );
    const d2 = await fragment.next();
    assert.equal(d2?.type, FrameType.agentDisconnect);
    assert.deepEqual(new SpopReader(d2.payload).kvList().get("status-code"), { type: "uint32", value: 10n });
  } finally {
    await server.close();
  }
});

test("a handler that fails gets an empty ACK (HAProxy then applies the failure mode)", async () => {
  const errors: unknown[] = [];
  const server = new SpoaServer({
    handle: () => Promise.reject(new Error("boom")),
    onError: (e) => errors.push(e),
  });
  const address = await server.listen();
  const c = await SpopTestClient.open(address);
  try {
    c.hello();
    await c.next();
    c.notify(3n, 4n, [{ name: "m", args: [] }]);
    const a = await c.next();
    assert.deepEqual([a?.type, a?.streamId, a?.frameId, a?.payload.length], [FrameType.ack, 3n, 4n, 0]);
    assert.equal(errors.length, 1);
  } finally {
    c.close();
    await server.close();
  }
});
