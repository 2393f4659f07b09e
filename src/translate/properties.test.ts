// Property tests for the translator: random resource sets (valid per schema, references that may or
// may not resolve) never make it throw, translation is deterministic whatever the input order, and
// the IR it produces is self-consistent.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { KubeObject } from "../resources/meta.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { validateIR } from "../ir/validate.ts";
import type { IR } from "../ir/types.ts";
import { listenerHostnamesOverlap } from "./hostname.ts";
import { translate } from "./index.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import { admitted, resourceSet } from "./testutil.ts";

/**
 * A fixed seed keeps CI deterministic; set GATEHOUSE_FC_SEED to explore other inputs (a failure
 * prints the seed and the shrunk counterexample to reproduce it).
 */
const SEED = Number(process.env["GATEHOUSE_FC_SEED"] ?? 20261122);
function run(objects: readonly KubeObject[]): string {
  const { snapshot } = buildSnapshot(objects.map((object, index) => ({ object, source: { index } })));
  return JSON.stringify(
    translate(snapshot, {
      controllerName: "gatehouse.dev/gateway-controller",
      now: "2026-01-01T00:00:00Z",
      validators: haproxyValidators,
    }),
  );
}

test("random resource sets translate without throwing, into a valid IR, the same in any order", () => {
  let translatedRules = 0;
  let grpcRules = 0;
  let hostnameConflicts = 0;
  fc.assert(
    fc.property(resourceSet, fc.integer(), (set, seed) => {
      const objects = admitted(set.flat());
      const out = run(objects);
      const parsed = JSON.parse(out) as ReturnType<typeof translate>;
      assert.deepEqual(validateIR(parsed.ir), [], "IR invariants");
      assertKindsApart(parsed.ir);
      grpcRules += parsed.ir.gateways
        .flatMap((g) => g.listeners.flatMap((l) => l.virtualHosts ?? []))
        .flatMap((vh) => vh.rules)
        .filter((r) => r.grpc === true).length;
      hostnameConflicts += out.split('"reason":"HostnameConflict"').length - 1;
      translatedRules += parsed.ir.gateways.flatMap((g) =>
        g.listeners.flatMap((l) => l.virtualHosts ?? []),
      ).length;
      const shuffled =
        fc.sample(fc.shuffledSubarray(objects, { minLength: objects.length, maxLength: objects.length }), {
          numRuns: 1,
          seed,
        })[0] ?? [];
      assert.equal(run(shuffled), out, "input order changed the output");
    }),
    { numRuns: 300, seed: SEED },
  );
  // The generator must reach the interesting paths, or this test proves nothing.
  console.log(
    `virtual hosts produced: ${translatedRules}; gRPC rules: ${grpcRules}; hostname conflicts: ${hostnameConflicts}`,
  );
  assert.ok(translatedRules > 20, `only ${translatedRules} virtual hosts were produced across all runs`);
  assert.ok(grpcRules > 5, `only ${grpcRules} gRPC rules were produced across all runs`);
  assert.ok(hostnameConflicts > 0, `only ${hostnameConflicts} HTTPRoute/GRPCRoute conflicts across all runs`);
});

/**
 * HTTPRoute and GRPCRoute rules never meet: a virtual host holds rules of one kind only, and on one
 * listener no HTTP virtual host's hostname intersects a gRPC virtual host's (GRPCRouteSpec.hostnames:
 * of two such routes "the implementation MUST accept exactly one").
 */
function assertKindsApart(ir: IR): void {
  for (const l of ir.gateways.flatMap((g) => g.listeners)) {
    const kindOf = new Map<string, boolean>();
    for (const vh of l.virtualHosts ?? []) {
      const kinds = new Set(vh.rules.map((r) => r.grpc === true));
      assert.ok(kinds.size <= 1, `${l.id} ${vh.hostname}: HTTPRoute and GRPCRoute rules on one virtual host`);
      for (const grpc of kinds) kindOf.set(vh.hostname, grpc);
    }
    for (const [a, ga] of kindOf) {
      for (const [b, gb] of kindOf) {
        if (ga && !gb)
          assert.ok(!listenerHostnamesOverlap(a, b), `${l.id}: gRPC host ${a} intersects HTTP host ${b}`);
      }
    }
  }
}

test("mutated objects that the schema admits never make the translator throw", () => {
  fc.assert(
    fc.property(
      resourceSet,
      fc.array(fc.tuple(fc.nat(), fc.constantFrom("delete", "string", "number", "array", "empty")), {
        maxLength: 6,
      }),
      (set, mutations) => {
        const objects: unknown[] = structuredClone(set.flat());
        for (const [pick, how] of mutations) mutate(objects[pick % Math.max(1, objects.length)], pick, how);
        run(admitted(objects));
      },
    ),
    { numRuns: 300, seed: SEED },
  );
});

/** Replaces or deletes one field somewhere inside `value`, chosen by `pick`. */
function mutate(value: unknown, pick: number, how: string): void {
  const paths: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach((item, i) => {
        paths.push([v, i]);
        walk(item);
      });
    } else if (v !== null && typeof v === "object") {
      for (const [k, item] of Object.entries(v)) {
        paths.push([v as Record<string, unknown>, k]);
        walk(item);
      }
    }
  };
  walk(value);
  const target = paths[pick % Math.max(1, paths.length)];
  if (target === undefined) return;
  const [container, key] = target;
  const replacement = { string: "x", number: -1, array: [], empty: {} }[how];
  if (Array.isArray(container)) {
    if (how === "delete") container.splice(key as number, 1);
    else container[key as number] = replacement;
  } else if (how === "delete") Reflect.deleteProperty(container, key);
  else container[key as string] = replacement;
}
