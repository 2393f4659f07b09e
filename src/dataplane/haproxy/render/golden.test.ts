// Golden tests: testdata/render/<case>.ir.yaml → <case>.haproxy.cfg + <case>.files/<path>, or
// <case>.error.txt when rendering must fail. GATEHOUSE_UPDATE_GOLDEN=1 rewrites the outputs. Every
// rendered case must also pass `haproxy -c` with its files in a temporary stateDir.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { IR } from "../../../ir/types.ts";
import { formatIssue, render, RenderError } from "./index.ts";
import { GOLDEN_OPTIONS, haproxyAvailable, haproxyCheck } from "./testutil.ts";

const DIR = join(dirname(fileURLToPath(import.meta.url)), "../../../../testdata/render");
const UPDATE = process.env.GATEHOUSE_UPDATE_GOLDEN === "1";
const SUFFIXES = [".ir.yaml", ".haproxy.cfg", ".files", ".error.txt"];

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((p) => statSync(join(dir, p)).isFile())
    .sort();
}

function caseName(entry: string): string | undefined {
  const suffix = SUFFIXES.find((s) => entry.endsWith(s));
  return suffix === undefined ? undefined : entry.slice(0, -suffix.length);
}

const entries = readdirSync(DIR).sort();
const cases = entries.filter((e) => e.endsWith(".ir.yaml")).map((e) => e.slice(0, -".ir.yaml".length));

test("golden cases exist", () => {
  assert.ok(cases.length >= 15, `expected at least 15 cases, found ${cases.length}`);
});

test("no stale golden outputs", () => {
  const stale = entries.filter((e) => {
    const name = caseName(e);
    return name === undefined || !cases.includes(name);
  });
  if (UPDATE) for (const e of stale) rmSync(join(DIR, e), { recursive: true, force: true });
  else assert.deepEqual(stale, [], "outputs without an input (or unknown files) in testdata/render");
});

for (const name of cases) {
  test(`golden ${name}`, () => {
    const ir = parse(readFileSync(join(DIR, `${name}.ir.yaml`), "utf8")) as IR;
    const cfgPath = join(DIR, `${name}.haproxy.cfg`);
    const filesDir = join(DIR, `${name}.files`);
    const errorPath = join(DIR, `${name}.error.txt`);
    let rendered: ReturnType<typeof render> | undefined;
    let error: string | undefined;
    try {
      rendered = render(ir, GOLDEN_OPTIONS);
    } catch (e) {
      if (!(e instanceof RenderError)) throw e;
      error = e.issues.map((i) => `${formatIssue(i)}\n`).join("");
    }

    if (UPDATE) {
      rmSync(cfgPath, { force: true });
      rmSync(filesDir, { recursive: true, force: true });
      rmSync(errorPath, { force: true });
      if (error !== undefined) writeFileSync(errorPath, error);
      if (rendered !== undefined) {
        writeFileSync(cfgPath, rendered.config);
        for (const [rel, content] of Object.entries(rendered.files)) {
          mkdirSync(dirname(join(filesDir, rel)), { recursive: true });
          writeFileSync(join(filesDir, rel), content);
        }
      }
    }

    if (error !== undefined) {
      assert.ok(!existsSync(cfgPath), `${name}: render failed but ${name}.haproxy.cfg exists:\n${error}`);
      assert.equal(error, readFileSync(errorPath, "utf8"), `${name}: render errors differ`);
      return;
    }
    assert.ok(rendered !== undefined);
    assert.ok(!existsSync(errorPath), `${name}: render succeeded but ${name}.error.txt exists`);
    assert.equal(rendered.config, readFileSync(cfgPath, "utf8"), `${name}: haproxy.cfg differs`);
    const stored = listFiles(filesDir);
    assert.deepEqual(
      stored,
      Object.keys(rendered.files).sort(),
      `${name}: generated file list differs (stale or missing files)`,
    );
    for (const rel of stored) {
      assert.equal(
        rendered.files[rel],
        readFileSync(join(filesDir, rel), "utf8"),
        `${name}: ${relative(DIR, join(filesDir, rel))} differs`,
      );
    }
    // Deterministic: a second render is byte-identical.
    assert.deepEqual(render(ir, GOLDEN_OPTIONS), rendered);
  });

  test(`golden ${name}: haproxy -c`, { skip: !haproxyAvailable() && "haproxy is not installed" }, () => {
    const ir = parse(readFileSync(join(DIR, `${name}.ir.yaml`), "utf8")) as IR;
    if (existsSync(join(DIR, `${name}.error.txt`))) return;
    const result = haproxyCheck(ir);
    assert.ok(result.ok, `${name}: haproxy -c failed:\n${result.output}`);
    assert.doesNotMatch(result.output, /\[WARNING\]/, `${name}: haproxy -c warned:\n${result.output}`);
  });
}
