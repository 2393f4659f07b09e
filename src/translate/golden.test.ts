// Golden tests of the translator: every `testdata/translate/<case>.in.yaml` is loaded as a user's
// input would be (YAML parsing, schema and CEL validation with defaulting, duplicate detection), then
// translated, and `{errors, statuses, ir}` is compared with `<case>.out.yaml`.
//
// Regenerate every output with `npm run golden:update` (GATEHOUSE_UPDATE_GOLDEN=1), then review the
// diff: each output is a statement about the spec, not a snapshot to accept blindly.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { stringify } from "yaml";
import { DuplicateObjectError } from "../errors.ts";
import { validateIR } from "../ir/validate.ts";
import { formatSource, parseDocuments } from "../resources/load.ts";
import { buildSnapshot, isClusterScoped, type DuplicateObject } from "../resources/snapshot.ts";
import { translate } from "./index.ts";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";

const DIR = join(import.meta.dirname, "..", "..", "testdata", "translate");
const IN = ".in.yaml";
const OUT = ".out.yaml";
const UPDATE = process.env["GATEHOUSE_UPDATE_GOLDEN"] === "1";
const OPTIONS = {
  controllerName: "gatehouse.dev/gateway-controller",
  now: "2026-01-01T00:00:00Z",
  validators: haproxyValidators,
};
/** Cases named `infra-kubernetes-*` translate for per-Gateway infrastructure (`--infrastructure kubernetes`). */
const optionsFor = (name: string) =>
  name.startsWith("infra-kubernetes-") ? { ...OPTIONS, infrastructure: "kubernetes" as const } : OPTIONS;
const REGENERATE = "run `npm run golden:update` to regenerate it, then review the diff";

const files = readdirSync(DIR).sort();
const cases = files.filter((f) => f.endsWith(IN)).map((f) => f.slice(0, -IN.length));

/** The golden output of one case, serialised. */
function run(name: string): string {
  const file = `${name}${IN}`;
  const parsed = parseDocuments(readFileSync(join(DIR, file), "utf8"), file);
  const { snapshot, duplicates } = buildSnapshot(parsed.objects);
  const errors = [...parsed.errors, ...duplicates.map(duplicateError)].map((e) => e.message);
  const { statuses, ir } = translate(snapshot, optionsFor(name));
  // The translator's IR must always satisfy the invariants the data plane relies on.
  assert.deepEqual(validateIR(ir), [], `${file}: the IR violates its invariants`);
  return stringify({ errors, statuses, ir }, { lineWidth: 0 });
}

/** The loader's report of a duplicate object (as `loadSnapshot` formats it). */
function duplicateError(d: DuplicateObject): DuplicateObjectError {
  const slash = d.key.indexOf("/");
  const id =
    isClusterScoped(d.kind) || slash < 0
      ? { kind: d.kind, name: d.key }
      : { kind: d.kind, namespace: d.key.slice(0, slash), name: d.key.slice(slash + 1) };
  return new DuplicateObjectError(id, formatSource(d.first), formatSource(d.second));
}

for (const name of cases) {
  test(name, () => {
    const actual = run(name);
    const outPath = join(DIR, `${name}${OUT}`);
    if (UPDATE) {
      writeFileSync(outPath, actual);
      return;
    }
    assert.ok(existsSync(outPath), `testdata/translate/${name}${OUT} is missing: ${REGENERATE}`);
    const expected = readFileSync(outPath, "utf8");
    assert.equal(actual, expected, `testdata/translate/${name}${OUT} differs: ${REGENERATE}`);
  });
}

test("no stale golden outputs", () => {
  const stale = files.filter((f) => f.endsWith(OUT) && !cases.includes(f.slice(0, -OUT.length)));
  if (UPDATE) {
    for (const f of stale) rmSync(join(DIR, f));
    return;
  }
  assert.deepEqual(
    stale,
    [],
    `outputs without a ${IN} input in testdata/translate: delete them (npm run golden:update does)`,
  );
});

test("every case explains itself", () => {
  const silent = cases.filter((name) => !readFileSync(join(DIR, `${name}${IN}`), "utf8").startsWith("#"));
  assert.deepEqual(silent, [], `each ${IN} must start with a comment saying what it checks`);
});
