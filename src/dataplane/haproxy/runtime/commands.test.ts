// The runtime commands against a real HAProxy, verified by real traffic. The same cases run over the
// stats socket and over the master CLI (`@1`), the two ways the applier can reach a worker.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { TestContext } from "node:test";
import { connect as tlsConnect } from "node:tls";
import {
  baseConfig,
  freePort,
  hasOpenssl,
  httpGet,
  selfSignedPem,
  startBackend,
  startHAProxy,
  tempDir,
  writeConfig,
} from "../process/testkit.ts";
import type { HAProxyProcess } from "../process/manager.ts";
import {
  abortSslCert,
  addCrtListEntry,
  addMapEntries,
  addMapEntry,
  commitMap,
  deleteCrtListEntry,
  deleteMapEntry,
  deleteSslCert,
  formatCrtListEntry,
  listMaps,
  newSslCert,
  parseServersState,
  prepareMap,
  replaceMap,
  setMapEntry,
  setServerAddress,
  setServerState,
  setServerWeight,
  setSslCert,
  showCrtList,
  showInfo,
  showMap,
  showServersState,
  showSslCerts,
  updateServerSlot,
  upsertSslCert,
} from "./commands.ts";
import { RuntimeCommandError, RuntimeRequestError, UnixSocketRuntimeApi } from "./socket.ts";
import type { RuntimeApi } from "./socket.ts";

interface Fixture {
  dir: string;
  haproxy: HAProxyProcess;
  http: number;
  https: number;
  hosts: string;
  paths: string;
  crtList: string;
  a: { port: number };
  b: { port: number };
}

async function setup(t: TestContext): Promise<Fixture> {
  const dir = tempDir(t);
  const [a, b] = await Promise.all([startBackend(t, "A"), startBackend(t, "B")]);
  const [http, https] = [await freePort(), await freePort()];
  const hosts = join(dir, "hosts.map");
  const paths = join(dir, "paths.map");
  const crtList = join(dir, "https.crtlist");
  writeFileSync(hosts, "a.test be_a\nslots.test be_slots\n");
  writeFileSync(paths, "/api/ be_b\n");
  const tls = hasOpenssl();
  if (tls) {
    writeFileSync(join(dir, "default.pem"), selfSignedPem(dir, "default.test"));
    writeFileSync(crtList, `${join(dir, "default.pem")}\n`);
  }
  writeConfig(
    dir,
    `${baseConfig(dir)}
frontend fe
  bind 127.0.0.1:${http}
  ${tls ? `bind 127.0.0.1:${https} ssl crt-list ${crtList}` : ""}
  http-request set-var(txn.be) req.hdr(host),field(1,:),lower,map_str(${hosts})
  http-request set-var(txn.be) path,map_beg(${paths}) if !{ var(txn.be) -m found }
  use_backend %[var(txn.be)] if { var(txn.be) -m found }
  default_backend be_none

backend be_none
  http-request return status 404 content-type text/plain string "no route"

backend be_a
  server a 127.0.0.1:${a.port}

backend be_b
  server b 127.0.0.1:${b.port}

backend be_slots
  server-template s 1-3 127.0.0.1:1 disabled
`,
  );
  const haproxy = await startHAProxy(t, dir);
  return { dir, haproxy, http, https, hosts, paths, crtList, a, b };
}

/** `<status> <body>` of a request through HAProxy; HAProxy's own error pages as just the status. */
async function body(port: number, host: string, path = "/"): Promise<string> {
  const response = await httpGet(port, path, { host });
  return response.body.startsWith("<html>") ? String(response.status) : `${response.status} ${response.body}`;
}

/** The subject CN and serial of the certificate HAProxy serves for `servername`. */
function servedCertificate(port: number, servername: string): Promise<{ cn: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve({ cn: String(cert.subject.CN), serial: cert.serialNumber });
    });
    socket.setTimeout(2_000, () => socket.destroy(new Error("TLS timeout")));
    socket.on("error", reject);
  });
}

const implementations: Array<[string, (fixture: Fixture) => RuntimeApi]> = [
  ["stats socket", (f) => new UnixSocketRuntimeApi({ socketPath: join(f.dir, "admin.sock") })],
  ["master CLI @1", (f) => f.haproxy.runtime()],
];

for (const [name, connect] of implementations) {
  test(`runtime commands over the ${name}`, async (t) => {
    const f = await setup(t);
    const api = connect(f);

    await t.test("map transactions change routing at once, atomically", async () => {
      assert.equal(await body(f.http, "a.test"), "200 A /");
      assert.equal(await body(f.http, "x.test", "/api/v1"), "200 B /api/v1");
      assert.equal(await body(f.http, "b.test"), "404 no route");

      const maps = await listMaps(api);
      assert.deepEqual(
        maps.map((map) => [map.file, map.currentVersion, map.entries]),
        [
          [f.hosts, 0, 2],
          [f.paths, 0, 1],
        ],
      );

      // Prepared entries are invisible until the commit.
      const version = await prepareMap(api, f.hosts);
      assert.equal(version, 1);
      const bulk = Array.from({ length: 1_500 }, (_, i) => [`h${i}.test`, "be_a"] as const);
      const sent = await addMapEntries(
        api,
        f.hosts,
        [["b.test", "be_b"], ["a.test", "be_b"], ["slots.test", "be_slots"], ...bulk],
        { version },
      );
      assert.ok(sent > 1, "split over several payload commands");
      assert.equal((await showMap(api, f.hosts, version)).length, 1_503);
      assert.equal(await body(f.http, "b.test"), "404 no route");
      assert.equal(await body(f.http, "a.test"), "200 A /");
      await commitMap(api, f.hosts, version);
      assert.equal(await body(f.http, "b.test"), "200 B /");
      assert.equal(await body(f.http, "a.test"), "200 B /");
      assert.equal(await body(f.http, "h1499.test"), "200 A /");
      await assert.rejects(commitMap(api, f.hosts, version), /Version number out of range/);

      // replaceMap: the whole content, in one go.
      const committed = await replaceMap(api, f.hosts, [
        ["a.test", "be_a"],
        ["slots.test", "be_slots"],
      ]);
      assert.equal(committed, 2);
      assert.deepEqual(
        (await showMap(api, f.hosts)).map(({ key, value }) => `${key} ${value}`),
        ["a.test be_a", "slots.test be_slots"],
      );
      assert.equal(await body(f.http, "a.test"), "200 A /");
      assert.equal(await body(f.http, "b.test"), "404 no route");

      // map_beg on paths: single-entry edits.
      await addMapEntry(api, f.paths, "/static/", "be_a");
      assert.equal(await body(f.http, "x.test", "/static/app.js"), "200 A /static/app.js");
      assert.equal(await setMapEntry(api, f.paths, "/static/", "be_b"), true);
      assert.equal(await body(f.http, "x.test", "/static/app.js"), "200 B /static/app.js");
      assert.equal(await setMapEntry(api, f.paths, "/nothing/", "be_b"), false);
      assert.equal(await deleteMapEntry(api, f.paths, "/static/"), true);
      assert.equal(await deleteMapEntry(api, f.paths, "/static/"), false);
      assert.equal(await body(f.http, "x.test", "/static/app.js"), "404 no route");
      await assert.rejects(prepareMap(api, join(f.dir, "unknown.map")), RuntimeCommandError);
    });

    await t.test("server slots follow endpoints without a reload", async () => {
      assert.equal(await body(f.http, "slots.test"), "503");
      const before = await showServersState(api, "be_slots");
      assert.deepEqual(
        before.map((row) => [row.server, row.maintenance]),
        [
          ["s1", true],
          ["s2", true],
          ["s3", true],
        ],
      );

      await updateServerSlot(api, {
        backend: "be_slots",
        server: "s1",
        address: "127.0.0.1",
        port: f.a.port,
        weight: 10,
        state: "ready",
      });
      assert.equal(await body(f.http, "slots.test", "/x"), "200 A /x");
      await setServerAddress(api, "be_slots", "s1", "127.0.0.1", f.b.port);
      assert.equal(await body(f.http, "slots.test", "/y"), "200 B /y");

      const [s1] = await showServersState(api, "be_slots");
      assert.ok(s1 !== undefined);
      assert.deepEqual(
        [s1.address, s1.port, s1.maintenance, s1.draining, s1.userWeight],
        ["127.0.0.1", f.b.port, false, false, 10],
      );

      // Two slots, weighted: all traffic to the one with weight.
      await updateServerSlot(api, {
        backend: "be_slots",
        server: "s2",
        address: "127.0.0.1",
        port: f.a.port,
        weight: 0,
        state: "ready",
      });
      for (let i = 0; i < 4; i++) assert.equal(await body(f.http, "slots.test"), "200 B /");
      await setServerWeight(api, "be_slots", "s1", 0);
      await setServerWeight(api, "be_slots", "s2", 5);
      for (let i = 0; i < 4; i++) assert.equal(await body(f.http, "slots.test"), "200 A /");

      await setServerState(api, "be_slots", "s2", "drain");
      assert.equal((await showServersState(api, "be_slots"))[1]?.draining, true);
      await setServerState(api, "be_slots", "s1", "maint");
      await setServerState(api, "be_slots", "s2", "maint");
      assert.equal(await body(f.http, "slots.test"), "503");

      await assert.rejects(setServerAddress(api, "be_slots", "s1", "backend.example", 80), /Invalid addr/);
      await assert.rejects(setServerWeight(api, "be_slots", "s9", 1), /No such server/);
      await assert.rejects(setServerWeight(api, "be_slots", "s1", 300), RuntimeRequestError);
      await assert.rejects(setServerState(api, "be_none", "a/b", "ready"), RuntimeRequestError);
    });

    await t.test(
      "certificates and crt-lists change without a reload",
      { skip: !hasOpenssl() && "no openssl" },
      async () => {
        assert.equal((await servedCertificate(f.https, "b.test")).cn, "default.test");
        const bFile = join(f.dir, "b.pem");
        assert.deepEqual(await upsertSslCert(api, bFile, selfSignedPem(f.dir, "b.test")), { created: true });
        await addCrtListEntry(api, f.crtList, {
          certificate: bFile,
          options: ["alpn", "h2,http/1.1"],
          sniFilters: ["b.test"],
        });
        assert.equal((await servedCertificate(f.https, "b.test")).cn, "b.test");
        assert.equal((await servedCertificate(f.https, "other.test")).cn, "default.test");
        const lines = await showCrtList(api, f.crtList);
        assert.deepEqual(
          lines.map((line) => [line.certificate, line.line, line.rest]),
          [
            [join(f.dir, "default.pem"), 1, ""],
            [bFile, 2, "[alpn h2,http/1.1] b.test"],
          ],
        );

        // Replace a certificate in use: new handshakes get the new one.
        const old = await servedCertificate(f.https, "b.test");
        assert.deepEqual(await upsertSslCert(api, bFile, selfSignedPem(f.dir, "b.test")), { created: false });
        const renewed = await servedCertificate(f.https, "b.test");
        assert.equal(renewed.cn, "b.test");
        assert.notEqual(renewed.serial, old.serial);

        // A broken PEM leaves the served certificate alone and no transaction open.
        await assert.rejects(
          upsertSslCert(api, bFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
          RuntimeCommandError,
        );
        assert.deepEqual((await showSslCerts(api)).transactions, []);
        assert.equal((await servedCertificate(f.https, "b.test")).serial, renewed.serial);

        // One transaction at a time: 2.6 would put the second payload into the first transaction.
        const cFile = join(f.dir, "c.pem");
        await newSslCert(api, cFile);
        await setSslCert(api, bFile, selfSignedPem(f.dir, "b.test"));
        await assert.rejects(
          setSslCert(api, cFile, selfSignedPem(f.dir, "c.test")),
          /another certificate transaction is open/,
        );
        assert.equal(await abortSslCert(api, bFile), true);
        assert.equal(await abortSslCert(api, bFile), false);
        assert.equal((await servedCertificate(f.https, "b.test")).serial, renewed.serial);
        assert.equal(await deleteSslCert(api, cFile), true);
        assert.equal(await deleteSslCert(api, cFile), false);

        // Remove the SNI row: b.test falls back to the default certificate.
        assert.equal(await deleteCrtListEntry(api, f.crtList, bFile), true);
        assert.equal(await deleteCrtListEntry(api, f.crtList, bFile), false);
        assert.equal((await servedCertificate(f.https, "b.test")).cn, "default.test");
        assert.equal(await deleteSslCert(api, bFile), true);
        assert.deepEqual((await showSslCerts(api)).files, [join(f.dir, "default.pem")]);

        assert.throws(
          () => formatCrtListEntry({ certificate: bFile, options: ["verify required]"] }),
          RuntimeRequestError,
        );
        assert.throws(
          () => formatCrtListEntry({ certificate: bFile, sniFilters: ["a.test\nb"] }),
          RuntimeRequestError,
        );
        assert.throws(() => formatCrtListEntry({ certificate: "a b.pem" }), RuntimeRequestError);
      },
    );

    await t.test("show info", async () => {
      const info = await showInfo(api);
      assert.equal(info["Name"], "HAProxy");
      assert.equal(info["Pid"], String((await f.haproxy.workers())[0]));
      assert.match(info["Version"] ?? "", /^2\.6\./);
    });
  });
}

test("parseServersState rejects what it does not understand", () => {
  assert.throws(() => parseServersState("show servers state", "2\n# be_id\n"), RuntimeCommandError);
  assert.deepEqual(parseServersState("x", "1\n# be_id be_name srv_id srv_name\n"), []);
});
