// KubernetesSecretCAStore against a REAL kube-apiserver (skipped, with the reason, without the
// binaries): create-if-absent, two replicas racing end with one CA, a broken Secret is an error.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CertificateAuthority } from "./ca.ts";
import { CAStoreError, KubernetesSecretCAStore } from "./castore.ts";
import {
  findControlPlaneBinaries,
  startTestApiServer,
  type TestApiServer,
} from "../provider/kubernetes/testing/apiserver.ts";

const bins = findControlPlaneBinaries();
const skip = "skip" in bins ? bins.skip : false;

describe("KubernetesSecretCAStore (real kube-apiserver)", { skip }, () => {
  let server: TestApiServer | undefined;
  const srv = (): TestApiServer => {
    assert.ok(server !== undefined);
    return server;
  };
  before(async () => {
    server = await startTestApiServer({ crds: false });
    await srv().apply([{ apiVersion: "v1", kind: "Namespace", metadata: { name: "gatehouse-system" } }]);
  });
  after(async () => server?.stop());

  test("creates the Secret once; a second open loads it", async () => {
    const store = new KubernetesSecretCAStore(srv().admin, "gatehouse-system", "ca-once");
    assert.equal(await store.load(), undefined);
    const ca = await CertificateAuthority.open(store);
    const secret = await srv().admin.request<{ type: string; data: Record<string, string> }>(
      "GET",
      "/api/v1/namespaces/gatehouse-system/secrets/ca-once",
    );
    assert.equal(secret.type, "Opaque");
    assert.deepEqual(Object.keys(secret.data).sort(), ["ca.crt", "ca.key"]);
    assert.equal(Buffer.from(secret.data["ca.crt"] ?? "", "base64").toString(), ca.caPem);
    const again = await CertificateAuthority.open(
      new KubernetesSecretCAStore(srv().admin, "gatehouse-system", "ca-once"),
    );
    assert.equal(again.caPem, ca.caPem);
  });

  test("two replicas racing end up with the same CA (409 → re-read)", async () => {
    const open = (): Promise<CertificateAuthority> =>
      CertificateAuthority.open(new KubernetesSecretCAStore(srv().admin, "gatehouse-system", "ca-race"));
    const all = await Promise.all([open(), open(), open()]);
    assert.equal(new Set(all.map((c) => c.caPem)).size, 1);
  });

  test("a Secret without the keys is an error naming it", async () => {
    await srv().apply([
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "ca-broken", namespace: "gatehouse-system" },
        data: { x: "eQ==" },
      },
    ]);
    await assert.rejects(
      new KubernetesSecretCAStore(srv().admin, "gatehouse-system", "ca-broken").load(),
      (err: Error) => err instanceof CAStoreError && /Secret gatehouse-system\/ca-broken/.test(err.message),
    );
  });
});
