// Bad input in a LIVE file (issue #8 parts 2 and 3), in serve mode with the real file provider and
// HAProxy, counting requests while it happens:
// - a YAML typo in the file holding live routes: they keep serving (the file's last valid version),
//   /status names file, line and column and says the file is stale; fixing the file applies again;
// - an object that becomes schema-invalid keeps its last valid version, the rejection is reported;
//   an object removed from a file that parses, or a deleted file, goes;
// - a binary or oversized file is refused with one short message (a live file replaced by binary
//   garbage keeps serving its last valid version);
// - a symbolic link loop in the config tree (`loop -> .`, `sub/up -> ..`) is read once: edits still
//   apply quickly, memory and log volume stay bounded.
import assert from "node:assert/strict";
import { mkdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { InputErrorReport } from "../../src/admin/state.ts";
import { useHarness, type Harness } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, ref, service } from "./resources.ts";

const harness = useHarness({
  backends: { echo: "http" },
  ports: 1,
  files: (h) => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", h.ip, [{ name: "http", port: h.port }]),
      service("echo", { endpoints: [h.backend("echo").endpoint] }),
    ),
    "routes.yaml": routesFile(["foo", "bar"]),
    "other.yaml": docs(
      httpRoute("other", { hostnames: ["other.example.com"], rules: [{ backendRefs: [ref("echo")] }] }),
    ),
  }),
});

/**
 * Routes written by hand (flow-style hostnames, as in the issue), one per name: `<name>.example.com`
 * to the echo backend. `extra` replaces the text of one route's rule (a path match, say).
 */
function routesFile(names: string[], extra: Record<string, string> = {}): string {
  return names
    .map(
      (name) => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: ${name}
  namespace: default
spec:
  parentRefs: [{ name: gw }]
  hostnames: ["${name}.example.com"]
  rules:
    - backendRefs: [{ name: echo, port: 80 }]
${extra[name] ?? ""}`,
    )
    .join("---\n");
}

interface Counts {
  ok: number;
  failed: number;
  /** What the failures were (status or error), with counts. */
  failures: Record<string, number>;
}

/** Requests to `host` back to back until stopped; an answer of the echo backend with 200 is ok. */
function traffic(h: Harness, host: string): { stop: () => Promise<Counts> } {
  const counts: Counts = { ok: 0, failed: 0, failures: {} };
  let running = true;
  const fail = (what: string): void => {
    counts.failed++;
    counts.failures[what] = (counts.failures[what] ?? 0) + 1;
  };
  const loop = (async () => {
    while (running) {
      try {
        const res = await h.get("/", { host, timeoutMs: 5000 });
        if (res.status === 200 && res.echo?.backend === "echo") counts.ok++;
        else fail(`status ${res.status}`);
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err));
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}

/** Traffic to each host while `during` runs and for `holdMs` after it; the counts per host. */
async function underTraffic(
  h: Harness,
  hosts: string[],
  during: () => Promise<void>,
  holdMs = 1500,
): Promise<Record<string, Counts>> {
  const running = hosts.map((host) => traffic(h, host));
  let counts: Counts[];
  try {
    await during();
    await new Promise((resolve) => setTimeout(resolve, holdMs));
  } finally {
    counts = await Promise.all(running.map((r) => r.stop()));
  }
  return Object.fromEntries(hosts.map((host, i) => [host, counts[i] as Counts]));
}

function assertNoFailures(counts: Record<string, Counts>): void {
  for (const [host, c] of Object.entries(counts)) {
    assert.equal(
      c.failed,
      0,
      `${host}: ${c.failed} of ${c.ok + c.failed} failed: ${JSON.stringify(c.failures)}`,
    );
    assert.ok(c.ok > 5, `${host}: only ${c.ok} requests made`);
  }
}

function errorsOf(errors: InputErrorReport[], file: string): InputErrorReport[] {
  return errors.filter((e) => e.file?.endsWith(`/${file}`) === true);
}

async function status(h: Harness, host: string): Promise<number> {
  return (await h.get("/", { host })).status;
}

describe("bad input in a live file", () => {
  test("a YAML typo: the file's routes keep serving its last valid version until it parses again", async (t) => {
    const h = harness();
    t.after(() => h.write({ "routes.yaml": routesFile(["foo", "bar"]) }));
    const typo = routesFile(["foo", "bar"]).replace(
      'hostnames: ["foo.example.com"]',
      'hostnames: ["foo.example.com"',
    );
    assert.notEqual(typo, routesFile(["foo", "bar"]));
    const hosts = ["foo.example.com", "bar.example.com", "other.example.com"];
    const counts = await underTraffic(h, hosts, async () => {
      await h.write({ "routes.yaml": typo });
    });
    assertNoFailures(counts);
    t.diagnostic(`requests during the typo: ${JSON.stringify(counts)}`);

    const doc = await h.status();
    const errors = errorsOf(doc.errors, "routes.yaml");
    assert.ok(errors.length >= 1, JSON.stringify(doc.errors));
    for (const error of errors) {
      assert.equal(error.stale, true, error.message);
      assert.match(error.servingSince ?? "", /^\d{4}-\d\d-\d\dT/);
      assert.match(error.message, /serving its last valid version, read at \d{4}-/);
      assert.ok(error.message.length < 400, error.message);
    }
    // The unclosed flow sequence is on line 8 of the file; the error names a line and column there
    // or after it (where the parser noticed).
    const first = errors[0];
    assert.ok(first?.line !== undefined && first.line >= 8, JSON.stringify(first));
    assert.ok(first.column !== undefined && first.column >= 1);
    assert.equal((await fetch(`${h.adminUrl}/ready`)).status, 200);

    // Fixed, with a change (foo gains a second hostname): applied, no longer stale.
    const fixed = routesFile(["foo", "bar"]).replace(
      'hostnames: ["foo.example.com"]',
      'hostnames: ["foo.example.com", "foo2.example.com"]',
    );
    await h.write({ "routes.yaml": fixed });
    assert.equal(await status(h, "foo2.example.com"), 200);
    assert.deepEqual(errorsOf((await h.status()).errors, "routes.yaml"), []);
  });

  test("a file with a typo from the start contributes nothing; deleting a stale file removes its routes", async (t) => {
    const h = harness();
    t.after(() => h.write({ "late.yaml": null }));
    await h.write({ "late.yaml": routesFile(["late"]).replace("- backendRefs", "- backendRefs: [") });
    assert.equal(await status(h, "late.example.com"), 404);
    const [error] = errorsOf((await h.status()).errors, "late.yaml");
    assert.ok(error !== undefined);
    assert.equal(error.stale, undefined, "nothing valid to serve yet: not stale");

    await h.write({ "late.yaml": routesFile(["late"]) });
    assert.equal(await status(h, "late.example.com"), 200);
    await h.write({ "late.yaml": routesFile(["late"]).replace("kind: HTTPRoute", "kind: [HTTPRoute") });
    assert.equal(await status(h, "late.example.com"), 200, "stale: the last valid version serves");
    // A deleted file is not a typo: its routes go.
    await h.write({ "late.yaml": null });
    assert.equal(await status(h, "late.example.com"), 404);
    assert.deepEqual(errorsOf((await h.status()).errors, "late.yaml"), []);
  });

  test("an object that becomes schema-invalid keeps its last valid version; the rest of the file applies", async (t) => {
    const h = harness();
    t.after(() => h.write({ "routes.yaml": routesFile(["foo", "bar"]) }));
    const invalid = routesFile(["foo", "bar"], {
      foo: "      matches: [{ path: { type: Bogus, value: /x } }]\n",
    }).replace('hostnames: ["bar.example.com"]', 'hostnames: ["bar.example.com", "bar2.example.com"]');
    const counts = await underTraffic(h, ["foo.example.com", "other.example.com"], async () => {
      await h.write({ "routes.yaml": invalid });
    });
    assertNoFailures(counts);
    assert.equal(await status(h, "bar2.example.com"), 200, "the valid change in the same file applied");

    const errors = errorsOf((await h.status()).errors, "routes.yaml");
    const rejection = errors.find(
      (e) => e.name === "foo" && e.field === "spec.rules[0].matches[0].path.type",
    );
    assert.ok(rejection !== undefined, JSON.stringify(errors));
    assert.ok(
      errors.every((e) => e.name === "foo" && e.stale === true),
      "only foo is rejected",
    );
    assert.equal(rejection.kind, "HTTPRoute");
    assert.equal(rejection.namespace, "default");
    assert.equal(rejection.line, 11, "the line of `type: Bogus`");
    assert.equal(rejection.stale, true);
    assert.match(rejection.message, /Bogus.*serving its last valid version, read at/);

    // Removed from a file that parses: deleted as usual.
    await h.write({ "routes.yaml": routesFile(["bar"]) });
    assert.equal(await status(h, "foo.example.com"), 404);
    assert.equal(await status(h, "bar.example.com"), 200);
  });

  test("binary and oversized files are refused with one short message; a live file turned binary keeps serving", async (t) => {
    const h = harness();
    t.after(() =>
      h.write({
        "bin.yaml": null,
        "big.yaml": null,
        "other.yaml": docs(
          httpRoute("other", { hostnames: ["other.example.com"], rules: [{ backendRefs: [ref("echo")] }] }),
        ),
      }),
    );
    const binary = `\u007fELF\u0002\u0001\u0001\u0000\u0000${"\u0000\u0001:\u001b[31m".repeat(20_000)}`;
    const big = `# ${"x".repeat(17 * 1024 * 1024)}\n`;
    const linesBefore = h.logLines;
    const counts = await underTraffic(
      h,
      ["other.example.com", "foo.example.com"],
      async () => {
        await h.write({ "bin.yaml": binary, "big.yaml": big, "other.yaml": binary });
      },
      500,
    );
    assertNoFailures(counts);

    const doc = await h.status();
    for (const [file, pattern] of [
      ["bin.yaml", /^refused: not a text file \(NUL byte at line 1, column 8\)$/],
      ["big.yaml", /^refused: larger than 16\.0 MiB \(17\.0 MiB\); split it into several files$/],
      ["other.yaml", /^refused: not a text file .*serving its last valid version/],
    ] as const) {
      const errors = errorsOf(doc.errors, file);
      assert.equal(errors.length, 1, `${file}: ${JSON.stringify(errors)}`);
      assert.match(errors[0]?.detail ?? "", pattern);
    }
    const logged = h.logs.slice(-(h.logLines - linesBefore));
    for (const line of logged) assert.ok(line.length < 1000, `a log line of ${line.length} characters`);
    assert.ok(!logged.some((line) => line.includes("\u001b")), "no raw control characters in the log");
    t.diagnostic(`log lines for the write: ${h.logLines - linesBefore}`);
  });

  test("a symbolic link loop in the tree is read once: edits still apply fast, memory stays bounded", async (t) => {
    const h = harness();
    const dir = h.configDir;
    t.after(async () => {
      await rm(join(dir, "loop"), { force: true });
      await rm(join(dir, "sub"), { recursive: true, force: true });
      await h.write({ "looped.yaml": null });
    });
    await mkdir(join(dir, "sub"));
    await symlink(".", join(dir, "loop"));
    await symlink("..", join(dir, "sub", "up"));
    const rssBefore = process.memoryUsage().rss;
    const linesBefore = h.logLines;
    const times: number[] = [];
    const counts = await underTraffic(h, ["other.example.com", "foo.example.com"], async () => {
      // The links themselves, then edits with them in place.
      times.push((await h.write({ "sub/looped.yaml": routesFile(["looped"]) })).ms);
      assert.equal(await status(h, "looped.example.com"), 200);
      for (let i = 2; i <= 5; i++) {
        const hosts = `hostnames: ["looped.example.com", "looped${i}.example.com"]`;
        const text = routesFile(["looped"]).replace('hostnames: ["looped.example.com"]', hosts);
        times.push((await h.write({ "sub/looped.yaml": text })).ms);
        assert.equal(await status(h, `looped${i}.example.com`), 200);
      }
    });
    assertNoFailures(counts);
    const grownMiB = (process.memoryUsage().rss - rssBefore) / (1024 * 1024);
    const lines = h.logLines - linesBefore;
    t.diagnostic(
      `edit applied in ${times.map((ms) => ms.toFixed(0)).join(", ")} ms; RSS +${grownMiB.toFixed(1)} MiB; ${lines} log lines`,
    );
    for (const ms of times) assert.ok(ms < 3000, `an edit took ${ms.toFixed(0)} ms`);
    assert.ok(grownMiB < 200, `RSS grew by ${grownMiB.toFixed(0)} MiB`);
    assert.ok(lines < 200, `${lines} log lines`);
    // Each loop is one warning, and the file below it is read once (no duplicate route).
    const doc = await h.status();
    const notes = doc.warnings.filter((w) => w.includes("skipped: the same directory"));
    assert.equal(notes.length, 2, JSON.stringify(doc.warnings));
    assert.deepEqual(
      doc.errors.filter((e) => e.message.includes("looped")),
      [],
      "the route below the loop is not defined twice",
    );
  });
});
