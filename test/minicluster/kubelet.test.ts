// Unit tests of the fake kubelet's pure parts: environment and downward API, path rewriting,
// image mapping, volumes, CRI logs and their query options.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  containerEnv,
  ContainerConfigError,
  expand,
  fieldRefValue,
  rewritePaths,
} from "../../conformance/minicluster/kubelet/env.ts";
import {
  BUILTIN_IMAGES,
  containerArgv,
  parseImageRules,
  resolveImage,
} from "../../conformance/minicluster/kubelet/images.ts";
import {
  LogWriter,
  logOptionsFromQuery,
  nowRfc3339Nano,
  parseTimestampNs,
  readLog,
} from "../../conformance/minicluster/kubelet/logs.ts";
import type { DataObject, Pod } from "../../conformance/minicluster/kubelet/types.ts";
import {
  containerMounts,
  materializeVolumes,
  VolumeError,
} from "../../conformance/minicluster/kubelet/volumes.ts";

const tmp = await mkdtemp(join(tmpdir(), "gh-kubelet-test-"));
after(() => rm(tmp, { recursive: true, force: true }));

const b64 = (s: string) => Buffer.from(s).toString("base64");

const pod: Pod = {
  metadata: { name: "web-1", namespace: "ns1", uid: "u-1", labels: { app: "web" } },
  spec: {
    nodeName: "node",
    containers: [
      {
        name: "c",
        image: "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
        env: [
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
          { name: "IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
          { name: "TLS_SERVER_CERT", value: "/etc/secret-volume/crt" },
          { name: "GREETING", value: "hi $(POD_NAME) $$(POD_NAME) $(MISSING)" },
          { name: "FROM_CM", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } },
          { name: "FROM_SECRET", valueFrom: { secretKeyRef: { name: "s", key: "tls.key" } } },
        ],
        volumeMounts: [
          { name: "secret-volume", mountPath: "/etc/secret-volume" },
          { name: "conf", mountPath: "/root" },
        ],
      },
    ],
    volumes: [
      {
        name: "secret-volume",
        secret: {
          secretName: "s",
          items: [
            { key: "tls.crt", path: "crt" },
            { key: "tls.key", path: "key" },
          ],
        },
      },
      { name: "conf", configMap: { name: "cm" } },
      { name: "empty", emptyDir: {} },
      {
        name: "api",
        projected: {
          sources: [
            { serviceAccountToken: { path: "token", expirationSeconds: 3600 } },
            { configMap: { name: "cm", items: [{ key: "k", path: "ca.crt" }] } },
            {
              downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] },
            },
          ],
        },
      },
    ],
  },
};

const objects: Record<string, DataObject> = {
  "configmaps/cm": { metadata: { name: "cm", uid: "1" }, data: { k: "v", Corefile: ".:53 {}\n" } },
  "secrets/s": {
    metadata: { name: "s", uid: "2" },
    data: { "tls.crt": b64("CERT"), "tls.key": b64("KEY"), other: b64("x") },
  },
};
const ctx = {
  pod,
  podIP: "10.244.1.7",
  hostIP: "10.244.0.1",
  getConfigMap: (name: string) => Promise.resolve(objects[`configmaps/${name}`]),
  getSecret: (name: string) => Promise.resolve(objects[`secrets/${name}`]),
  requestToken: () => Promise.resolve("TOKEN"),
};

describe("environment", () => {
  test("downward API, references, configMap and secret keys", async () => {
    const container = pod.spec.containers[0];
    assert.ok(container);
    const env = await containerEnv(container, ctx);
    assert.equal(env.get("POD_NAME"), "web-1");
    assert.equal(env.get("NAMESPACE"), "ns1");
    assert.equal(env.get("IP"), "10.244.1.7");
    assert.equal(env.get("GREETING"), "hi web-1 $(POD_NAME) $(MISSING)");
    assert.equal(env.get("FROM_CM"), "v");
    assert.equal(env.get("FROM_SECRET"), "KEY");
  });

  test("a missing key is a configuration error unless optional", async () => {
    const base = { name: "c", image: "x" };
    await assert.rejects(
      containerEnv(
        { ...base, env: [{ name: "A", valueFrom: { configMapKeyRef: { name: "cm", key: "nope" } } }] },
        ctx,
      ),
      ContainerConfigError,
    );
    const env = await containerEnv(
      {
        ...base,
        env: [{ name: "A", valueFrom: { secretKeyRef: { name: "gone", key: "k", optional: true } } }],
      },
      ctx,
    );
    assert.equal(env.has("A"), false);
  });

  test("fieldRef paths", () => {
    assert.equal(fieldRefValue(pod, "metadata.labels['app']", "", ""), "web");
    assert.equal(fieldRefValue(pod, "spec.nodeName", "", ""), "node");
    assert.equal(fieldRefValue(pod, "status.hostIP", "", "10.244.0.1"), "10.244.0.1");
    assert.equal(fieldRefValue(pod, "spec.nope", "", ""), undefined);
  });

  test("expansion", () => {
    const vars = new Map([["A", "1"]]);
    assert.equal(expand("$(A)-$$(A)-$(B)-$-$", vars), "1-$(A)-$(B)-$-$");
  });

  test("paths under a mountPath point into the volume", () => {
    const mounts = new Map([
      ["/etc/secret-volume", "/run/p/volumes/s"],
      ["/root", "/run/p/volumes/conf"],
    ]);
    assert.equal(rewritePaths("/etc/secret-volume/crt", mounts), "/run/p/volumes/s/crt");
    assert.equal(rewritePaths("/root/Corefile", mounts), "/run/p/volumes/conf/Corefile");
    assert.equal(rewritePaths("--conf=/root/Corefile", mounts), "--conf=/run/p/volumes/conf/Corefile");
    assert.equal(rewritePaths("/rootless/x", mounts), "/rootless/x");
    assert.equal(rewritePaths("/etc/secret-volume", mounts), "/run/p/volumes/s");
    assert.equal(rewritePaths("plain", mounts), "plain");
  });
});

describe("images", () => {
  test("echo-basic and coredns map to local binaries", () => {
    const binaries = { "echo-basic": "/bin/echo-basic", coredns: "/bin/coredns" };
    for (const image of [
      "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
      "gcr.io/k8s-staging-gateway-api/echo-basic:v20240412-v1.0.0-394-g40c666fd",
      "registry.k8s.io/gateway-api/echo-basic:v1.6.0-dev.3",
    ]) {
      const r = resolveImage(image, BUILTIN_IMAGES, binaries);
      assert.ok(r.ok && r.binary === "/bin/echo-basic", image);
    }
    const dns = resolveImage("registry.k8s.io/coredns/coredns:v1.12.2", BUILTIN_IMAGES, binaries);
    assert.ok(dns.ok && dns.binary === "/bin/coredns");
    const unknown = resolveImage(
      "registry.k8s.io/gateway-api/echo-advanced:v1.5.1",
      BUILTIN_IMAGES,
      binaries,
    );
    assert.ok(!unknown.ok && unknown.message.includes("no local binary"));
  });

  test("extra rules win and readiness ports follow echo-basic's environment", () => {
    const rules = [...parseImageRules(["^gatehouse/dataplane:.*$=/usr/bin/true"]), ...BUILTIN_IMAGES];
    const r = resolveImage("gatehouse/dataplane:dev", rules, {});
    assert.ok(r.ok && r.binary === "/usr/bin/true");
    const echo = BUILTIN_IMAGES[0];
    assert.ok(echo);
    assert.deepEqual(echo.readyPorts({}), [3000]);
    assert.deepEqual(echo.readyPorts({ UDP_ECHO_SERVER: "1" }), []);
    assert.deepEqual(echo.readyPorts({ TCP_ECHO_SERVER: "1", TCP_PORT: "4000" }), [4000]);
    assert.throws(() => parseImageRules(["nobinary"]));
  });

  test("argv: the image's entrypoint, then command[1:] and args", () => {
    assert.deepEqual(containerArgv("/b/coredns", undefined, ["-conf", "/root/Corefile"]), {
      ok: true,
      argv: ["/b/coredns", "-conf", "/root/Corefile"],
    });
    assert.deepEqual(containerArgv("/b/coredns", ["/coredns", "-x"], ["y"]), {
      ok: true,
      argv: ["/b/coredns", "-x", "y"],
    });
    assert.equal(containerArgv("/b/coredns", ["sh", "-c", "x"], undefined).ok, false);
  });
});

describe("volumes", () => {
  test("secret items, configMap, emptyDir and projected volumes", async () => {
    const dir = join(tmp, "vol1");
    const volumes = await materializeVolumes(pod, dir, ctx);
    assert.equal(await readFile(join(dir, "secret-volume", "crt"), "utf8"), "CERT");
    assert.equal(await readFile(join(dir, "secret-volume", "key"), "utf8"), "KEY");
    await assert.rejects(stat(join(dir, "secret-volume", "other")), "only the listed items");
    assert.equal(await readFile(join(dir, "conf", "Corefile"), "utf8"), ".:53 {}\n");
    assert.equal(((await stat(join(dir, "conf", "Corefile"))).mode & 0o777).toString(8), "644");
    assert.ok((await stat(join(dir, "empty"))).isDirectory());
    assert.equal(await readFile(join(dir, "api", "token"), "utf8"), "TOKEN");
    assert.equal(await readFile(join(dir, "api", "ca.crt"), "utf8"), "v");
    assert.equal(await readFile(join(dir, "api", "namespace"), "utf8"), "ns1");
    const container = pod.spec.containers[0];
    assert.ok(container);
    assert.deepEqual(
      containerMounts(container, volumes),
      new Map([
        ["/etc/secret-volume", join(dir, "secret-volume")],
        ["/root", join(dir, "conf")],
      ]),
    );
  });

  test("a missing secret keeps the pod waiting; an optional one does not", async () => {
    const missing: Pod = {
      ...pod,
      spec: { ...pod.spec, volumes: [{ name: "v", secret: { secretName: "gone" } }] },
    };
    await assert.rejects(materializeVolumes(missing, join(tmp, "vol2"), ctx), VolumeError);
    const optional: Pod = {
      ...pod,
      spec: { ...pod.spec, volumes: [{ name: "v", secret: { secretName: "gone", optional: true } }] },
    };
    await materializeVolumes(optional, join(tmp, "vol3"), ctx);
    const unsupported: Pod = {
      ...pod,
      spec: { ...pod.spec, volumes: [{ name: "v", persistentVolumeClaim: { claimName: "x" } }] },
    };
    await assert.rejects(materializeVolumes(unsupported, join(tmp, "vol4"), ctx), /not supported/);
  });

  test("item paths cannot escape the volume", async () => {
    const bad: Pod = {
      ...pod,
      spec: {
        ...pod.spec,
        volumes: [{ name: "v", configMap: { name: "cm", items: [{ key: "k", path: "../../x" }] } }],
      },
    };
    await assert.rejects(materializeVolumes(bad, join(tmp, "vol5"), ctx), VolumeError);
  });
});

describe("logs", () => {
  test("timestamps keep nanoseconds and order", () => {
    const a = nowRfc3339Nano();
    const b = nowRfc3339Nano();
    assert.match(a, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
    const na = parseTimestampNs(a);
    const nb = parseTimestampNs(b);
    assert.ok(na !== undefined && nb !== undefined && nb >= na);
    assert.equal(parseTimestampNs("2026-01-02T03:04:05Z"), 1767323045000000000n);
    assert.equal(parseTimestampNs("2026-01-02T03:04:05.5Z"), 1767323045500000000n);
  });

  test("CRI lines, partial lines, since, tail, timestamps, limitBytes", () => {
    const file = join(tmp, "c.log");
    const writer = new LogWriter(file);
    writer.write("stdout", "one\ntw");
    writer.write("stdout", "o\n");
    writer.write("stderr", "three");
    writer.flush();
    assert.equal(readLog(file, {}).text, "one\ntwo\nthree\n");
    assert.equal(readLog(file, { tailLines: 1 }).text, "three\n");
    assert.equal(readLog(file, { tailLines: 0 }).text, "");
    assert.match(readLog(file, { timestamps: true }).text.split("\n")[0] ?? "", /^\S+Z one$/);
    assert.equal(readLog(file, { limitBytes: 5 }).text, "one\nt");
    const future = (BigInt(Date.now()) + 60_000n) * 1_000_000n;
    assert.equal(readLog(file, { sinceNs: future }).text, "");
    assert.equal(readLog(file, { sinceNs: 0n }).text, "one\ntwo\nthree\n");
    assert.equal(readLog(join(tmp, "none.log"), {}).text, "");
  });

  test("query options as the API server passes them", () => {
    const q = new URLSearchParams(
      "sinceTime=2026-01-02T03:04:05Z&timestamps=true&tailLines=10&follow=false&limitBytes=100",
    );
    const o = logOptionsFromQuery(q);
    assert.equal(o.sinceNs, 1767323045000000000n);
    assert.equal(o.timestamps, true);
    assert.equal(o.tailLines, 10);
    assert.equal(o.limitBytes, 100);
    assert.equal(o.follow, false);
    assert.equal(
      logOptionsFromQuery(new URLSearchParams("sinceSeconds=10"), 20_000).sinceNs,
      10_000_000_000n,
    );
    assert.throws(() => logOptionsFromQuery(new URLSearchParams("sinceTime=yesterday")));
  });
});
