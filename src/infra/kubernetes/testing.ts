// Inputs for the infrastructure tests: a Gateway as the API server returns it, an issuer that hands
// out recognisable (not real) certificates, and a data-plane state the test sets.
import type {
  ClientCertificateIssuer,
  DataplaneStateSource,
  GatewayConfigState,
  IssuedCertificate,
} from "../../distribute/contract.ts";
import type { Gateway } from "../../resources/generated/types.ts";

export function gateway(name: string, spec: Partial<Gateway["spec"]> = {}, namespace = "edge"): Gateway {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "Gateway",
    metadata: { name, namespace, uid: `uid-${namespace}-${name}`, generation: 1 },
    spec: {
      gatewayClassName: "gatehouse",
      listeners: [{ name: "http", port: 80, protocol: "HTTP" }],
      ...spec,
    },
  };
}

/** Issues `CERT n`, `KEY n` for a lifetime of `lifetimeMs` from `now()`; counts its calls. */
export class CountingIssuer implements ClientCertificateIssuer {
  issued = 0;
  readonly #now: () => number;
  readonly #lifetimeMs: number;
  constructor(now: () => number = Date.now, lifetimeMs = 90 * 24 * 3600 * 1000) {
    this.#now = now;
    this.#lifetimeMs = lifetimeMs;
  }
  issueClient(g: { namespace: string; name: string }): Promise<IssuedCertificate> {
    this.issued++;
    const start = this.#now();
    return Promise.resolve({
      certPem: `CERT ${this.issued} ${g.namespace}/${g.name}`,
      keyPem: `KEY ${this.issued}`,
      caPem: "CA",
      notBefore: new Date(start),
      notAfter: new Date(start + this.#lifetimeMs),
    });
  }
  /** Takes back what it issued (`CERT n ns/name` under CA "CA"); counts adoptions. */
  adopted = 0;
  adoptClient(
    g: { namespace: string; name: string },
    stored: { certPem: string; keyPem: string; caPem: string },
  ): IssuedCertificate | undefined {
    if (stored.caPem !== "CA" || !stored.certPem.endsWith(` ${g.namespace}/${g.name}`)) return undefined;
    this.adopted++;
    const start = this.#now();
    return { ...stored, notBefore: new Date(start), notAfter: new Date(start + this.#lifetimeMs) };
  }
}

/** A DataplaneStateSource whose state the test sets per Gateway. */
export class StaticDataplane implements DataplaneStateSource {
  readonly states = new Map<string, GatewayConfigState>();
  gateway(id: string): GatewayConfigState {
    return this.states.get(id) ?? { hash: undefined, pods: [] };
  }
  onChange(): () => void {
    return () => {};
  }
}
