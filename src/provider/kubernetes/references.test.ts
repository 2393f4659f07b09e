import assert from "node:assert/strict";
import { test } from "node:test";
import { referencedObjects } from "./references.ts";

test("the Secrets and ConfigMaps Gateways, ListenerSets and BackendTLSPolicies reference", () => {
  const refs = referencedObjects([
    {
      kind: "Gateway",
      metadata: { namespace: "infra", name: "gw" },
      spec: {
        listeners: [
          { tls: { certificateRefs: [{ name: "a" }, { name: "b", namespace: "certs" }] } },
          { tls: { certificateRefs: [{ group: "example.com", kind: "Vault", name: "ignored" }] } },
          {},
        ],
        tls: {
          backend: { clientCertificateRef: { name: "client" } },
          frontend: {
            default: { validation: { caCertificateRefs: [{ kind: "ConfigMap", name: "ca" }] } },
            perPort: [
              {
                port: 443,
                tls: { validation: { caCertificateRefs: [{ kind: "ConfigMap", name: "ca443" }] } },
              },
            ],
          },
        },
      },
    },
    {
      kind: "ListenerSet",
      metadata: { namespace: "team", name: "ls" },
      spec: {
        parentRef: { name: "gw", namespace: "infra" },
        listeners: [{ tls: { certificateRefs: [{ name: "t" }] } }],
      },
    },
    {
      kind: "BackendTLSPolicy",
      metadata: { namespace: "app", name: "p" },
      spec: { validation: { caCertificateRefs: [{ group: "", kind: "ConfigMap", name: "backend-ca" }] } },
    },
    {
      kind: "HTTPRoute",
      metadata: { namespace: "app", name: "r" },
      spec: { tls: { certificateRefs: [{ name: "no" }] } },
    },
  ]);
  assert.deepEqual([...refs].sort(), [
    "ConfigMap app/backend-ca",
    "ConfigMap infra/ca",
    "ConfigMap infra/ca443",
    "Secret certs/b",
    "Secret infra/a",
    "Secret infra/client",
    "Secret infra/t",
    "Secret team/t",
  ]);
});
