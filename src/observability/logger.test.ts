import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError, UsageError } from "../errors.ts";
import { createLogger, formatTextLine, parseLogFormat, parseLogLevel } from "./logger.ts";

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (chunk: string) => void lines.push(chunk) } };
}

describe("createLogger", () => {
  test("json: one object per line with a level label, an ISO time and the fields", () => {
    const out = capture();
    const log = createLogger({ destination: out.destination });
    log.child({ component: "provider" }).info({ generation: 3 }, "loaded");
    log.debug("dropped at the default level");
    assert.equal(out.lines.length, 1);
    const line = out.lines[0] ?? "";
    assert.ok(line.endsWith("\n"));
    const record = JSON.parse(line) as Record<string, unknown>;
    assert.equal(record["level"], "info");
    assert.match(String(record["time"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(record["component"], "provider");
    assert.equal(record["generation"], 3);
    assert.equal(record["msg"], "loaded");
    assert.equal(record["pid"], undefined);
  });

  test("json: an InputError keeps its location", () => {
    const out = capture();
    const log = createLogger({ destination: out.destination });
    const err = new InputError("must start with /", {
      file: "a.yaml",
      index: 0,
      kind: "HTTPRoute",
      name: "web",
    });
    log.warn({ err }, "input problem");
    const record = JSON.parse(out.lines[0] ?? "") as { err: Record<string, unknown> };
    assert.equal(record.err["type"], "InputError");
    assert.equal(record.err["message"], "a.yaml#0 HTTPRoute web: must start with /");
    assert.deepEqual(record.err["location"], { file: "a.yaml", index: 0, kind: "HTTPRoute", name: "web" });
  });

  test("text: one readable line per record", () => {
    const out = capture();
    const log = createLogger({ format: "text", level: "debug", destination: out.destination });
    log.debug({ generation: 4, path: "/etc/gatehouse", note: "two words", ok: true }, "reloaded haproxy");
    assert.equal(out.lines.length, 1);
    assert.match(
      out.lines[0] ?? "",
      /^\S+Z DEBUG reloaded haproxy generation=4 path=\/etc\/gatehouse note="two words" ok=true\n$/,
    );
  });

  test("text: errors inline, with their stack at error level", () => {
    const out = capture();
    const log = createLogger({ format: "text", destination: out.destination });
    log.warn({ err: new Error("soft") }, "careful");
    log.error({ err: new Error("hard") }, "failed");
    assert.match(out.lines[0] ?? "", /WARN {2}careful err=soft\n$/);
    const lines = (out.lines[1] ?? "").split("\n");
    assert.match(lines[0] ?? "", /ERROR failed err=hard$/);
    assert.match(lines[1] ?? "", /^ {4}Error: hard$/);
    assert.match(lines[2] ?? "", /^ {4}\s*at /);
  });

  test("formatTextLine renders nested values as JSON", () => {
    assert.equal(
      formatTextLine({ time: "T", level: "info", msg: "m", listeners: ["a", "b"], ref: { kind: "Gateway" } }),
      'T INFO  m listeners=["a","b"] ref={"kind":"Gateway"}',
    );
  });

  test("flag values are validated", () => {
    assert.equal(parseLogFormat("text"), "text");
    assert.equal(parseLogLevel("debug"), "debug");
    assert.throws(() => parseLogFormat("yaml"), UsageError);
    assert.throws(
      () => parseLogLevel("verbose"),
      /must be one of fatal, error, warn, info, debug, trace, silent/,
    );
  });
});

describe("createLogger never writes a private key", () => {
  test("keys in IR fields, Secret data, messages and errors are redacted, json and text", async () => {
    const { irWithKey, keysOf } = await import("../admin/testing.ts");
    const ir = await irWithKey();
    const key = keysOf(ir)[0] ?? assert.fail("no key in the test IR");
    const secret = {
      data: { "tls.key": Buffer.from(key).toString("base64") },
      stringData: { "tls.key": key },
    };
    for (const format of ["json", "text"] as const) {
      const out = capture();
      const log = createLogger({ format, destination: out.destination });
      log.info({ ir }, "the IR");
      log.info({ certificate: ir.gateways[0]?.listeners[0]?.tls?.certificates[0] }, "a certificate");
      log.info({ secret }, "a Secret");
      log.warn(`a message quoting ${key}`);
      log.error({ err: new Error(`cannot load ${key.slice(0, 60)}`) }, "cut off");
      assert.equal(out.lines.length, 5);
      const text = out.lines.join("");
      assert.doesNotMatch(text, /PRIVATE KEY/, format);
      assert.doesNotMatch(text, /LS0tLS1CRUdJTi/, format);
      assert.match(text, /REDACTED KEY/, format);
    }
  });
});
