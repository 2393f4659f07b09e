// End-to-end tests of `gatehouse translate`: they spawn bin/gatehouse.js as a user would.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { TLS_INPUT } from "../admin/testing.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "gatehouse.js");

const GOOD = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: http
      port: 80
      protocol: HTTP
`;

const BROKEN = "apiVersion: v1\nkind: Service\nmetadata:\n  name: [broken\n";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function gatehouse(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const tempRoots: string[] = [];
after(async () => {
  for (const root of tempRoots) await rm(root, { recursive: true, force: true });
});

async function tempDir(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "gatehouse-cli-"));
  tempRoots.push(root);
  for (const [name, content] of Object.entries(files)) await writeFile(join(root, name), content);
  return root;
}

void describe("gatehouse translate", () => {
  void test("fails with exit 1 when the --config path does not exist", async () => {
    const root = await tempDir({});
    const missing = join(root, "nope");
    const run = await gatehouse("translate", "--config", missing);
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    assert.equal(run.stderr, `gatehouse translate: cannot read --config ${missing}: does not exist\n`);
  });

  void test("fails with exit 1 and lists the input errors when no object is valid", async () => {
    const root = await tempDir({ "broken.yaml": BROKEN, "notes.txt": "ignored" });
    const run = await gatehouse("translate", "--config", root, "--now", "2025-01-01T00:00:00Z");
    assert.equal(run.code, 1);
    assert.equal(run.stdout, "");
    const lines = run.stderr.trimEnd().split("\n");
    assert.ok(lines.length >= 2);
    for (const line of lines.slice(0, -1)) {
      assert.match(
        line,
        new RegExp(`^error: ${escape(join(root, "broken.yaml"))}#0: line \\d+, column \\d+: `),
      );
    }
    assert.equal(
      lines.at(-1),
      `gatehouse translate: nothing to translate in ${root}: no valid objects (${lines.length - 1} errors above)`,
    );
  });

  void test("fails with exit 1 when the directory holds no YAML at all", async () => {
    const root = await tempDir({ "readme.md": "# nothing here" });
    const run = await gatehouse("translate", "-c", root);
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `gatehouse translate: nothing to translate in ${root}: no objects found\n`);
  });

  void test("translates the valid objects, reports the broken ones and exits 0", async () => {
    const root = await tempDir({ "a-broken.yaml": BROKEN, "b-good.yaml": GOOD });
    const run = await gatehouse("translate", "--config", root, "--now", "2025-01-01T00:00:00Z");
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`^error: ${escape(join(root, "a-broken.yaml"))}#0: line \\d+`));
    const output = JSON.parse(run.stdout) as { statuses: unknown[]; ir: { gateways: unknown[] } };
    assert.ok(Array.isArray(output.statuses));
    assert.ok(output.statuses.length > 0);
    assert.equal(output.ir.gateways.length, 1);
    assert.ok(run.stdout.includes('"lastTransitionTime": "2025-01-01T00:00:00Z"'));
  });

  void test("prints no private key: certificates show the key's fingerprint", async () => {
    const input = await readFile(TLS_INPUT, "utf8");
    const key = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----/.exec(input)?.[0] ?? "";
    assert.ok(key !== "", "the input holds a key");
    // One more document that fails to load and quotes the key in its error.
    const broken = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: [${Buffer.from(key).toString("base64")}\n`;
    const root = await tempDir({ "tls.yaml": input, "broken.yaml": broken });
    const run = await gatehouse("translate", "--config", root, "--now", "2025-01-01T00:00:00Z");
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /PRIVATE KEY|LS0tLS1CRUdJTi/);
    assert.doesNotMatch(run.stdout, /keyPem/);
    assert.match(run.stdout, /"keySha256": "sha256:[0-9a-f]{64}"/);
    assert.match(run.stdout, /BEGIN CERTIFICATE/);
  });

  void test("rejects a malformed --now with a usage error (exit 2)", async () => {
    const run = await gatehouse("translate", "--config", ".", "--now", "yesterday");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^gatehouse translate: --now must be an RFC 3339 time/);
    assert.match(run.stderr, /Usage: gatehouse translate --config PATH/);
  });

  void test("requires --config (exit 2)", async () => {
    const run = await gatehouse("translate");
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^gatehouse translate: --config PATH is required\n\nUsage: gatehouse translate/);
  });

  void test("rejects unknown flags and positional arguments with usage on stderr (exit 2)", async () => {
    for (const args of [
      ["--config", ".", "--frobnicate"],
      ["--config", ".", "extra"],
    ]) {
      const run = await gatehouse("translate", ...args);
      assert.equal(run.code, 2, args.join(" "));
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /^gatehouse translate: .+\n\nUsage: gatehouse translate/);
    }
  });

  void test("prints its help on stdout with --help (exit 0)", async () => {
    const run = await gatehouse("translate", "--help");
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: gatehouse translate --config PATH/);
    assert.equal(run.stderr, "");
  });
});

void describe("gatehouse", () => {
  void test("prints the command overview with --help (exit 0)", async () => {
    for (const args of [["--help"], ["help"], ["-h"]]) {
      const run = await gatehouse(...args);
      assert.equal(run.code, 0);
      assert.match(run.stdout, /^Usage: gatehouse <command>/);
      assert.match(run.stdout, /\n {2}translate {2}/);
    }
    const run = await gatehouse("help", "translate");
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Usage: gatehouse translate/);
  });

  void test("rejects unknown commands and flags and a missing command with usage on stderr (exit 2)", async () => {
    for (const [args, message] of [
      [["frobnicate"], 'gatehouse: unknown command "frobnicate"\n\n'],
      [["--frobnicate"], 'gatehouse: unknown flag "--frobnicate"\n\n'],
      [[], ""],
    ] as const) {
      const run = await gatehouse(...args);
      assert.equal(run.code, 2);
      assert.equal(run.stdout, "");
      assert.ok(run.stderr.startsWith(`${message}Usage: gatehouse <command>`), run.stderr);
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
