import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { AdminTokenError, bearerMatches, isLoopbackHost, readTokenFile, watchTokenFile } from "./auth.ts";

const TOKEN = "0123456789abcdef0123";

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tokenFile(content: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-token-"));
  dirs.push(dir);
  const path = join(dir, "token");
  await writeFile(path, content);
  return path;
}

describe("isLoopbackHost", () => {
  test("loopback addresses and localhost", () => {
    for (const host of ["127.0.0.1", "127.31.2.9", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost"])
      assert.ok(isLoopbackHost(host), host);
  });
  test("anything else", () => {
    for (const host of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::2", "gatehouse.example", ""])
      assert.ok(!isLoopbackHost(host), host);
  });
});

describe("bearerMatches", () => {
  test("only the exact token, as a Bearer credential", () => {
    assert.ok(bearerMatches(`Bearer ${TOKEN}`, TOKEN));
    assert.ok(bearerMatches(`bearer ${TOKEN}`, TOKEN));
    for (const header of [
      undefined,
      "",
      TOKEN,
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      "Bearer ",
    ])
      assert.ok(!bearerMatches(header, TOKEN), String(header));
  });
});

describe("token files", () => {
  test("the first non-empty line, trimmed", async () => {
    assert.equal(readTokenFile(await tokenFile(`\n  ${TOKEN}  \nignored\n`)), TOKEN);
  });

  test("missing, empty or short files are AdminTokenErrors that say what to do", async () => {
    assert.throws(() => readTokenFile("/nonexistent/token"), AdminTokenError);
    assert.throws(() => readTokenFile("/nonexistent/token"), /cannot read --admin-token-file/);
    const empty = await tokenFile("\n");
    assert.throws(() => readTokenFile(empty), /holds no token.*openssl rand -hex 32/);
    const short = await tokenFile("abc\n");
    assert.throws(() => readTokenFile(short), /a token of 3 characters.*at least 16/);
  });

  test("a changed file delivers its new token; an unusable one is reported", async () => {
    const path = await tokenFile(TOKEN);
    const tokens: string[] = [];
    const errors: AdminTokenError[] = [];
    let notify = (): void => {};
    const stop = watchTokenFile(
      path,
      (token) => {
        tokens.push(token);
        notify();
      },
      (error) => {
        errors.push(error);
        notify();
      },
      10,
    );
    try {
      const next = (): Promise<void> => new Promise((resolve) => (notify = resolve));
      let seen = next();
      await writeFile(path, `${TOKEN}-rotated\n`);
      await seen;
      assert.deepEqual(tokens, [`${TOKEN}-rotated`]);
      seen = next();
      await writeFile(path, "x\n");
      await seen;
      assert.equal(errors.length, 1);
      assert.deepEqual(tokens, [`${TOKEN}-rotated`]);
    } finally {
      stop();
    }
  });
});
