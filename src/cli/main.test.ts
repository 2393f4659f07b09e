import assert from "node:assert/strict";
import { test } from "node:test";
import { COMMANDS } from "./main.ts";

void test("the lazily loaded commands have the names and summaries the registry lists", async () => {
  for (const entry of COMMANDS) {
    const command = await entry.load();
    assert.equal(command.name, entry.name);
    assert.equal(command.summary, entry.summary);
  }
});
