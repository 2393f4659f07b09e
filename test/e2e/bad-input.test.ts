// Bad input never takes good traffic down: an invalid YAML file, an object failing schema
// validation, a route HAProxy 2.6 cannot express, a listener on a port another process holds (left
// out, Programmed False, retried until the port is free). Good routes keep serving, /status names the file/object/field, route and Gateway
// statuses carry the conditions, and the pipeline (and HAProxy) keep running.
import assert from "node:assert/strict";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { describe, test } from "node:test";
import type { StatusDocument } from "../../src/admin/state.ts";
import type { StatusEntry } from "../../src/status/types.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service, type Obj } from "./resources.ts";

const harness = useHarness({
  backends: { echo: "http" },
  ports: 1,
  files: (h) => ({
    "gateway.yaml": gatewayFile(h),
    "good.yaml": docs(
      httpRoute("good", { hostnames: ["good.test"], rules: [{ backendRefs: [ref("echo")] }] }),
    ),
  }),
});

/** The Gateway; with `takenPort`, plus a listener on that port (which another process holds). */
function gatewayFile(h: Harness, takenPort?: number): string {
  return docs(
    gatewayClass(),
    gateway("gw", h.ip, [
      { name: "http", port: h.port },
      ...(takenPort !== undefined ? [{ name: "taken", port: takenPort }] : []),
    ]),
    service("echo", { endpoints: [h.backend("echo").endpoint] }),
  );
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

function object(status: StatusDocument, kind: string, name: string): StatusEntry {
  const found = status.objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found !== undefined, `${kind} ${name} not in /status`);
  return found;
}

function routeConditions(status: StatusDocument, name: string): Condition[] {
  const parents = object(status, "HTTPRoute", name).status["parents"] as Array<{ conditions: Condition[] }>;
  return parents.flatMap((p) => p.conditions);
}

function listenerCondition(status: StatusDocument, listener: string, type: string): Condition | undefined {
  const listeners = object(status, "Gateway", "gw").status["listeners"] as Array<{
    name: string;
    conditions: Condition[];
  }>;
  return listeners.find((l) => l.name === listener)?.conditions.find((c) => c.type === type);
}

/** What a TCP server sends first. */
function readBanner(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connect({ host, port });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

function gatewayCondition(status: StatusDocument, type: string): Condition | undefined {
  const conditions = object(status, "Gateway", "gw").status["conditions"] as Condition[];
  return conditions.find((c) => c.type === type);
}

async function goodStillServes(h: Harness): Promise<void> {
  const res = await h.get("/", { host: "good.test" });
  assert.equal(res.status, 200);
  assert.equal(res.echo?.backend, "echo");
  const ready = await fetch(`${h.adminUrl}/ready`);
  assert.equal(ready.status, 200);
  assert.equal(h.serve.haproxy.state, "running");
}

describe("bad input", () => {
  test("an invalid YAML file: reported with its file and line, the rest keeps serving", async (t) => {
    const h = harness();
    t.after(() => h.write({ "broken.yaml": null }));
    await h.write({ "broken.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n" });
    await goodStillServes(h);
    const status = await h.status();
    const error = status.errors.find((e) => e.file?.endsWith("/broken.yaml") === true);
    assert.ok(error !== undefined, JSON.stringify(status.errors));
    assert.ok(error.line !== undefined, "the error names the line");
    assert.equal(await h.metric('gatehouse_config_errors{kind="none"}'), 1);
  });

  test("an object failing schema validation: reported with file, object and field", async (t) => {
    const h = harness();
    t.after(() => h.write({ "schema.yaml": null }));
    await h.write({
      "schema.yaml": docs(
        httpRoute("bad-schema", {
          hostnames: ["bad.test"],
          rules: [{ matches: [{ path: { type: "Bogus", value: "/x" } }], backendRefs: [ref("echo")] }],
        }),
        // A valid route in the same file still loads.
        httpRoute("fine", { hostnames: ["fine.test"], rules: [{ backendRefs: [ref("echo")] }] }),
      ),
    });
    await goodStillServes(h);
    assert.equal((await h.get("/", { host: "fine.test" })).status, 200);
    assert.equal((await h.get("/x", { host: "bad.test" })).status, 404);
    const status = await h.status();
    const error = status.errors.find((e) => e.name === "bad-schema" && e.field?.endsWith(".type") === true);
    assert.ok(error !== undefined, JSON.stringify(status.errors));
    assert.ok(error.file?.endsWith("/schema.yaml"), error.file);
    assert.equal(error.kind, "HTTPRoute");
    assert.equal(error.namespace, "default");
    assert.match(error.field ?? "", /spec\.rules\[0\]\.matches\[0\]\.path\.type/);
    assert.match(error.message, /schema\.yaml#0 HTTPRoute default\/bad-schema: .*Bogus/);
  });

  test("a rule HAProxy cannot express answers 500, with a route condition; others serve", async (t) => {
    const h = harness();
    t.after(() => h.write({ "inexpressible.yaml": null }));
    const retry429: Obj = { codes: [429], attempts: 2 };
    await h.write({
      "inexpressible.yaml": docs(
        httpRoute("inexpressible", {
          hostnames: ["inexpressible.test"],
          rules: [
            {
              matches: [{ path: { type: "PathPrefix", value: "/retry" } }],
              retry: retry429,
              backendRefs: [ref("echo")],
            },
            { matches: [{ path: { type: "PathPrefix", value: "/fine" } }], backendRefs: [ref("echo")] },
          ],
        }),
      ),
    });
    await goodStillServes(h);
    assert.equal((await h.get("/retry", { host: "inexpressible.test" })).status, 500);
    assert.equal((await h.get("/fine", { host: "inexpressible.test" })).status, 200);
    const status = await h.status();
    const condition = routeConditions(status, "inexpressible").find((c) => c.type === "PartiallyInvalid");
    assert.ok(condition !== undefined, JSON.stringify(routeConditions(status, "inexpressible")));
    assert.equal(condition.status, "True");
    assert.equal(condition.reason, "UnsupportedValue");
    assert.match(condition.message, /429/);
    assert.equal(status.dataplane.lastApply?.result, "success");
  });

  test("a listener on a port another process holds: left out and retried, everything else serves", async (t) => {
    const h = harness();
    // The squatter takes a port of the kernel's choosing at this moment: a port reserved earlier
    // may meanwhile serve as the ephemeral source port of a connection to this address.
    const squatter: Server = createServer((socket) => socket.end("squatter\n"));
    await new Promise<void>((resolve) => squatter.listen(0, h.ip, resolve));
    const takenPort = (squatter.address() as AddressInfo).port;
    // Good traffic meanwhile: were HAProxy reloaded onto the taken port, 2.6 would pause the
    // serving worker's listeners while the new process retries the bind (about 2 s of refused
    // connections). None may fail.
    let running = true;
    const during = { ok: 0, failed: [] as string[], slowestMs: 0 };
    const traffic = (async () => {
      while (running) {
        const started = performance.now();
        try {
          const res = await h.get("/", { host: "good.test", timeoutMs: 8000 });
          if (res.status === 200) during.ok++;
          else during.failed.push(String(res.status));
        } catch (err) {
          during.failed.push(String(err));
        }
        during.slowestMs = Math.max(during.slowestMs, performance.now() - started);
      }
    })();
    try {
      const applied = await h.write({
        "gateway.yaml": gatewayFile(h, takenPort),
        "late.yaml": docs(
          httpRoute("late", { hostnames: ["late.test"], rules: [{ backendRefs: [ref("echo")] }] }),
        ),
      });
      assert.equal(applied.result, "success", h.logs.slice(-15).join("\n"));
      await goodStillServes(h);
      // The rest of the change is served: the new route on the free listener.
      assert.equal((await h.get("/", { host: "late.test" })).status, 200);
      const status = await h.status();
      const taken = listenerCondition(status, "taken", "Programmed");
      assert.equal(taken?.status, "False");
      assert.equal(taken?.reason, "Pending");
      assert.match(taken?.message ?? "", /cannot listen on .*:\d+: the address is in use by another process/);
      assert.equal(listenerCondition(status, "http", "Programmed")?.status, "True");
      assert.equal(gatewayCondition(status, "Programmed")?.status, "True");
      // The squatter keeps its port.
      assert.equal(await readBanner(h.ip, takenPort), "squatter\n");
    } finally {
      running = false;
      await traffic;
    }
    t.diagnostic(
      `while the port was held: ${during.ok} requests served, ${during.failed.length} failed, ` +
        `slowest ${Math.round(during.slowestMs)} ms`,
    );
    assert.deepEqual(during.failed, []);
    // Once the port is free, the retry (no change needed) serves the listener.
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    await h.waitFor(
      "the freed port to be served",
      async () => (await h.get("/", { host: "late.test", port: takenPort })).status === 200,
      20_000,
      100,
    );
    await h.waitFor(
      "the listener to report Programmed True",
      async () => listenerCondition(await h.status(), "taken", "Programmed")?.status === "True",
    );
    await h.write({ "gateway.yaml": gatewayFile(h), "late.yaml": null });
    await goodStillServes(h);
  });

  test("after all that, the pipeline is healthy and HAProxy never restarted", async () => {
    const h = harness();
    await goodStillServes(h);
    const status = await h.status();
    assert.deepEqual(status.errors, []);
    assert.equal(status.dataplane.lastApply?.result, "success");
    assert.ok(
      !status.dataplane.events.some((e) => /unexpectedly/.test(e.message)),
      JSON.stringify(status.dataplane.events),
    );
  });
});
