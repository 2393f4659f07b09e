import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../errors.ts";
import { main, type CliIO } from "./main.ts";
import {
  DEFAULT_LEASE_NAMESPACE,
  leaderIdentity,
  leaseNamespace,
  parseControllerArgs,
} from "./controller.ts";

describe("gatehouse controller: command line", () => {
  test("defaults", () => {
    const a = parseControllerArgs([]);
    assert.equal(a.infrastructure, "host");
    assert.equal(a.addressPool, undefined);
    assert.equal(a.interfaceName, "gatehouse0");
    assert.equal(a.controllerName, "gatehouse.dev/gateway-controller");
    assert.equal(a.leaderElect, true);
    assert.deepEqual(a.admin, { host: "127.0.0.1", port: 9901 });
    assert.deepEqual(a.udp, { idleTimeoutMs: 60_000, maxFlows: 4096 });
    assert.equal(a.logFormat, "json");
    assert.deepEqual(a.leaseTimings, {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
  });

  test("leader election timings: durations, checked as client-go checks them", () => {
    const a = parseControllerArgs([
      "--leader-elect-lease-duration=1m",
      "--leader-elect-renew-deadline=40s",
      "--leader-elect-retry-period=500ms",
    ]);
    assert.deepEqual(a.leaseTimings, {
      leaseDurationMs: 60_000,
      renewDeadlineMs: 40_000,
      retryPeriodMs: 500,
    });
    for (const args of [
      ["--leader-elect-lease-duration=10s"], // not longer than the default renew deadline
      ["--leader-elect-renew-deadline=2s"], // not longer than 1.2 × the default retry period
      ["--leader-elect-retry-period=0s"],
      ["--leader-elect-lease-duration=15"],
      ["--leader-elect-renew-deadline=-1s"],
    ]) {
      assert.throws(() => parseControllerArgs(args), UsageError, args.join(" "));
    }
  });

  test("flags", () => {
    const a = parseControllerArgs([
      "--kubeconfig=/k",
      "--infrastructure=host",
      "--address-pool=10.1.2.0/24",
      "--leader-elect=false",
      "--lease-namespace=ns",
      "--controller-name=x.dev/y",
      "--admin=0.0.0.0:1234",
      "--admin-token-file=/run/admin-token",
      "--udp-idle-timeout=5",
      "--udp-max-flows=10",
      "--log-format=text",
    ]);
    assert.deepEqual(a.udp, { idleTimeoutMs: 5000, maxFlows: 10 });
    assert.equal(a.logFormat, "text");
    assert.equal(a.kubeconfig, "/k");
    assert.equal(a.addressPool?.cidr, "10.1.2.0/24");
    assert.equal(a.leaderElect, false);
    assert.equal(a.leaseNamespace, "ns");
    assert.equal(a.controllerName, "x.dev/y");
    assert.deepEqual(a.admin, { host: "0.0.0.0", port: 1234, tokenFile: "/run/admin-token" });
  });

  test("--infrastructure kubernetes: its flags, required ones, and no host-only flags", () => {
    const a = parseControllerArgs([
      "--infrastructure=kubernetes",
      "--dataplane-image=registry.example.com/gatehouse:1.2.3",
      "--dataplane-image-pull-secret=one",
      "--dataplane-image-pull-secret=two",
      "--distribute-address=gatehouse-distribution.gatehouse-system.svc:9443",
    ]);
    assert.equal(a.infrastructure, "kubernetes");
    assert.deepEqual(a.kubernetes, {
      dataplaneImage: "registry.example.com/gatehouse:1.2.3",
      dataplanePullPolicy: "IfNotPresent",
      dataplanePullSecrets: ["one", "two"],
      distributeListen: { host: "0.0.0.0", port: 9443 },
      distributeAddress: { host: "gatehouse-distribution.gatehouse-system.svc", port: 9443 },
      caSecret: "gatehouse-ca",
    });
    const required = (args: string[], pattern: RegExp): void => {
      assert.throws(
        () => parseControllerArgs(args),
        (e: unknown) => e instanceof UsageError && pattern.test(e.message),
        args.join(" "),
      );
    };
    required(["--infrastructure=kubernetes", "--distribute-address=a:1"], /needs --dataplane-image/);
    required(["--infrastructure=kubernetes", "--dataplane-image=x"], /needs --distribute-address/);
    required(
      [
        "--infrastructure=kubernetes",
        "--dataplane-image=x",
        "--distribute-address=a:1",
        "--address-pool=10.0.0.0/24",
      ],
      /only with --infrastructure host/,
    );
    required(["--dataplane-image=x"], /--dataplane-image: only with --infrastructure kubernetes/);
    required(
      ["--infrastructure=kubernetes", "--dataplane-image=x", "--distribute-address=nohost"],
      /--distribute-address must be HOST:PORT/,
    );
    assert.equal(parseControllerArgs([]).kubernetes, undefined);
  });

  test("bad values are usage errors", () => {
    for (const args of [
      ["--infrastructure=cloud"],
      ["--leader-elect=yes"],
      ["--address-pool=10.0.0.0/40"],
      ["--interface=much-too-long-name"],
      ["--server-slots=0"],
      ["--spare-backends=-1"],
      ["--spare-backends=many"],
      ["--log-level=loud"],
      ["--udp-idle-timeout=0"],
      ["--udp-idle-timeout=1.5"],
      ["--udp-max-flows=0"],
    ]) {
      assert.throws(() => parseControllerArgs(args), UsageError, args.join(" "));
    }
  });

  test("exit code 2 and the usage for a usage error", async () => {
    const err: string[] = [];
    const io: CliIO = { stdout: () => undefined, stderr: (t) => err.push(t), now: () => new Date(0) };
    assert.equal(await main(["controller", "--infrastructure=kubernetes"], io), 2);
    assert.match(err.join(""), /gatehouse controller: --infrastructure kubernetes needs --dataplane-image/);
    assert.match(err.join(""), /Usage: gatehouse controller/);
  });

  test("lease namespace: flag, then $POD_NAMESPACE, then the default", () => {
    assert.equal(leaseNamespace("flag", { POD_NAMESPACE: "pod" }), "flag");
    assert.equal(leaseNamespace(undefined, { POD_NAMESPACE: "pod" }), "pod");
    assert.equal(leaseNamespace(undefined, {}), DEFAULT_LEASE_NAMESPACE);
  });

  test("leader identity: the pod name and a random suffix", () => {
    assert.match(leaderIdentity({ POD_NAME: "gatehouse-abc" }), /^gatehouse-abc_[0-9a-f]{8}$/);
    assert.notEqual(leaderIdentity({ POD_NAME: "p" }), leaderIdentity({ POD_NAME: "p" }));
  });
});
