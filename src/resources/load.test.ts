import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { DuplicateObjectError, InputError, LoadError } from "../errors.ts";
import { formatSource, loadPath, loadSnapshot, parseDocuments } from "./load.ts";
import type { FileSystem } from "./load.ts";
import type { Snapshot } from "./snapshot.ts";

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: infra
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: http
      port: 80
      protocol: HTTP
`;

const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs:
    - name: gw
      namespace: infra
  rules:
    - backendRefs:
        - name: web
          port: 8080
`;

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  ports:
    - port: 8080
`;

const CLASS = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
`;

const tempRoots: string[] = [];
after(async () => {
  for (const root of tempRoots) await rm(root, { recursive: true, force: true });
});

/** Creates a temporary directory holding `files` (relative path → content) and returns its path. */
async function tree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-load-"));
  tempRoots.push(root);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

function docs(...texts: string[]): string {
  return texts.join("---\n");
}

/** A snapshot as plain data, for deepEqual. */
function plain(snapshot: Snapshot): Record<string, Array<[string, unknown]>> {
  const maps = Object.entries(snapshot as unknown as Record<string, ReadonlyMap<string, unknown>>);
  return Object.fromEntries(maps.map(([field, map]) => [field, [...map.entries()]]));
}

void describe("parseDocuments", () => {
  void test("reads every document of a multi-document file, skipping empty ones", () => {
    const result = parseDocuments(
      `---\n${GATEWAY}---\n---\n# only a comment\n---\n${ROUTE}---\nnull\n`,
      "app.yaml",
    );
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(
      result.objects.map(({ object, source }) => [object.kind, object.metadata.name, source]),
      [
        ["Gateway", "gw", { file: "app.yaml", index: 0 }],
        ["HTTPRoute", "web", { file: "app.yaml", index: 3 }],
      ],
    );
  });

  void test("reports a YAML syntax error with line and column and still loads the other documents", () => {
    const broken = "apiVersion: v1\nkind: Service\nmetadata:\n  name: [broken\n";
    const result = parseDocuments(docs(GATEWAY, broken, ROUTE), "app.yaml");
    assert.equal(result.broken, true);
    assert.deepEqual(
      result.objects.map(({ object }) => object.kind),
      ["Gateway", "HTTPRoute"],
    );
    assert.ok(result.errors.length >= 1);
    for (const error of result.errors) {
      assert.ok(error instanceof InputError);
      assert.equal(error.file, "app.yaml");
      assert.equal(error.index, 1);
      assert.equal(typeof error.location.line, "number");
      assert.equal(typeof error.location.column, "number");
      assert.match(error.message, /^app\.yaml#1: line \d+, column \d+: ./);
    }
    // The error is inside the second document, which starts on line 14.
    assert.ok((result.errors[0]?.location.line ?? 0) >= 14);
  });

  void test("rejects documents that are not mappings or lack apiVersion, kind or metadata.name", () => {
    const result = parseDocuments(
      docs(
        "- just\n- a list\n",
        "apiVersion: v1\nmetadata:\n  name: x\n",
        "kind: Service\nmetadata: {}\n",
        SERVICE,
      ),
      "bad.yaml",
    );
    // Which object a document without kind or name was meant to be is unknown: the file does not parse.
    assert.equal(result.broken, true);
    assert.deepEqual(
      result.objects.map(({ object }) => object.kind),
      ["Service"],
    );
    assert.deepEqual(
      result.errors.map((error) => error.message),
      [
        "bad.yaml#0: document must be a mapping (an object), not a list",
        "bad.yaml#1: kind: is required",
        "bad.yaml#2 Service: apiVersion: is required",
        "bad.yaml#2 Service: metadata.name: is required",
      ],
    );
    assert.equal(result.errors[1]?.field, "kind");
  });

  void test("reports schema errors from validateObject with the field path, one error per field", () => {
    const badPort = GATEWAY.replace("port: 80", "port: 70000").replace("protocol: HTTP", "protocol: 7");
    const result = parseDocuments(docs(badPort, ROUTE), "app.yaml");
    assert.deepEqual(
      result.objects.map(({ object }) => object.kind),
      ["HTTPRoute"],
    );
    assert.ok(result.errors.length >= 1);
    const portError = result.errors.find((error) => error.field === "spec.listeners[0].port");
    assert.ok(portError, `no error for spec.listeners[0].port in ${result.errors.map(String).join("\n")}`);
    assert.equal(portError.kind, "Gateway");
    assert.equal(portError.namespace, "infra");
    assert.equal(portError.objectName, "gw");
    // The line and column of the field's value in the file.
    const line = badPort.split("\n").findIndex((text) => text.includes("port: 70000")) + 1;
    const column = (badPort.split("\n")[line - 1]?.indexOf("70000") ?? 0) + 1;
    assert.equal(portError.location.line, line);
    assert.equal(portError.location.column, column);
    assert.ok(
      portError.message.startsWith(
        `app.yaml#0 Gateway infra/gw: line ${line}, column ${column}: spec.listeners[0].port: `,
      ),
      portError.message,
    );
    for (const error of result.errors) assert.equal(error.index, 0);
    assert.equal(result.broken, false);
    assert.deepEqual(
      result.rejected.map(({ identity, position }) => [identity, position]),
      [["Gateway\0infra/gw", 0]],
    );
  });

  void test("names a namespaced object without namespace as default/<name> in errors", () => {
    const result = parseDocuments(ROUTE.replace("port: 8080", "port: 99999"), "r.yaml");
    assert.equal(result.objects.length, 0);
    assert.match(
      result.errors[0]?.message ?? "",
      /^r\.yaml#0 HTTPRoute default\/web: line \d+, column \d+: spec\.rules\[0\]\.backendRefs\[0\]\./,
    );
  });

  void test("expands kind: List, locating items as file#index.items[i]", () => {
    const list = `apiVersion: v1
kind: List
metadata: {}
items:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: Gateway
    metadata: { name: gw, namespace: infra }
    spec:
      gatewayClassName: gatehouse
      listeners: [{ name: http, port: 80, protocol: HTTP }]
  - apiVersion: v1
    kind: Service
    metadata: { name: web }
    spec:
      ports: [{ port: 8080 }]
  - apiVersion: v1
    kind: Service
    metadata: { name: api }
    spec:
      ports: [{ port: 99999 }]
`;
    const result = parseDocuments(docs(ROUTE, list), "list.yaml");
    assert.deepEqual(
      result.objects.map(({ object, source }) => [object.kind, formatSource(source)]),
      [
        ["HTTPRoute", "list.yaml#0"],
        ["Gateway", "list.yaml#1.items[0]"],
        ["Service", "list.yaml#1.items[1]"],
      ],
    );
    assert.deepEqual(result.objects[1]?.source, { file: "list.yaml", index: 1, description: "items[0]" });
    // The line of the item's field (the List starts on the line after ROUTE's `---`).
    const line =
      docs(ROUTE, list)
        .split("\n")
        .findIndex((text) => text.includes("port: 99999")) + 1;
    const portError = result.errors.find((error) => error.field === "spec.ports[0].port");
    assert.equal(
      portError?.message,
      `list.yaml#1.items[2] Service default/api: line ${line}, column 23: spec.ports[0].port: must be <= 65535`,
    );
  });

  void test("keeps kinds Gatehouse does not read out, with a warning", () => {
    const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n  namespace: default\n";
    const role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n";
    const result = parseDocuments(docs(deployment, SERVICE, role), "mixed.yaml");
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.objects.map(({ object }) => object.kind),
      ["Service"],
    );
    assert.deepEqual(result.warnings, [
      "mixed.yaml#0: ignoring apps/v1 Deployment default/x",
      "mixed.yaml#2: ignoring rbac.authorization.k8s.io/v1 ClusterRole r",
    ]);
  });

  void test("keeps the object with schema defaults applied", () => {
    const result = parseDocuments(ROUTE, "r.yaml");
    assert.deepEqual(result.errors, []);
    const route = result.objects[0]?.object as { spec: { rules: Array<{ matches?: unknown }> } } | undefined;
    assert.deepEqual(route?.spec.rules[0]?.matches, [{ path: { type: "PathPrefix", value: "/" } }]);
  });
});

void describe("loadPath", () => {
  void test("walks a directory tree in sorted order, reading only visible *.yaml/*.yml files", async () => {
    const root = await tree({
      "b.yaml": SERVICE,
      "a/z.yml": GATEWAY,
      "a/nested/deeper/route.YAML": ROUTE,
      "a/README.md": "# not yaml\n",
      "a/notes.txt": "kind: [broken\n",
      "c.json": "{}",
      ".hidden.yaml": "kind: [broken\n",
      ".git/config.yaml": "kind: [broken\n",
      "0-class.yaml": CLASS,
    });
    const result = await loadPath(root);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.objects.map(({ source }) => source.file?.slice(root.length + 1)),
      ["0-class.yaml", "a/nested/deeper/route.YAML", "a/z.yml", "b.yaml"],
    );
  });

  void test("reads a file named directly whatever its extension", async () => {
    const root = await tree({ "config.txt": docs(SERVICE, GATEWAY) });
    const file = join(root, "config.txt");
    const result = await loadPath(file);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.objects.map(({ source }) => source),
      [
        { file, index: 0 },
        { file, index: 1 },
      ],
    );
  });

  void test("throws LoadError when the path does not exist", async () => {
    const root = await tree({});
    const missing = join(root, "nope");
    await assert.rejects(loadPath(missing), (error: unknown) => {
      assert.ok(error instanceof LoadError);
      assert.equal(error.path, missing);
      assert.equal(error.message, `${missing}: does not exist`);
      assert.ok(error.cause instanceof Error);
      return true;
    });
  });

  void test("reports files that cannot be read and loads the others (injected file system)", async () => {
    const files: Record<string, string> = { "/in/a.yaml": SERVICE, "/in/c.yaml": CLASS };
    const fs: FileSystem = {
      readFile(path) {
        const text = files[path];
        if (text === undefined) return Promise.reject(Object.assign(new Error("EACCES"), { code: "EACCES" }));
        return Promise.resolve(text);
      },
      stat(path) {
        const isFile = path.endsWith(".yaml");
        return Promise.resolve({ isFile: () => isFile, isDirectory: () => !isFile });
      },
      readdir: () => Promise.resolve(["c.yaml", "b.yaml", "a.yaml"]),
    };
    const result = await loadPath("/in", fs);
    assert.deepEqual(
      result.objects.map(({ source }) => source.file),
      ["/in/a.yaml", "/in/c.yaml"],
    );
    assert.deepEqual(
      result.errors.map((error) => error.message),
      ["/in/b.yaml: cannot read: permission denied"],
    );
  });
});

void describe("loadSnapshot", () => {
  void test("reports duplicates naming both places and keeps the first", async () => {
    const changed = SERVICE.replace("port: 8080", "port: 9090");
    const root = await tree({ "a.yaml": SERVICE, "b.yaml": docs(GATEWAY, CLASS, ROUTE, changed) });
    const result = await loadSnapshot(root);
    assert.equal(result.errors.length, 1);
    const [error] = result.errors;
    assert.ok(error instanceof DuplicateObjectError);
    assert.equal(
      error.message,
      `Service default/web defined twice: ${join(root, "a.yaml")}#0 and ${join(root, "b.yaml")}#3`,
    );
    assert.equal(error.file, join(root, "b.yaml"));
    assert.equal(error.index, 3);
    const service = result.snapshot.services.get("default/web");
    assert.deepEqual(
      service?.spec?.ports?.map((port) => port.port),
      [8080],
    );
  });

  void test("defaults the namespace and implies Namespaces labelled kubernetes.io/metadata.name", async () => {
    const root = await tree({
      "app.yaml": docs(
        ROUTE,
        GATEWAY,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra\n  labels:\n    team: net\n",
      ),
    });
    const { snapshot, errors } = await loadSnapshot(root);
    assert.deepEqual(errors, []);
    const route = snapshot.httpRoutes.get("default/web");
    assert.equal(route?.metadata.namespace, "default");
    assert.deepEqual([...snapshot.namespaces.keys()], ["default", "infra"]);
    assert.deepEqual(snapshot.namespaces.get("default")?.metadata.labels, {
      "kubernetes.io/metadata.name": "default",
    });
    assert.deepEqual(snapshot.namespaces.get("infra")?.metadata.labels, {
      team: "net",
      "kubernetes.io/metadata.name": "infra",
    });
  });

  void test("gives the same snapshot whatever the order of files and documents", async () => {
    const one = await tree({ "a.yaml": docs(CLASS, GATEWAY), "z/b.yaml": docs(ROUTE, SERVICE) });
    const two = await tree({ "a.yaml": docs(SERVICE, ROUTE), "b/c/d.yml": GATEWAY, "e.yaml": CLASS });
    const three = await tree({ "all.yaml": docs(ROUTE, SERVICE, GATEWAY, CLASS) });
    const results = await Promise.all([one, two, three].map((root) => loadSnapshot(root)));
    for (const result of results) assert.deepEqual(result.errors, []);
    const [first, ...rest] = results.map((result) => plain(result.snapshot));
    for (const other of rest) assert.deepEqual(other, first);
    assert.equal(first?.["httpRoutes"]?.length, 1);
  });
});
