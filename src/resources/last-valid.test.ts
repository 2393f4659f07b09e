import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InputError, StaleInputError } from "../errors.ts";
import { nextFileState } from "./last-valid.ts";
import type { FileState } from "./last-valid.ts";
import { parseDocuments } from "./load.ts";

const T1 = "2026-01-01T00:00:00.000Z";
const T2 = "2026-01-01T00:01:00.000Z";
const T3 = "2026-01-01T00:02:00.000Z";

const service = (name: string, port = 80): string =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: ${name}\nspec:\n  ports:\n    - port: ${port}\n`;

const file = (...services: string[]): string => services.join("---\n");

/** The state after the file held each text in turn, read at the given times. */
function history(...steps: Array<[string, string]>): {
  state: FileState | undefined;
  errors: readonly InputError[];
} {
  let state: FileState | undefined;
  let errors: readonly InputError[] = [];
  for (const [text, now] of steps) {
    const outcome = nextFileState(state, { parsed: parseDocuments(text, "f.yaml") }, now);
    state = outcome.state;
    errors = outcome.errors;
  }
  return { state, errors };
}

const ports = (state: FileState | undefined): Array<[string, unknown]> =>
  (state?.objects ?? []).map(({ object }) => [
    object.metadata.name,
    (object as { spec?: { ports?: Array<{ port?: number }> } }).spec?.ports?.[0]?.port,
  ]);

describe("nextFileState", () => {
  test("a file that parses contributes its objects; removed objects go", () => {
    const { state, errors } = history([file(service("a"), service("b")), T1], [file(service("b", 81)), T2]);
    assert.deepEqual(ports(state), [["b", 81]]);
    assert.deepEqual(errors, []);
    assert.equal(state?.validSince, T2);
  });

  test("a file that stops parsing keeps every object it last contributed, each problem stale", () => {
    const { state, errors } = history(
      [file(service("a"), service("b")), T1],
      [file(service("a", 81), service("b")), T2],
      [file(service("a", 82), "kind: [Service\n"), T3],
    );
    assert.deepEqual(ports(state), [
      ["a", 81],
      ["b", 80],
    ]);
    assert.ok(errors.length >= 1);
    for (const error of errors) {
      assert.ok(error instanceof StaleInputError);
      assert.equal(error.servingSince, T2);
      assert.equal(error.file, "f.yaml");
      assert.equal(typeof error.location.line, "number");
      assert.match(
        error.message,
        /the file is stale, serving its last valid version, read at 2026-01-01T00:01:00\.000Z\)$/,
      );
    }
  });

  test("a file that never parsed contributes nothing, and its problems are not stale", () => {
    const { state, errors } = history(["kind: [Service\n", T1], ["kind: [Service\n", T2]);
    assert.deepEqual(ports(state), []);
    assert.ok(errors.length >= 1);
    for (const error of errors) assert.equal(error instanceof StaleInputError, false);
  });

  test("an object that stops validating keeps its last valid version, in its place; the others change", () => {
    const { state, errors } = history(
      [file(service("a"), service("b"), service("c")), T1],
      [file(service("a", 81), service("b", 99999), service("c", 83)), T2],
    );
    assert.deepEqual(ports(state), [
      ["a", 81],
      ["b", 80],
      ["c", 83],
    ]);
    assert.equal(state?.since.get("Service\0default/b"), T1);
    assert.equal(state?.since.get("Service\0default/a"), T2);
    // port and the targetPort defaulted from it.
    assert.ok(errors.every((e) => e instanceof StaleInputError && e.objectName === "b"));
    const error = errors.find((e) => e.field === "spec.ports[0].port");
    assert.ok(error instanceof StaleInputError);
    assert.equal(error.objectName, "b");
    assert.equal(error.field, "spec.ports[0].port");
    assert.equal(error.location.line, 15, "b starts on line 9, its port is on its 7th line");
    assert.equal(error.servingSince, T1);
    assert.match(
      error.message,
      /must be <= 65535 \(serving its last valid version, read at 2026-01-01T00:00:00\.000Z\)$/,
    );
  });

  test("an object invalid from the start is left out and reported as is", () => {
    const { state, errors } = history([file(service("a"), service("b", 99999)), T1]);
    assert.deepEqual(ports(state), [["a", 80]]);
    assert.ok(errors.length >= 1);
    assert.ok(errors.every((e) => !(e instanceof StaleInputError) && e.objectName === "b"));
  });

  test("the last valid version survives a broken file in between, and goes when the object is removed", () => {
    const broken = history(
      [file(service("a"), service("b")), T1],
      ["kind: [\n", T2],
      [file(service("a", 99999), service("b", 82)), T3],
    );
    assert.deepEqual(ports(broken.state), [
      ["a", 80],
      ["b", 82],
    ]);
    assert.equal((broken.errors[0] as StaleInputError).servingSince, T1);
    const removed = nextFileState(broken.state, { parsed: parseDocuments(service("b", 82), "f.yaml") }, T3);
    assert.deepEqual(ports(removed.state), [["b", 82]]);
    assert.deepEqual(removed.errors, []);
  });

  test("a file that cannot be read keeps its last valid version", () => {
    const { state } = history([service("a"), T1]);
    const unreadable = new InputError("refused: not a text file (NUL byte at line 1, column 1)", {
      file: "f.yaml",
    });
    const outcome = nextFileState(state, { unreadable }, T2);
    assert.deepEqual(ports(outcome.state), [["a", 80]]);
    assert.equal(outcome.kept, true);
    assert.ok(outcome.errors[0] instanceof StaleInputError);
    assert.match(
      outcome.errors[0].message,
      /^f\.yaml: refused: not a text file .*read at 2026-01-01T00:00:00\.000Z\)$/,
    );
  });
});
