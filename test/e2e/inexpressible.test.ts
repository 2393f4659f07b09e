// One route author's inexpressible values never touch anyone else (issue: a regex with a newline,
// or one HAProxy's PCRE cannot compile, used to fail the whole render and freeze every later change).
// Under steady traffic to another team's route: a route with such values is applied, reported in its
// status with the field and why, its good rule still serves, the steady route never fails a request,
// and a later, unrelated change applies as usual.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { StatusDocument } from "../../src/admin/state.ts";
import { useHarness } from "./harness.ts";
import { load } from "./load.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service } from "./resources.ts";

const harness = useHarness({
  backends: { steady: "http", other: "http" },
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("steady", { endpoints: [h.backend("steady").endpoint] }),
      service("other", { endpoints: [h.backend("other").endpoint] }),
      httpRoute("steady", { hostnames: ["steady.test"], rules: [{ backendRefs: [ref("steady")] }] }),
    ),
  }),
});

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

function routeConditions(status: StatusDocument, name: string): Condition[] {
  const route = status.objects.find((o) => o.kind === "HTTPRoute" && o.metadata.name === name);
  assert.ok(route !== undefined, `HTTPRoute ${name} not in /status`);
  const parents = route.status["parents"] as Array<{ conditions: Condition[] }>;
  return parents.flatMap((p) => p.conditions);
}

const regex = (value: string) => ({ path: { type: "RegularExpression", value } });

describe("inexpressible values stay with their route", () => {
  test("bad regexes: reported on their rules, everything else applies and serves", async (t) => {
    const h = harness();
    const traffic = load(h, ["keep-alive", "new-connection"], { host: "steady.test", backend: "steady" });
    try {
      const applied = await h.write({
        "tenant.yaml": docs(
          httpRoute("tenant", {
            hostnames: ["tenant.test"],
            rules: [
              { matches: [regex("/x(a|b)\n  http-request deny")], backendRefs: [ref("other")] },
              { matches: [regex("/bad(")], backendRefs: [ref("other")] },
              { matches: [regex("/y(?<=a+)b")], backendRefs: [ref("other")] },
              { matches: [regex("/ok/[0-9]+")], backendRefs: [ref("other")] },
            ],
          }),
        ),
      });
      assert.equal(applied.result, "success", JSON.stringify(applied));

      const status = await h.status();
      const partial = routeConditions(status, "tenant").find((c) => c.type === "PartiallyInvalid");
      assert.ok(partial !== undefined, JSON.stringify(routeConditions(status, "tenant")));
      assert.equal(partial.reason, "UnsupportedValue");
      assert.match(
        partial.message,
        /spec\.rules\[0\]\.matches\[0\]\.path\.value: contains the control character/,
      );
      assert.match(partial.message, /spec\.rules\[1\]\.matches\[0\]\.path\.value: has an unbalanced '\('/);
      assert.match(partial.message, /spec\.rules\[2\]\.matches\[0\]\.path\.value: is not a valid RE2/);
      assert.equal(status.dataplane.lastApply?.result, "success");

      const good = await h.get("/ok/42", { host: "tenant.test" });
      assert.equal(good.status, 200);
      assert.equal(good.echo?.backend, "other");
      // The inexpressible matches are left out: nothing matches them, and nothing is denied.
      assert.equal((await h.get("/bad(", { host: "tenant.test" })).status, 404);

      // A later change of another route applies as usual.
      const later = await h.write({
        "later.yaml": docs(
          httpRoute("later", { hostnames: ["later.test"], rules: [{ backendRefs: [ref("other")] }] }),
        ),
      });
      assert.equal(later.result, "success", JSON.stringify(later));
      assert.equal((await h.get("/", { host: "later.test" })).status, 200);

      // Fixing the route brings its rules back.
      const fixed = await h.write({
        "tenant.yaml": docs(
          httpRoute("tenant", {
            hostnames: ["tenant.test"],
            rules: [{ matches: [regex("/x(a|b)")], backendRefs: [ref("other")] }],
          }),
        ),
      });
      assert.equal(fixed.result, "success");
      assert.equal((await h.get("/xa", { host: "tenant.test" })).status, 200);
      const after = routeConditions(await h.status(), "tenant");
      assert.equal(
        after.find((c) => c.type === "PartiallyInvalid"),
        undefined,
        JSON.stringify(after),
      );
    } finally {
      const { ok, failures } = await traffic.stop();
      t.diagnostic(`steady route: ${ok} requests served, ${failures.length} failed`);
      assert.ok(ok > 0, "the steady route was exercised");
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} failed requests`);
    }
  });
});
