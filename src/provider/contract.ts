// The behaviour every Provider must show, as a case suite each implementation runs against itself
// through a small harness (file provider: a temp directory; kubernetes provider: an API server).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Provider, ProviderUpdate } from "./types.ts";

/** Drives one provider implementation's input. Sources are named sets of objects (YAML text). */
export interface ProviderHarness {
  /** A provider whose input holds `sources`, not started. */
  create(sources: Record<string, string>): Promise<HarnessInstance>;
}

export interface HarnessInstance {
  provider: Provider;
  /** Creates or replaces a source (`undefined` removes it). */
  set(name: string, yaml: string | undefined): Promise<void>;
  /** Releases what `create` made (after the provider was stopped). */
  cleanup(): Promise<void>;
}

const service = (name: string, port: number): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\n  namespace: default\nspec:\n  ports:\n    - port: ${port}\n`;

async function eventually(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function providerContract(name: string, harness: ProviderHarness): void {
  describe(`Provider contract: ${name}`, () => {
    const run = async (
      sources: Record<string, string>,
      body: (instance: HarnessInstance, updates: ProviderUpdate[]) => Promise<void>,
    ): Promise<void> => {
      const instance = await harness.create(sources);
      const updates: ProviderUpdate[] = [];
      try {
        await instance.provider.start((update) => updates.push(update));
        await body(instance, updates);
      } finally {
        await instance.provider.stop();
        await instance.cleanup();
      }
    };
    const port = (updates: ProviderUpdate[], key: string) =>
      updates.at(-1)?.snapshot.services.get(key)?.spec?.ports?.[0]?.port;

    test("start resolves after the first update, generation 1, holding the input", async () => {
      await run({ a: service("a", 80) }, (_instance, updates) => {
        assert.equal(updates.length, 1);
        assert.equal(updates[0]?.generation, 1);
        assert.equal(port(updates, "default/a"), 80);
        assert.deepEqual(updates[0]?.errors, []);
        return Promise.resolve();
      });
    });

    test("changes, additions and removals arrive as complete snapshots with rising generations", async () => {
      await run({ a: service("a", 80) }, async (instance, updates) => {
        await instance.set("a", service("a", 81));
        await eventually("the change", () => port(updates, "default/a") === 81);
        await instance.set("b", service("b", 90));
        await eventually("the addition", () => port(updates, "default/b") === 90);
        assert.equal(port(updates, "default/a"), 81, "a snapshot holds everything, not a delta");
        await instance.set("a", undefined);
        await eventually("the removal", () => updates.at(-1)?.snapshot.services.has("default/a") === false);
        const generations = updates.map((update) => update.generation);
        for (let i = 1; i < generations.length; i++) {
          assert.ok(
            (generations[i] ?? 0) > (generations[i - 1] ?? 0),
            `generations rise: ${generations.join(",")}`,
          );
        }
      });
    });

    test("nothing is delivered after stop resolves", async () => {
      const instance = await harness.create({ a: service("a", 80) });
      const updates: ProviderUpdate[] = [];
      try {
        await instance.provider.start((update) => updates.push(update));
        await instance.provider.stop();
        const count = updates.length;
        await instance.set("a", service("a", 82));
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(updates.length, count);
        await instance.provider.stop();
      } finally {
        await instance.cleanup();
      }
    });
  });
}
