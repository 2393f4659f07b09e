import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { DATAPLANE_OPTIONS, parseDataplaneFlags } from "./dataplane-flags.ts";

function flags(...args: string[]) {
  const { values } = parseArgs({ args, options: DATAPLANE_OPTIONS, strict: true });
  return parseDataplaneFlags(values, "/tmp/state");
}

describe("admin flags", () => {
  test("loopback needs no token", () => {
    assert.deepEqual(flags().admin, { host: "127.0.0.1", port: 9901 });
    assert.deepEqual(flags("--admin", "[::1]:9")?.admin, { host: "::1", port: 9 });
    assert.deepEqual(flags("--admin", "localhost:9")?.admin, { host: "localhost", port: 9 });
  });

  test("beyond loopback, no token and no opt-out is refused with what to do", () => {
    for (const address of ["0.0.0.0:9901", "[::]:9901", "10.0.0.1:9901", "gatehouse.example:9901"]) {
      assert.throws(
        () => flags("--admin", address),
        (error: unknown) =>
          error instanceof UsageError &&
          /reachable from other hosts/.test(error.message) &&
          /--admin-token-file PATH/.test(error.message) &&
          /--admin-insecure-no-auth/.test(error.message),
        address,
      );
    }
  });

  test("a token file (made absolute) or the explicit opt-out", () => {
    assert.deepEqual(flags("--admin", "0.0.0.0:1", "--admin-token-file", "/run/t").admin, {
      host: "0.0.0.0",
      port: 1,
      tokenFile: "/run/t",
    });
    assert.deepEqual(flags("--admin", "0.0.0.0:1", "--admin-insecure-no-auth").admin, {
      host: "0.0.0.0",
      port: 1,
      insecureNoAuth: true,
    });
    assert.throws(
      () => flags("--admin", "0.0.0.0:1", "--admin-token-file", "/t", "--admin-insecure-no-auth"),
      /contradict/,
    );
  });
});
