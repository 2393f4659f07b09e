// Cookie session persistence (sessionPersistence.type Cookie, the default) through a real HAProxy and
// real echo backends on loopback: a new session gets Set-Cookie (Session vs Permanent attributes,
// Secure over HTTPS only), requests presenting it stick to one endpoint across many requests (also
// across weighted backendRefs), each rule has its own session, an absolute timeout ends a session
// on time. Endpoint changes go through the runtime API (no reload) and sessions stay on their
// endpoint, also when a new endpoint sorts before the others; a removed endpoint's clients are
// balanced onto the others and get a new session that sticks, also once a new endpoint has taken
// the removed one's server slot.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { keepAliveAgent, request, type Response } from "./client.ts";
import { Harness, selfSignedCert } from "./harness.ts";
import { docs, gateway, gatewayClass, httpRoute, prefix, ref, service, tlsSecret } from "./resources.ts";

/**
 * The e2e backends: `p1`..`p4` serve the persistent Service (`p5` joins it last), `other` is the
 * second backendRef.
 */
const POOL = ["p1", "p2", "p3", "p4"];

describe("cookie session persistence", () => {
  let h: Harness | undefined;
  let dir: string | undefined;
  let cert: { cert: string; key: string };
  /** POOL by port: endpoints are sorted (same address), so `byPort[0]` sorts first. */
  let byPort: string[] = [];
  const harness = (): Harness => {
    if (h === undefined) throw new Error("no harness");
    return h;
  };

  /** The Gateway, its Services (`sticky` with `members`) and the routes. */
  const files = (x: Harness, members: readonly string[], stickyWeight = 50): Record<string, string> => ({
    "gateway.yaml": docs(
      gatewayClass(),
      gateway("gw", x.ip, [
        { name: "http", port: x.ports[0] ?? 0 },
        { name: "https", port: x.ports[1] ?? 0, protocol: "HTTPS", certificates: ["cert"] },
      ]),
      tlsSecret("cert", cert.cert, cert.key),
      service("sticky", { endpoints: members.map((n) => x.backend(n).endpoint) }),
      service("other", { endpoints: [x.backend("other").endpoint] }),
    ),
    "routes.yaml": docs(
      httpRoute("session", {
        hostnames: ["session.test"],
        rules: [
          {
            matches: [prefix("/")],
            sessionPersistence: { sessionName: "gh", type: "Cookie" },
            backendRefs: [ref("sticky")],
          },
        ],
      }),
      httpRoute("permanent", {
        hostnames: ["permanent.test"],
        rules: [
          {
            matches: [prefix("/app")],
            sessionPersistence: {
              sessionName: "keep",
              absoluteTimeout: "1h",
              cookieConfig: { lifetimeType: "Permanent" },
            },
            backendRefs: [ref("sticky")],
          },
        ],
      }),
      httpRoute("weighted", {
        hostnames: ["weighted.test"],
        rules: [
          {
            sessionPersistence: { sessionName: "w" },
            backendRefs: [ref("sticky", { weight: stickyWeight }), ref("other", { weight: 50 })],
          },
        ],
      }),
      httpRoute("expiring", {
        hostnames: ["expiring.test"],
        rules: [{ sessionPersistence: { absoluteTimeout: "2s" }, backendRefs: [ref("sticky")] }],
      }),
      httpRoute("scoped", {
        hostnames: ["scoped.test"],
        rules: [
          { matches: [prefix("/a")], sessionPersistence: {}, backendRefs: [ref("sticky")] },
          { matches: [prefix("/b")], sessionPersistence: {}, backendRefs: [ref("sticky")] },
        ],
      }),
    ),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "gh-e2e-cookie-"));
    cert = await selfSignedCert(dir, ["session.test"]);
    h = await Harness.start({
      backends: { p1: "http", p2: "http", p3: "http", p4: "http", p5: "http", other: "http" },
      ports: 2,
      serverSlots: 8,
      // The three endpoints that sort last: the fourth, added later, sorts before them.
      files: (x) => {
        byPort = [...POOL].sort((a, b) => x.backend(a).port - x.backend(b).port);
        return files(x, byPort.slice(1));
      },
    });
  });
  after(async () => {
    await h?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const agent = keepAliveAgent();
  after(() => agent.destroy());
  const send = (host: string, cookie?: string, path = "/"): Promise<Response> =>
    request({
      address: harness().ip,
      port: harness().ports[0] ?? 0,
      host,
      path,
      agent,
      ...(cookie !== undefined ? { headers: { cookie } } : {}),
    });
  /** The Set-Cookie headers of a response. */
  const setCookies = (res: Response): string[] => res.headers["set-cookie"] ?? [];
  /** The one Set-Cookie of a response starting a session: `name=value` and its attributes. */
  const started = (res: Response): { pair: string; attributes: string[] } => {
    const all = setCookies(res);
    assert.equal(all.length, 1, `one Set-Cookie: ${JSON.stringify(all)}`);
    const [pair = "", ...attributes] = (all[0] ?? "").split(";").map((s) => s.trim());
    return { pair, attributes };
  };
  /** A new session on `host`: its `name=value` and the endpoint that served it. */
  const newSession = async (host: string, path = "/"): Promise<{ cookie: string; backend: string }> => {
    const res = await send(host, undefined, path);
    assert.equal(res.status, 200);
    return { cookie: started(res).pair, backend: res.echo?.backend ?? "" };
  };
  /** One session on each of `names` (new sessions are balanced: draw until every one has one). */
  const sessionsOn = async (host: string, names: readonly string[]): Promise<Map<string, string>> => {
    const sessions = new Map<string, string>();
    for (let i = 0; i < 300 && sessions.size < names.length; i++) {
      const s = await newSession(host);
      if (!sessions.has(s.backend)) sessions.set(s.backend, s.cookie);
    }
    assert.deepEqual([...sessions.keys()].sort(), [...names].sort(), "a session on every endpoint");
    return sessions;
  };
  const assertSticks = async (
    host: string,
    cookie: string,
    backend: string,
    n: number,
    path = "/",
  ): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const res = await send(host, cookie, path);
      assert.equal(res.status, 200);
      assert.equal(res.echo?.backend, backend, `request ${i} with ${cookie}`);
      assert.deepEqual(setCookies(res), [], "a live session is not set again");
    }
  };

  test("a new session gets a Session cookie (no Max-Age or Expires, Path of the rule, HttpOnly; not Secure over HTTP), privately", async () => {
    const res = await send("session.test");
    const { pair, attributes } = started(res);
    assert.match(pair, /^gh=[0-9a-f]{8}\.[0-9a-f]+$/);
    assert.deepEqual(attributes.sort(), ["HttpOnly", "Path=/", "SameSite=Lax"]);
    // A shared cache must not give this session to others; once kept, nothing is added.
    assert.equal(res.headers["cache-control"], "private");
    const kept = await send("session.test", pair);
    assert.equal(kept.headers["cache-control"], undefined);
  });

  test("requests presenting the cookie stick to one endpoint across many requests", async () => {
    const s = await newSession("session.test");
    await assertSticks("session.test", s.cookie, s.backend, 60);
    // Among the application's other cookies too.
    const res = await send("session.test", `a=1; ${s.cookie}; b=2`);
    assert.equal(res.echo?.backend, s.backend);
  });

  test("new sessions spread over the endpoints", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) seen.add((await newSession("session.test")).backend);
    assert.ok(seen.size >= 2, `new sessions went to ${[...seen].join(", ")}`);
  });

  test("a Permanent cookie carries Max-Age = absoluteTimeout and the rule's path", async () => {
    const res = await send("permanent.test", undefined, "/app/x");
    const { pair, attributes } = started(res);
    assert.match(pair, /^keep=[0-9a-f]{8}\.[0-9a-f]+\.[0-9]+$/, "the value carries the expiry");
    assert.deepEqual(attributes.sort(), ["HttpOnly", "Max-Age=3600", "Path=/app", "SameSite=Lax"]);
    const expiry = Number(pair.split(".")[2]);
    const now = Date.now() / 1000;
    assert.ok(Math.abs(expiry - (now + 3600)) < 5, `expiry ${expiry} is about now + 1 h`);
    await assertSticks("permanent.test", pair, res.echo?.backend ?? "", 20, "/app/y");
  });

  test("over HTTPS the cookie is Secure", async () => {
    const res = await request({
      address: harness().ip,
      port: harness().ports[1] ?? 0,
      host: "session.test",
      tls: { servername: "session.test", ca: cert.cert },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(started(res).attributes.sort(), ["HttpOnly", "Path=/", "SameSite=Lax", "Secure"]);
  });

  test("sessions stick across weighted backendRefs", async () => {
    const backends = new Set<string>();
    for (let s = 0; s < 10; s++) {
      const session = await newSession("weighted.test");
      backends.add(session.backend);
      await assertSticks("weighted.test", session.cookie, session.backend, 15);
    }
    assert.ok(backends.has("other") && backends.size >= 2, `sessions went to ${[...backends].join(", ")}`);
  });

  test("each rule has its own session: its own cookie name and Path", async () => {
    const a = started(await send("scoped.test", undefined, "/a"));
    const b = started(await send("scoped.test", undefined, "/b"));
    const name = (pair: string): string => pair.split("=")[0] ?? "";
    assert.notEqual(name(a.pair), name(b.pair));
    assert.ok(a.attributes.includes("Path=/a") && b.attributes.includes("Path=/b"));
    // /b does not take /a's session: it starts its own.
    const res = await send("scoped.test", a.pair, "/b");
    assert.equal(name(started(res).pair), name(b.pair));
  });

  test("a forged, foreign or malformed cookie is balanced and replaced", async () => {
    for (const cookie of ["gh=nothing.s1", "gh=", "gh=...", `gh=${"f".repeat(300)}`]) {
      const res = await send("session.test", cookie);
      assert.equal(res.status, 200, cookie);
      assert.notEqual(started(res).pair, cookie);
    }
  });

  test("an absolute timeout ends a Session cookie's session on time", async () => {
    const first = await newSession("expiring.test");
    assert.equal(first.cookie.split(".").length, 3, "the value carries its expiry");
    await assertSticks("expiring.test", first.cookie, first.backend, 5);
    await sleep(3100);
    const later = await send("expiring.test", first.cookie);
    assert.equal(later.status, 200);
    assert.notEqual(started(later).pair, first.cookie, "a new session after the absolute timeout");
  });

  test("endpoint changes through the runtime API: sessions stay on their endpoint, a removed endpoint's clients are re-balanced", async () => {
    const x = harness();
    const [lowest = "", ...initial] = byPort;
    const reloads = await x.masterReloads();
    const sessions = await sessionsOn("session.test", initial);

    // A new endpoint that sorts before the others: a slot-keyed cookie would now name another pod.
    const added = await x.write(files(x, byPort));
    assert.equal(added.method, "runtime", "added through the runtime API");
    for (const [name, cookie] of sessions) await assertSticks("session.test", cookie, name, 15);
    const withNew = await sessionsOn("session.test", byPort);
    assert.ok(withNew.has(lowest), "new sessions reach the new endpoint");

    // The sticky endpoint of one session goes: its clients are balanced onto the others and get a
    // new session, which sticks; every other session stays where it was.
    const [gone = "", ...left] = initial;
    const removed = await x.write(files(x, [lowest, ...left]));
    assert.equal(removed.method, "runtime", "removed through the runtime API");
    const moved = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const res = await send("session.test", sessions.get(gone));
      assert.equal(res.status, 200);
      const to = res.echo?.backend ?? "";
      assert.ok([lowest, ...left].includes(to), `went to ${to}`);
      moved.set(to, (moved.get(to) ?? 0) + 1);
      const next = started(res).pair;
      assert.notEqual(next, sessions.get(gone));
      if (i < 3) await assertSticks("session.test", next, to, 10);
    }
    assert.ok(moved.size >= 2, `re-balanced, not sent to one endpoint: ${JSON.stringify([...moved])}`);
    for (const name of left) await assertSticks("session.test", sessions.get(name) ?? "", name, 15);
    await assertSticks("session.test", withNew.get(lowest) ?? "", lowest, 15);

    // A new endpoint takes the server slot the removed one had: the removed endpoint's clients are
    // still balanced (a slot-keyed cookie would now send them all to the new pod).
    const joined = await x.write(files(x, [lowest, ...left, "p5"]));
    assert.equal(joined.method, "runtime", "added through the runtime API");
    // The slots as HAProxy has them: the map the configuration names (its files are rewritten too).
    const cfg = await readFile(join(x.stateDir, "haproxy.cfg"), "utf8");
    const mapFile = /map_str\((\S+\/sessions\.map)\)/.exec(cfg)?.[1] ?? "";
    const config = await readFile(mapFile, "utf8");
    const slotOf = (name: string): string | undefined => {
      const hex = Buffer.from(x.backend(name).endpoint).toString("hex");
      return config
        .split("\n")
        .find((l) => l.includes(`.${hex} `))
        ?.split(" ")[1];
    };
    assert.equal(slotOf("p5"), "s1", "p5 took the slot of the endpoint removed before");
    const after = new Map<string, number>();
    for (let i = 0; i < 24; i++) {
      const res = await send("session.test", sessions.get(gone));
      const to = res.echo?.backend ?? "";
      after.set(to, (after.get(to) ?? 0) + 1);
      assert.notEqual(started(res).pair, sessions.get(gone), "a new session each time");
    }
    assert.ok(after.size >= 2, `re-balanced, not glued to the slot's new pod: ${JSON.stringify([...after])}`);
    for (const name of left) await assertSticks("session.test", sessions.get(name) ?? "", name, 10);
    assert.equal(await x.masterReloads(), reloads, "no reload");
  });

  test("a backendRef whose weight drops to 0 keeps its sessions (GEP-1619); new sessions go elsewhere", async () => {
    const x = harness();
    const members = [...byPort.slice(0, 1), ...byPort.slice(2), "p5"];
    let sticky: { cookie: string; backend: string } | undefined;
    for (let i = 0; i < 100 && sticky === undefined; i++) {
      const s = await newSession("weighted.test");
      if (s.backend !== "other") sticky = s;
    }
    assert.ok(sticky !== undefined, "a session on the sticky Service");
    const reloads = await x.masterReloads();
    const applied = await x.write(files(x, members, 0));
    assert.equal(applied.method, "runtime", "a weight change is a map update");
    await assertSticks("weighted.test", sticky.cookie, sticky.backend, 20);
    for (let i = 0; i < 20; i++) assert.equal((await newSession("weighted.test")).backend, "other");
    assert.equal(await x.masterReloads(), reloads, "no reload");
  });

  test("values HAProxy cannot express are conditions of their rule only: the route's other rule and every other route still serve", async () => {
    const x = harness();
    const before = await newSession("session.test");
    const applied = await x.write({
      "bad.yaml": docs(
        httpRoute("bad", {
          hostnames: ["bad.test"],
          rules: [
            // A cookie name must be a token: this one would add an attribute.
            {
              matches: [prefix("/name")],
              sessionPersistence: { sessionName: "s; Domain=evil.test" },
              backendRefs: [ref("other")],
            },
            {
              matches: [prefix("/zero")],
              sessionPersistence: { absoluteTimeout: "0s", cookieConfig: { lifetimeType: "Permanent" } },
              backendRefs: [ref("other")],
            },
            { matches: [prefix("/good")], sessionPersistence: {}, backendRefs: [ref("other")] },
          ],
        }),
      ),
    });
    assert.equal(applied.result, "success");
    // A new cookie variant changes the configuration's structure: HAProxy reloaded, and the old
    // worker may still answer on a kept-alive connection. New connections from here on.
    const send = (host: string, cookie: string | undefined, path: string): Promise<Response> =>
      request({
        address: x.ip,
        port: x.ports[0] ?? 0,
        host,
        path,
        ...(cookie !== undefined ? { headers: { cookie } } : {}),
      });
    const route = (await x.status()).objects.find((o) => o.kind === "HTTPRoute" && o.metadata.name === "bad");
    const conditions = (route?.status["parents"] as Array<{ conditions: Array<Record<string, string>> }>)[0]
      ?.conditions;
    const accepted = conditions?.find((c) => c["type"] === "Accepted");
    const partial = conditions?.find((c) => c["type"] === "PartiallyInvalid");
    assert.equal(accepted?.["status"], "True");
    assert.match(partial?.["message"] ?? "", /^Dropped Rule spec\.rules\[0\], spec\.rules\[1\]/);
    assert.match(partial?.["message"] ?? "", /spec\.rules\[0\]\.sessionPersistence\.sessionName/);
    assert.match(partial?.["message"] ?? "", /spec\.rules\[1\]\.sessionPersistence\.absoluteTimeout/);
    assert.equal((await send("bad.test", undefined, "/name")).status, 500);
    assert.equal((await send("bad.test", undefined, "/zero")).status, 500);
    const good = await send("bad.test", undefined, "/good");
    assert.equal(good.status, 200);
    assert.match(started(good).pair, /^gh-session-[0-9a-f]{12}=/);
    const first = await send("session.test", undefined, "/");
    const cookie = started(first).pair;
    for (let i = 0; i < 5; i++)
      assert.equal((await send("session.test", cookie, "/")).echo?.backend, first.echo?.backend);
    // A session from before the reload still sticks (the slots were kept through it).
    assert.equal(applied.method, "reload");
    for (let i = 0; i < 10; i++)
      assert.equal((await send("session.test", before.cookie, "/")).echo?.backend, before.backend);
  });
});
