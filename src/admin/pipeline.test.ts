// The pieces wired as `gatehouse serve` will wire them: file provider → translator → admin state →
// admin server (the data plane is faked by recording every translated IR as applied).
import assert from "node:assert/strict";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createMetrics, recordConfigErrors } from "../observability/metrics.ts";
import { FileProvider } from "../provider/file/provider.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../translate/index.ts";
import { startAdminServer } from "./server.ts";
import { AdminStateStore } from "./state.ts";
import type { StatusDocument } from "./state.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";

test("provider updates reach /status, /config, /ready and /metrics", async () => {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-admin-"));
  const store = new AdminStateStore();
  const metrics = createMetrics({ defaultMetrics: false });
  const provider = new FileProvider({ path: root, debounceMs: 10 });
  const server = await startAdminServer({ state: store, registry: metrics.registry, port: 0 });
  const url = server.address?.url ?? assert.fail("no address");
  const getJSON = async (path: string) => {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: await response.json() };
  };
  try {
    await cp(fileURLToPath(new URL("../../examples/basic", import.meta.url)), root, { recursive: true });
    await writeFile(join(root, "broken.yaml"), "apiVersion: v1\nkind: Service\nmetadata:\n  name: [\n");
    assert.equal((await getJSON("/ready")).status, 503);
    await provider.start((update) => {
      store.setInput(update);
      recordConfigErrors(metrics, update.errors);
      const result = translate(update.snapshot, {
        controllerName: DEFAULT_CONTROLLER_NAME,
        now: "2025-01-01T00:00:00Z",
        validators: haproxyValidators,
      });
      metrics.translations.inc();
      store.setStatuses(result.statuses);
      store.recordApply(update.generation, result.ir, { ok: true, method: "start" });
    });

    assert.equal((await getJSON("/ready")).status, 200);
    const status = (await getJSON("/status")).body as StatusDocument;
    assert.equal(status.generation, 1);
    assert.ok(status.objects.some((object) => object.kind === "Gateway"));
    assert.ok(status.objects.some((object) => object.kind === "HTTPRoute"));
    assert.equal(status.errors.length, 1);
    assert.equal(status.errors[0]?.file, join(root, "broken.yaml"));
    assert.equal(status.errors[0]?.document, `${join(root, "broken.yaml")}#0`);
    assert.equal(status.dataplane.appliedGeneration, 1);
    const config = (await getJSON("/config")).body as { gateways: unknown[] };
    assert.ok(config.gateways.length > 0);
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /gatehouse_config_errors\{kind="none"\} 1/);
    assert.match(text, /gatehouse_translations_total 1/);

    await rm(join(root, "broken.yaml"));
    const deadline = Date.now() + 5000;
    while (store.status().generation !== 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    const fixed = (await getJSON("/status")).body as StatusDocument;
    assert.equal(fixed.generation, 2);
    assert.deepEqual(fixed.errors, []);
  } finally {
    await provider.stop();
    await server.close();
    await rm(root, { recursive: true, force: true });
  }
});
