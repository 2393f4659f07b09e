// Test helper: the IR of Kubernetes objects, through the real loader and translator.
import { stringify } from "yaml";
import { haproxyValidators } from "../dataplane/haproxy/capabilities.ts";
import type { IR } from "../ir/types.ts";
import { parseDocuments } from "../resources/load.ts";
import { buildSnapshot } from "../resources/snapshot.ts";
import { DEFAULT_CONTROLLER_NAME, translate } from "../translate/index.ts";

export function irOf(objects: ReadonlyArray<Record<string, unknown>>): IR {
  const text = objects.map((o) => stringify(o)).join("---\n");
  const parsed = parseDocuments(text, "test.yaml");
  if (parsed.errors.length > 0) throw new Error(parsed.errors.map(String).join("; "));
  const { snapshot } = buildSnapshot(parsed.objects);
  return translate(snapshot, {
    controllerName: DEFAULT_CONTROLLER_NAME,
    now: "2030-01-01T00:00:00Z",
    validators: haproxyValidators,
  }).ir;
}

type Obj = Record<string, unknown>;

export interface TestGateway {
  name: string;
  port: number;
  /** HTTPS with this certificate (and a Secret `<name>-cert`); HTTP without. */
  tls?: { certPem: string; keyPem: string };
  /** Host → `ip:port` of the one endpoint of Service `<name>-svc`. */
  host: string;
  endpoint: string;
}

/**
 * Objects for Gateways in namespace `default` WITHOUT spec.addresses (as in `--infrastructure
 * kubernetes`: the data-plane pods bind all interfaces), each with one HTTPRoute on `host` to its
 * own Service whose endpoint is `endpoint` (the `gatehouse.dev/endpoints` annotation).
 */
export function gatewayObjects(gateways: readonly TestGateway[]): Obj[] {
  const objects: Obj[] = [
    {
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "GatewayClass",
      metadata: { name: "gatehouse" },
      spec: { controllerName: DEFAULT_CONTROLLER_NAME },
    },
  ];
  for (const g of gateways) {
    objects.push({
      apiVersion: "gateway.networking.k8s.io/v1",
      kind: "Gateway",
      metadata: { name: g.name, namespace: "default" },
      spec: {
        gatewayClassName: "gatehouse",
        listeners: [
          {
            name: "l",
            port: g.port,
            protocol: g.tls === undefined ? "HTTP" : "HTTPS",
            ...(g.tls !== undefined
              ? { tls: { mode: "Terminate", certificateRefs: [{ name: `${g.name}-cert` }] } }
              : {}),
          },
        ],
      },
    });
    if (g.tls !== undefined)
      objects.push({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${g.name}-cert`, namespace: "default" },
        type: "kubernetes.io/tls",
        stringData: { "tls.crt": g.tls.certPem, "tls.key": g.tls.keyPem },
      });
    objects.push(
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: {
          name: `${g.name}-svc`,
          namespace: "default",
          annotations: { "gatehouse.dev/endpoints": g.endpoint },
        },
        spec: { ports: [{ port: 80, protocol: "TCP" }] },
      },
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: `${g.name}-route`, namespace: "default" },
        spec: {
          parentRefs: [{ name: g.name }],
          hostnames: [g.host],
          rules: [{ backendRefs: [{ name: `${g.name}-svc`, port: 80 }] }],
        },
      },
    );
  }
  return objects;
}
