import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../errors.ts";
import { AddressAllocator, AddressPool, canonicalAddress } from "./pool.ts";

describe("AddressPool", () => {
  test("IPv4: network and broadcast are not handed out", () => {
    const pool = new AddressPool("10.9.0.0/30");
    assert.equal(pool.cidr, "10.9.0.0/30");
    assert.equal(pool.size, 2n);
    assert.ok(!pool.contains("10.9.0.0"));
    assert.ok(pool.contains("10.9.0.1"));
    assert.ok(pool.contains("10.9.0.2"));
    assert.ok(!pool.contains("10.9.0.3"));
    assert.equal(pool.lowestFree(new Set()), "10.9.0.1");
    assert.equal(pool.lowestFree(new Set(["10.9.0.1", "10.9.0.2"])), undefined);
  });

  test("/32 and /31 are all usable; host bits in the CIDR are ignored", () => {
    assert.equal(new AddressPool("192.0.2.7/32").lowestFree(new Set()), "192.0.2.7");
    assert.equal(new AddressPool("192.0.2.7/31").size, 2n);
    assert.equal(new AddressPool("192.0.2.77/24").cidr, "192.0.2.0/24");
  });

  test("IPv6", () => {
    const pool = new AddressPool("fd00:10::/120");
    assert.equal(pool.lowestFree(new Set()), "fd00:10::1");
    assert.ok(pool.contains("fd00:10:0:0::ff"));
    assert.ok(!pool.contains("10.0.0.1"));
    assert.equal(canonicalAddress("fd00:0010:0000:0000:0000:0000:0000:0001"), "fd00:10::1");
    assert.equal(canonicalAddress("::ffff:10.0.0.1"), "::ffff:a00:1");
  });

  test("bad CIDRs are usage errors", () => {
    for (const bad of ["", "10.0.0.0/33", "nonsense/8", "10.0.0.0/x", "fd00::/129"]) {
      assert.throws(() => new AddressPool(bad), UsageError, bad);
    }
  });
});

describe("AddressAllocator", () => {
  const req = (key: string, previous: string[] = []) => ({ key, previous });

  test("lowest free addresses in namespace/name order", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.0/24"));
    const r = a.allocate([req("ns/b"), req("ns/a"), req("aa/z")]);
    assert.deepEqual(Object.fromEntries(r.assigned), {
      "aa/z": "10.0.0.1",
      "ns/a": "10.0.0.2",
      "ns/b": "10.0.0.3",
    });
  });

  test("stable: a Gateway keeps its address when others come and go", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.0/24"));
    a.allocate([req("ns/b")]);
    const r = a.allocate([req("ns/a"), req("ns/b")]);
    assert.equal(r.assigned.get("ns/b"), "10.0.0.1");
    assert.equal(r.assigned.get("ns/a"), "10.0.0.2");
    const r2 = a.allocate([req("ns/a")]);
    assert.deepEqual(Object.fromEntries(r2.assigned), { "ns/a": "10.0.0.2" });
    assert.equal(
      a.allocate([req("ns/a"), req("ns/c")]).assigned.get("ns/c"),
      "10.0.0.1",
      "released addresses are reused",
    );
  });

  test("after a restart, addresses reported in status are taken back before new ones are handed out", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.0/24"));
    const r = a.allocate([
      req("ns/new"),
      req("ns/old", ["10.0.0.1"]),
      req("ns/other", ["192.168.0.1", "10.0.0.7"]),
    ]);
    assert.deepEqual(Object.fromEntries(r.assigned), {
      "ns/new": "10.0.0.2",
      "ns/old": "10.0.0.1",
      "ns/other": "10.0.0.7",
    });
  });

  test("a previous address already taken is not taken twice", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.0/24"));
    const r = a.allocate([req("ns/a", ["10.0.0.5"]), req("ns/b", ["10.0.0.5"])]);
    assert.equal(r.assigned.get("ns/a"), "10.0.0.5");
    assert.equal(r.assigned.get("ns/b"), "10.0.0.1");
  });

  test("reserved addresses (spec.addresses of other Gateways) are skipped, even if assigned before", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.0/24"));
    a.allocate([req("ns/a")]);
    const r = a.allocate([req("ns/a")], new Set(["10.0.0.1"]));
    assert.equal(r.assigned.get("ns/a"), "10.0.0.2");
  });

  test("exhaustion is reported per Gateway", () => {
    const a = new AddressAllocator(new AddressPool("10.0.0.1/32"));
    const r = a.allocate([req("ns/a"), req("ns/b")]);
    assert.deepEqual(Object.fromEntries(r.assigned), { "ns/a": "10.0.0.1" });
    assert.deepEqual(r.exhausted, ["ns/b"]);
  });
});
