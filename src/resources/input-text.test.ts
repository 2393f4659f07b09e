import assert from "node:assert/strict";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { RefusedFileError } from "../errors.ts";
import { boundedText, checkText, decodeText, needsBounding, readLimited } from "./input-text.ts";

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

describe("boundedText", () => {
  test("leaves clean short text as it is", () => {
    assert.equal(boundedText("Unresolved alias: web"), "Unresolved alias: web");
    assert.equal(needsBounding("Unresolved alias: web"), false);
  });

  test("escapes control characters, separators, bidi overrides and lone surrogates", () => {
    assert.equal(boundedText("a\nb\tc\u0000d\u001b[31m\u007f"), "a\\nb\\tc\\u0000d\\u001b[31m\\u007f");
    assert.equal(boundedText("x\u2028y\u202ez"), "x\\u2028y\\u202ez");
    assert.equal(boundedText("\ud800!"), "\\ud800!");
    assert.equal(boundedText("ok 😀"), "ok 😀");
    assert.equal(needsBounding("a\nb"), true);
  });

  test("clips long text, saying how much was left out, without cutting a surrogate pair", () => {
    assert.equal(boundedText("x".repeat(70_000), 10), `${"x".repeat(10)}… (69990 more characters)`);
    assert.equal(boundedText(`${"x".repeat(9)}😀`, 10), `${"x".repeat(9)}… (2 more characters)`);
  });
});

describe("decodeText", () => {
  test("decodes UTF-8 and drops a byte order mark", () => {
    assert.equal(
      decodeText(Buffer.from("\ufeffkind: Service\nname: é\n"), "f.yaml"),
      "kind: Service\nname: é\n",
    );
  });

  test("refuses a NUL byte, naming its line and column", () => {
    assert.throws(
      () => decodeText(Buffer.from("a: 1\nbb\u0000c"), "f.yaml"),
      (error: unknown) =>
        error instanceof RefusedFileError &&
        error.message === "refused: not a text file (NUL byte at line 2, column 3)" &&
        error.path === "f.yaml",
    );
  });

  test("refuses bytes that are not UTF-8", () => {
    assert.throws(
      () => decodeText(Buffer.from([0x6b, 0x3a, 0x20, 0xff, 0xfe, 0x0a]), "f.yaml"),
      (error: unknown) =>
        error instanceof RefusedFileError && error.message === "refused: not a text file (not valid UTF-8)",
    );
  });

  test("checkText applies the same refusals to text already decoded", () => {
    assert.equal(checkText("a: 1\n", "f.yaml", 10), "a: 1\n");
    assert.throws(() => checkText("a: 1\n\u0000", "f.yaml", 10), /NUL byte at line 2, column 1/);
    assert.throws(() => checkText("é".repeat(6), "f.yaml", 10), /larger than 10 bytes/);
  });
});

describe("readLimited", () => {
  test("reads a file up to the limit and refuses a larger one by its size", async () => {
    const root = await mkdtemp(join(tmpdir(), "gatehouse-text-"));
    roots.push(root);
    const small = join(root, "small.yaml");
    await writeFile(small, "a: 1\n");
    assert.equal(Buffer.from(await readLimited(small, 5)).toString(), "a: 1\n");
    // A sparse 4 GiB file: refused from its size, never read (this would not fit in memory).
    const huge = join(root, "huge.yaml");
    await writeFile(huge, "");
    await truncate(huge, 4 * 1024 * 1024 * 1024);
    await assert.rejects(
      readLimited(huge, 16 * 1024 * 1024),
      (error: unknown) =>
        error instanceof RefusedFileError &&
        error.message === "refused: larger than 16.0 MiB (4096.0 MiB); split it into several files",
    );
    await assert.rejects(readLimited(small, 4), /refused: larger than 4 bytes \(5 bytes\)/);
  });
});
