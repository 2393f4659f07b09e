// The renderer remembers what it derived from IR objects (checks, backend sections, their text and
// map lookups: memo.ts) across renders. An IR that shares objects with earlier ones (the incremental
// translator reuses unchanged ones) must render exactly as a copy of it rendered from nothing.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { parse } from "yaml";
import type { IR } from "../../../ir/types.ts";
import { parseDocuments } from "../../../resources/load.ts";
import type { KubeObject } from "../../../resources/meta.ts";
import { buildSnapshot } from "../../../resources/snapshot.ts";
import { IncrementalTranslator } from "../../../translate/incremental.ts";
import {
  admitted,
  grpcRoute,
  httpRoute,
  resourceSet,
  service,
  slicedService,
} from "../../../translate/testutil.ts";
import { haproxyValidators } from "../capabilities.ts";
import { checkRenderable, forgetRendered, render, type BackendLayout, type RenderedConfig } from "./index.ts";
import { GOLDEN_OPTIONS } from "./testutil.ts";

const OPTIONS = {
  controllerName: "gatehouse.dev/gateway-controller",
  now: "2026-01-01T00:00:00Z",
  validators: haproxyValidators,
};
const RENDER = { ...GOLDEN_OPTIONS, spareBackends: 4 };

/** Renders `ir` and a structured clone of it (same previous layout) and asserts they are the same. */
function same(ir: IR, previous: BackendLayout | undefined, what: string): RenderedConfig | undefined {
  if (checkRenderable(ir, RENDER).length > 0) return undefined;
  const fresh = structuredClone(ir);
  const reused = render(ir, RENDER, previous);
  const issues = checkRenderable(ir, RENDER);
  // From nothing: what was remembered is forgotten (the remembered entries of `ir` come back below).
  forgetRendered();
  const copy = render(fresh, RENDER, previous === undefined ? undefined : structuredClone(previous));
  assert.equal(JSON.stringify(reused), JSON.stringify(copy), `${what}: a reused IR renders differently`);
  assert.deepEqual(issues, checkRenderable(fresh, RENDER), `${what}: checks differ`);
  render(ir, RENDER, previous);
  return reused;
}

function snapshotOf(objects: readonly KubeObject[]) {
  return buildSnapshot(objects.map((object, index) => ({ object, source: { index } }))).snapshot;
}

test("the translation inputs, built up object by object, render as fresh copies do", () => {
  const dir = join(import.meta.dirname, "..", "..", "..", "..", "testdata", "translate");
  let rendered = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".in.yaml"))) {
    if (file.startsWith("infra-kubernetes-")) continue;
    const objects = parseDocuments(readFileSync(join(dir, file), "utf8"), file).objects.map((o) => o.object);
    const translator = new IncrementalTranslator();
    let previous: BackendLayout | undefined;
    for (let i = 1; i <= objects.length; i++) {
      const { ir } = translator.update(snapshotOf(objects.slice(0, i)), OPTIONS);
      const out = same(ir, previous, `${file} +${i}`);
      if (out !== undefined) {
        previous = out.layout;
        rendered++;
      }
    }
  }
  assert.ok(rendered > 100, `only ${rendered} renders`);
});

const change = fc.oneof(
  httpRoute.map((o) => ({ op: "put" as const, object: o })),
  grpcRoute.map((o) => ({ op: "put" as const, object: o })),
  service.map((o) => ({ op: "put" as const, object: o })),
  slicedService.map((o) => ({ op: "put" as const, object: o })),
  fc.nat().map((pick) => ({ op: "delete" as const, pick })),
);

test("random change sequences render as fresh copies do", () => {
  const identity = (o: KubeObject): string => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  fc.assert(
    fc.property(resourceSet, fc.array(change, { minLength: 1, maxLength: 8 }), (set, changes) => {
      let objects = admitted(set.flat());
      const translator = new IncrementalTranslator();
      let previous = same(translator.update(snapshotOf(objects), OPTIONS).ir, undefined, "initial")?.layout;
      for (const c of changes) {
        if (c.op === "delete") {
          if (objects.length === 0) continue;
          const gone = objects[c.pick % objects.length];
          objects = objects.filter((o) => o !== gone);
        } else {
          const [object] = admitted([c.object]);
          if (object === undefined) continue;
          const at = objects.findIndex((o) => identity(o) === identity(object));
          objects = at < 0 ? [...objects, object] : objects.map((o, i) => (i === at ? object : o));
        }
        const out = same(translator.update(snapshotOf(objects), OPTIONS).ir, previous, JSON.stringify(c));
        if (out !== undefined) previous = out.layout;
      }
    }),
    { numRuns: 100, seed: 20261203 },
  );
});

test("a rule kept while the backends it names go or change protocol is checked again", () => {
  const dir = join(import.meta.dirname, "..", "..", "..", "..", "testdata", "render");
  let compared = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ir.yaml"))) {
    const ir = parse(readFileSync(join(dir, file), "utf8")) as IR;
    checkRenderable(ir, RENDER);
    for (const [i, b] of ir.backends.entries()) {
      // The same rule objects, with one backend gone, then turned into a UDP backend.
      for (const changed of [
        { ...ir, backends: ir.backends.filter((_, j) => j !== i) },
        { ...ir, backends: ir.backends.map((x, j) => (j === i ? { ...b, protocol: "udp" as const } : x)) },
      ]) {
        const issues = checkRenderable(changed, RENDER);
        forgetRendered();
        assert.deepEqual(
          issues,
          checkRenderable(structuredClone(changed), RENDER),
          `${file}: backend ${b.id}`,
        );
        checkRenderable(ir, RENDER);
        compared++;
      }
    }
  }
  assert.ok(compared > 20, `only ${compared} comparisons`);
});
