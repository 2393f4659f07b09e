// `gatehouse --version` / `-V`, also after a subcommand: the image's smoke test and users' scripts
// rely on it printing "gatehouse <package.json version>" and exiting 0.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { gatehouseVersion, main, type CliIO } from "../../src/cli/main.ts";

const packageVersion = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

function capture(): { io: CliIO; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: (text) => void out.push(text),
      stderr: (text) => void err.push(text),
      now: () => new Date(0),
    },
    out,
    err,
  };
}

void describe("gatehouse --version", () => {
  void test("reads the version from package.json", () => {
    assert.equal(gatehouseVersion(), packageVersion);
  });

  for (const argv of [
    ["--version"],
    ["-V"],
    ["version"],
    ["serve", "--version"],
    ["controller", "-V"],
    ["translate", "--version"],
  ]) {
    void test(`gatehouse ${argv.join(" ")} prints the version and exits 0`, async () => {
      const { io, out, err } = capture();
      assert.equal(await main(argv, io), 0);
      assert.deepEqual(out, [`gatehouse ${packageVersion}\n`]);
      assert.deepEqual(err, []);
    });
  }

  void test("a --version after -- is an argument, not the flag", async () => {
    const { io, out } = capture();
    const code = await main(["translate", "--", "--version"], io);
    assert.notDeepEqual(out, [`gatehouse ${packageVersion}\n`]);
    assert.notEqual(code, 0);
  });
});
