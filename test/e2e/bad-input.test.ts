// Bad input never takes good traffic down: an invalid YAML file, an object failing schema
// validation, a route HAProxy 2.6 cannot express, a listener on a port another process holds (the
// reload fails). Good routes keep serving, /status names the file/object/field, route and Gateway
// statuses carry the conditions, and the pipeline (and HAProxy) keep running.
import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Server } from "node:net";
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

  test("a listener on a port another process holds: refused before any reload, no interruption", async (t) => {
    const h = harness();
    // The squatter takes a port of the kernel's choosing at this moment: a port reserved earlier
    // may meanwhile serve as the ephemeral source port of a connection to this address.
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, h.ip, resolve));
    const takenPort = (squatter.address() as AddressInfo).port;
    // Good traffic meanwhile: were HAProxy reloaded, 2.6 would pause the serving worker's listeners
    // while the new process retries the bind (about 2 s of refused connections). None may fail.
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
      assert.equal(applied.result, "failure");
      await goodStillServes(h);
      // The new route is not served: the configuration carrying it was not loaded.
      assert.equal((await h.get("/", { host: "late.test" })).status, 404);
      const status = await h.status();
      assert.equal(status.dataplane.lastApply?.result, "failure");
      assert.match(status.dataplane.lastError?.error ?? "", /cannot listen on .*: the address is in use/);
      const programmed = gatewayCondition(status, "Programmed");
      assert.equal(programmed?.status, "False");
      assert.match(programmed?.message ?? "", /previous one keeps serving/);
      const ready = (await (await fetch(`${h.adminUrl}/ready`)).json()) as {
        ready: boolean;
        reason?: string;
      };
      assert.equal(ready.ready, true);
      assert.match(ready.reason ?? "", /failed to apply/);
    } finally {
      running = false;
      await traffic;
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
    t.diagnostic(
      `during the refused change: ${during.ok} requests served, ${during.failed.length} failed, ` +
        `slowest ${Math.round(during.slowestMs)} ms`,
    );
    assert.deepEqual(during.failed, []);
    // Once the port is free again, the next change applies (a failed apply is not retried by
    // itself: here the harness's marker file is the change).
    const retried = await h.write({});
    assert.equal(retried.result, "success", h.logs.slice(-15).join("\n"));
    assert.equal((await h.get("/", { host: "late.test" })).status, 200);
    assert.equal((await h.get("/", { host: "late.test", port: takenPort })).status, 200);
    assert.equal(gatewayCondition(await h.status(), "Programmed")?.status, "True");
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
