// The fake kubelet's runtime spec for a container of an OCI image (conformance/minicluster/kubelet/
// oci.ts): Kubernetes' command/args rules, the Pod's securityContext, volumes and network.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  runtimeSpec,
  type ContainerInput,
  type RuntimeSpec,
  type UnpackedImage,
} from "../../conformance/minicluster/kubelet/oci.ts";
import type { Container, PodSpec } from "../../conformance/minicluster/kubelet/types.ts";

const baseSpec: RuntimeSpec = {
  ociVersion: "1.0.2",
  process: {
    terminal: true,
    user: { uid: 65532, gid: 65532 },
    args: ["/bin/app", "--help"],
    env: [],
    cwd: "/",
    rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
  },
  root: { path: "rootfs" },
  mounts: [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/var/lib/gatehouse", type: "tmpfs", source: "none" },
  ],
  linux: { namespaces: [{ type: "pid" }, { type: "network" }, { type: "uts" }, { type: "mount" }] },
};
const image: UnpackedImage = {
  digest: "sha256:0",
  rootfs: "/cache/rootfs",
  config: {
    User: "65532:65532",
    Entrypoint: ["/usr/local/bin/gatehouse"],
    Cmd: ["--help"],
    Env: ["PATH=/usr/local/bin:/usr/bin", "TMPDIR=/var/lib/gatehouse"],
    WorkingDir: "/var/lib/gatehouse",
  },
  baseSpec,
};

function input(
  container: Partial<Container>,
  pod: Partial<PodSpec> = {},
  more: Partial<ContainerInput> = {},
): ContainerInput {
  const spec: Container = { name: "controller", image: "gatehouse:0.1.0", ...container };
  return {
    image,
    pod: { containers: [spec], ...pod },
    container: spec,
    env: new Map([["POD_NAME", "p"]]),
    expand: (text) => text.replace("$(POD_NAME)", "p"),
    mounts: new Map(),
    readOnlyMounts: new Set(),
    netns: "ns1",
    hostname: "p",
    ...more,
  };
}

void describe("kubelet runtime spec for OCI images", () => {
  void test("args replace Cmd and keep the entrypoint; env merges image and Pod; image user and cwd", () => {
    const spec = runtimeSpec(input({ args: ["controller", "--id=$(POD_NAME)"] }));
    assert.deepEqual(spec.process.args, ["/usr/local/bin/gatehouse", "controller", "--id=p"]);
    assert.deepEqual(spec.process.env, [
      "PATH=/usr/local/bin:/usr/bin",
      "TMPDIR=/var/lib/gatehouse",
      "POD_NAME=p",
    ]);
    assert.deepEqual(spec.process.user, { uid: 65532, gid: 65532 });
    assert.equal(spec.process.cwd, "/var/lib/gatehouse");
    assert.equal(spec.process.terminal, false);
    // umoci's RLIMIT_NOFILE 1024:1024 is dropped, as a CRI runtime sets no rlimits (inherited).
    assert.equal(spec.process["rlimits"], undefined);
  });

  void test("command replaces the entrypoint and drops Cmd", () => {
    assert.deepEqual(runtimeSpec(input({ command: ["/usr/sbin/haproxy", "-v"] })).process.args, [
      "/usr/sbin/haproxy",
      "-v",
    ]);
  });

  void test("securityContext: user, read-only root, drop ALL + add, no_new_privs", () => {
    const spec = runtimeSpec(
      input({
        securityContext: {
          runAsUser: 0,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_BIND_SERVICE"] },
        },
      }),
    );
    assert.equal(spec.process.user.uid, 0);
    assert.deepEqual(spec.root, { path: "/cache/rootfs", readonly: true });
    assert.equal(spec.process.noNewPrivileges, true);
    assert.deepEqual(spec.process.capabilities?.bounding, ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]);
    assert.deepEqual(spec.process.capabilities?.ambient, []);
  });

  void test("runAsNonRoot with a root user is refused", () => {
    assert.throws(
      () =>
        runtimeSpec(
          input({ securityContext: { runAsUser: 0 } }, { securityContext: { runAsNonRoot: true } }),
        ),
      /runAsNonRoot/,
    );
  });

  void test("volumes are bind mounts replacing the image's VOLUME tmpfs; read-only when asked", () => {
    const spec = runtimeSpec(
      input(
        {},
        {},
        {
          mounts: new Map([
            ["/var/lib/gatehouse", "/pods/x/volumes/state"],
            ["/var/run/secrets/kubernetes.io/serviceaccount", "/pods/x/volumes/token"],
          ]),
          readOnlyMounts: new Set(["/var/run/secrets/kubernetes.io/serviceaccount"]),
        },
      ),
    );
    assert.deepEqual(
      spec.mounts.map((m) => [m.destination, m.type, m.options?.at(-1)]),
      [
        ["/proc", "proc", undefined],
        ["/var/lib/gatehouse", "bind", "rw"],
        ["/var/run/secrets/kubernetes.io/serviceaccount", "bind", "ro"],
      ],
    );
  });

  void test("network: the Pod's netns with its sysctls; hostNetwork shares the host's network and UTS", () => {
    const own = runtimeSpec(
      input(
        {},
        { securityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] } },
      ),
    );
    assert.deepEqual(
      own.linux.namespaces.find((ns) => ns.type === "network"),
      { type: "network", path: "/var/run/netns/ns1" },
    );
    assert.deepEqual(own.linux.sysctl, { "net.ipv4.ip_unprivileged_port_start": "0" });
    const host = runtimeSpec(input({}, { hostNetwork: true }, { netns: undefined }));
    assert.deepEqual(
      host.linux.namespaces.map((ns) => ns.type),
      ["pid", "mount"],
    );
    assert.equal(host.hostname, undefined);
  });
});
