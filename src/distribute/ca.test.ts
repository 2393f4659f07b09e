import assert from "node:assert/strict";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  CertificateAuthority,
  CertificateAuthorityError,
  gatewayIdentityOfCertificate,
  gatewayIdentityUri,
  needsRenewal,
  parseGatewayIdentityUri,
} from "./ca.ts";
import { FileCAStore } from "./castore.ts";

const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "gh-ca-"));
  dirs.push(d);
  return d;
}

test("CA: created once, stored (key 0600), and loaded again the same", async () => {
  const dir = await tempDir();
  const ca = await CertificateAuthority.open(new FileCAStore(dir));
  const caCert = new X509Certificate(ca.caPem);
  assert.equal(caCert.ca, true);
  assert.equal(caCert.checkIssued(caCert), true);
  const years =
    (new Date(caCert.validTo).getTime() - new Date(caCert.validFrom).getTime()) / (365 * 86_400_000);
  assert.ok(years > 9.9 && years < 10.1, `${years} years`);
  assert.equal((await stat(join(dir, "ca.key"))).mode & 0o777, 0o600);
  const again = await CertificateAuthority.open(new FileCAStore(dir));
  assert.equal(again.caPem, ca.caPem);
});

test("CA: two opens racing on an empty store end with one CA", async () => {
  const dir = await tempDir();
  const [a, b] = await Promise.all([
    CertificateAuthority.open(new FileCAStore(dir)),
    CertificateAuthority.open(new FileCAStore(dir)),
  ]);
  assert.equal(a.caPem, b.caPem);
});

test("CA: client certificate carries the Gateway in a URI SAN, chains to the CA, 30 days, clientAuth", async () => {
  const now = new Date("2030-01-01T00:00:00Z");
  const ca = await CertificateAuthority.open(new FileCAStore(await tempDir()), { now: () => now });
  const issued = await ca.issueClient({ namespace: "team-a", name: "web" });
  const cert = new X509Certificate(issued.certPem);
  const caCert = new X509Certificate(ca.caPem);
  assert.equal(cert.checkIssued(caCert), true);
  assert.equal(cert.verify(caCert.publicKey), true);
  assert.equal(cert.ca, false);
  assert.equal(cert.subjectAltName, "URI:spiffe://gatehouse.dev/ns/team-a/gateway/web");
  assert.deepEqual(gatewayIdentityOfCertificate(cert.raw), { namespace: "team-a", name: "web" });
  assert.equal(cert.checkPrivateKey(createPrivateKey(issued.keyPem)), true);
  assert.equal(issued.caPem, ca.caPem);
  assert.equal(issued.notAfter.getTime() - now.getTime(), 30 * 86_400_000);
  assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
});

test("CA: server certificate with DNS and IP SANs, serverAuth, 1 year", async () => {
  const ca = await CertificateAuthority.open(new FileCAStore(await tempDir()));
  const issued = await ca.issueServer({
    dnsNames: ["gatehouse.gatehouse-system.svc"],
    ipAddresses: ["127.0.0.1"],
  });
  const cert = new X509Certificate(issued.certPem);
  assert.equal(cert.verify(new X509Certificate(ca.caPem).publicKey), true);
  assert.equal(cert.subjectAltName, "DNS:gatehouse.gatehouse-system.svc, IP Address:127.0.0.1");
  assert.equal(cert.checkHost("gatehouse.gatehouse-system.svc"), "gatehouse.gatehouse-system.svc");
  assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
  assert.equal(gatewayIdentityOfCertificate(cert.raw), undefined, "a server certificate names no Gateway");
  await assert.rejects(ca.issueServer({ dnsNames: [], ipAddresses: [] }), CertificateAuthorityError);
});

test("CA: identity URIs are strict", () => {
  assert.equal(
    gatewayIdentityUri({ namespace: "ns", name: "gw.1" }),
    "spiffe://gatehouse.dev/ns/ns/gateway/gw.1",
  );
  assert.throws(() => gatewayIdentityUri({ namespace: "NS", name: "gw" }), CertificateAuthorityError);
  assert.throws(() => gatewayIdentityUri({ namespace: "ns", name: "a/b" }), CertificateAuthorityError);
  assert.deepEqual(parseGatewayIdentityUri("spiffe://gatehouse.dev/ns/a/gateway/b"), {
    namespace: "a",
    name: "b",
  });
  for (const bad of [
    "spiffe://gatehouse.dev/ns/a/gateway/b/c",
    "spiffe://gatehouse.dev/ns/a/route/b",
    "spiffe://evil.dev/ns/a/gateway/b",
    "spiffe://gatehouse.dev/ns/A/gateway/b",
    "spiffe://gatehouse.dev/ns/a/gateway/",
  ])
    assert.equal(parseGatewayIdentityUri(bad), undefined, bad);
});

test("CA: needsRenewal in the last third of the lifetime", async () => {
  let now = new Date("2030-01-01T00:00:00Z");
  const ca = await CertificateAuthority.open(new FileCAStore(await tempDir()), { now: () => now });
  const issued = await ca.issueClient({ namespace: "a", name: "b" });
  const from = issued.notBefore.getTime();
  const life = issued.notAfter.getTime() - from;
  assert.equal(needsRenewal(issued.certPem, new Date(from + life * 0.6)), false);
  assert.equal(needsRenewal(issued.certPem, new Date(from + life * 0.7)), true);
  assert.equal(needsRenewal(issued.certPem, new Date(issued.notAfter.getTime() + 1000)), true);
  now = new Date(from + life * 0.7);
  const renewed = await ca.issueClient({ namespace: "a", name: "b" });
  assert.equal(needsRenewal(renewed.certPem, now), false);
});

test("CA: adoptClient takes back only a good certificate of the same Gateway from the same CA", async () => {
  let now = new Date("2030-01-01T00:00:00Z");
  const ca = await CertificateAuthority.open(new FileCAStore(await tempDir()), { now: () => now });
  const other = await CertificateAuthority.open(new FileCAStore(await tempDir()), { now: () => now });
  const gw = { namespace: "a", name: "b" };
  const issued = await ca.issueClient(gw);
  const adopted = ca.adoptClient(gw, issued);
  assert.equal(adopted?.certPem, issued.certPem);
  assert.equal(adopted?.keyPem, issued.keyPem);
  assert.equal(adopted?.notAfter.getTime(), Math.floor(issued.notAfter.getTime() / 1000) * 1000);
  // Another Gateway, another CA's certificate (or a ca.crt that is not ours), a key of another certificate.
  assert.equal(ca.adoptClient({ namespace: "a", name: "c" }, issued), undefined);
  assert.equal(ca.adoptClient(gw, await other.issueClient(gw)), undefined);
  assert.equal(ca.adoptClient(gw, { ...issued, caPem: other.caPem }), undefined);
  assert.equal(ca.adoptClient(gw, { ...issued, keyPem: (await ca.issueClient(gw)).keyPem }), undefined);
  assert.equal(ca.adoptClient(gw, { certPem: "garbage", keyPem: "", caPem: ca.caPem }), undefined);
  // Due for renewal: a new one instead.
  now = new Date(issued.notBefore.getTime() + (issued.notAfter.getTime() - issued.notBefore.getTime()) * 0.7);
  assert.equal(ca.adoptClient(gw, issued), undefined);
});

test("CA: a store whose key does not match its certificate is refused, without key material in the message", async () => {
  const [one, two] = [await tempDir(), await tempDir()];
  await CertificateAuthority.open(new FileCAStore(one));
  await CertificateAuthority.open(new FileCAStore(two));
  const otherKey = await readFile(join(two, "ca.key"), "utf8");
  await writeFile(join(one, "ca.key"), otherKey);
  await assert.rejects(CertificateAuthority.open(new FileCAStore(one)), (err: Error) => {
    assert.ok(err instanceof CertificateAuthorityError);
    assert.match(err.message, /does not match/);
    assert.ok(!err.message.includes("PRIVATE KEY"));
    return true;
  });
});
