import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDuration } from "./duration.ts";

test("parseDuration follows GEP-2257", () => {
  const cases: Array<[string, number | undefined]> = [
    ["0s", 0],
    ["1s", 1000],
    ["500ms", 500],
    ["1h30m", 5_400_000],
    ["1h2m3s4ms", 3_723_004],
    ["10m10m", 1_200_000],
    ["99999ms", 99_999],
    ["1.5s", undefined],
    ["-1s", undefined],
    ["1d", undefined],
    ["", undefined],
    ["1s2s3s4s5s", undefined],
    ["123456s", undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseDuration(input), want, input);
});
