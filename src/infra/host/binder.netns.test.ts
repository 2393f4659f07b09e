// IpBinder against the real `ip`, inside a network namespace made for the test (and removed after).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { execRunner, IpBinder } from "./binder.ts";
import { HostInfrastructure } from "./host.ts";
import { AddressPool } from "./pool.ts";

const NETNS = `gh-test-${randomBytes(3).toString("hex")}`;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (ip netns add)";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
  } catch {
    return "iproute2 `ip` not found";
  }
  return undefined;
}

const skip = skipReason();

describe("IpBinder in a network namespace", { skip }, () => {
  before(() => execFileSync("ip", ["netns", "add", NETNS]));
  after(() => execFileSync("ip", ["netns", "del", NETNS]));

  test("creates the interface (dummy, or a bridge where the kernel has no dummy driver), adds, lists and removes addresses, deletes it", async () => {
    const binder = new IpBinder({ netns: NETNS, device: "gatehouse0" });
    assert.equal(await binder.ensureInterface(), true);
    assert.equal(await binder.ensureInterface(), true, "second time: exists already, and carries our mark");
    assert.deepEqual(await binder.list(), []);
    await binder.add("10.77.0.1");
    await binder.add("fd00:77::1");
    assert.deepEqual((await binder.list()).sort(), ["10.77.0.1", "fd00:77::1"]);
    const local = await binder.localAddresses();
    assert.ok(local.includes("10.77.0.1"));
    // The address is usable: a socket can bind it inside the namespace.
    const out = await execRunner("ip", ["netns", "exec", NETNS, "ip", "-j", "route", "get", "10.77.0.1"]);
    assert.match(out, /"type":"local"|"dev":"lo"/);
    await binder.remove("10.77.0.1");
    assert.deepEqual(await binder.list(), ["fd00:77::1"]);
    await assert.rejects(binder.remove("10.77.0.1"));
    await binder.deleteInterface();
    const links = await execRunner("ip", ["-n", NETNS, "-j", "link", "show"]);
    assert.ok(!links.includes("gatehouse0"));
  });

  test("HostInfrastructure with the real binder: bind, release, clean up on close", async () => {
    const binder = new IpBinder({ netns: NETNS, device: "gh-test0" });
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.78.0.0/29") });
    const gw = (name: string) => ({
      id: `default/${name}`,
      namespace: "default",
      name,
      gatewayClassName: "gh",
      addresses: [],
      listeners: [],
    });
    const out = await infra.prepare({
      ir: { gateways: [gw("a"), gw("b")], backends: [] },
      statuses: [],
      snapshot: (await import("../../resources/snapshot.ts")).emptySnapshot(),
      now: "2025-01-01T00:00:00Z",
    });
    assert.deepEqual(
      out.ir.gateways.map((g) => g.addresses),
      [["10.78.0.1"], ["10.78.0.2"]],
    );
    assert.deepEqual((await binder.list()).sort(), ["10.78.0.1", "10.78.0.2"]);
    await infra.close();
    const links = await execRunner("ip", ["-n", NETNS, "-j", "link", "show"]);
    assert.ok(!links.includes("gh-test0"), "the interface we created is gone");
  });

  test("after a SIGKILL: the next Gatehouse takes over the interface, removes the stale addresses, deletes it on close", async () => {
    const pool = new AddressPool("10.79.0.0/29");
    const gw = (name: string) => ({
      id: `default/${name}`,
      namespace: "default",
      name,
      gatewayClassName: "gh",
      addresses: [],
      listeners: [],
    });
    const input = async (names: string[]) => ({
      ir: { gateways: names.map(gw), backends: [] },
      statuses: [],
      snapshot: (await import("../../resources/snapshot.ts")).emptySnapshot(),
      now: "2025-01-01T00:00:00Z",
    });
    const first = new HostInfrastructure({
      binder: new IpBinder({ netns: NETNS, device: "gh-kill0" }),
      pool,
    });
    await first.prepare(await input(["a", "b"]));
    // `first` is killed: no close(). An address the administrator put there by hand is stale too.
    const binder = new IpBinder({ netns: NETNS, device: "gh-kill0" });
    assert.deepEqual((await binder.list()).sort(), ["10.79.0.1", "10.79.0.2"]);
    const second = new HostInfrastructure({ binder, pool });
    const out = await second.prepare(await input(["a"]));
    assert.deepEqual(
      out.ir.gateways.map((g) => g.addresses),
      [["10.79.0.1"]],
    );
    assert.deepEqual(await binder.list(), ["10.79.0.1"], "b's stale address is gone");
    await second.close();
    const links = await execRunner("ip", ["-n", NETNS, "-j", "link", "show"]);
    assert.ok(!links.includes("gh-kill0"), "the interface the killed Gatehouse created is deleted too");
  });

  test("an interface the administrator made (no mark) is never deleted", async () => {
    await execRunner("ip", ["-n", NETNS, "link", "add", "gh-admin0", "type", "bridge"]);
    const binder = new IpBinder({ netns: NETNS, device: "gh-admin0" });
    const infra = new HostInfrastructure({ binder, pool: new AddressPool("10.80.0.0/29") });
    await infra.prepare({
      ir: {
        gateways: [
          {
            id: "default/a",
            namespace: "default",
            name: "a",
            gatewayClassName: "gh",
            addresses: [],
            listeners: [],
          },
        ],
        backends: [],
      },
      statuses: [],
      snapshot: (await import("../../resources/snapshot.ts")).emptySnapshot(),
      now: "2025-01-01T00:00:00Z",
    });
    await infra.close();
    const links = await execRunner("ip", ["-n", NETNS, "-j", "link", "show"]);
    assert.ok(links.includes("gh-admin0"), "still there");
    assert.deepEqual(await binder.list(), [], "our addresses removed from it");
  });
});
