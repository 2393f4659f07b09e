// The data plane the serve loop drives: HAProxy for HTTP/HTTPS/TLS/TCP listeners and the UDP
// forwarder for UDP listeners, from the same IR. HAProxy ignores UDP listeners and the forwarder
// ignores everything else, so each applies the whole IR. The forwarder applies even when HAProxy
// refuses the IR (its listeners do not depend on HAProxy's); HAProxy's error is then rethrown.
import type { ApplyOutcome } from "../haproxy/apply/applier.ts";
import type { IR } from "../../ir/types.ts";
import type { TLSBridge } from "../tlsbridge/bridge.ts";
import type { UdpForwarder } from "./forwarder.ts";
import type { UnavailableListener } from "../../status/feedback.ts";

export interface CombinedOutcome extends ApplyOutcome {
  /** Listeners that are not served: those HAProxy left out (port held elsewhere) and UDP ones the forwarder could not bind. */
  unavailableListeners: UnavailableListener[];
}

export interface HAProxyDataplane {
  apply(ir: IR): Promise<ApplyOutcome>;
}

export class CombinedDataplane {
  readonly #haproxy: HAProxyDataplane;
  readonly #udp: Pick<UdpForwarder, "apply">;

  readonly #bridge: Pick<TLSBridge, "apply"> | undefined;

  /** `bridge`: serves backends whose subjectAltNames HAProxy cannot check, before HAProxy applies. */
  constructor(
    haproxy: HAProxyDataplane,
    udp: Pick<UdpForwarder, "apply">,
    bridge?: Pick<TLSBridge, "apply">,
  ) {
    this.#haproxy = haproxy;
    this.#udp = udp;
    this.#bridge = bridge;
  }

  async apply(ir: IR): Promise<CombinedOutcome> {
    let outcome: ApplyOutcome | undefined;
    let failure: { error: unknown } | undefined;
    try {
      outcome = await this.#haproxy.apply(this.#bridge === undefined ? ir : await this.#bridge.apply(ir));
    } catch (error) {
      failure = { error };
    }
    const udp = await this.#udp.apply(ir);
    if (failure !== undefined || outcome === undefined) throw failure?.error;
    const unavailableListeners = [
      ...(outcome.unavailableListeners ?? []),
      ...udp.failures.map(({ listenerId, message, reason }) => ({ listenerId, message, reason })),
    ];
    if (!udp.changed) return { ...outcome, unavailableListeners };
    return {
      ...outcome,
      // A UDP-only change is taken without touching HAProxy: like a runtime update.
      method: outcome.method === "noop" ? "runtime" : outcome.method,
      detail: outcome.method === "noop" ? `udp: ${udp.detail}` : `${outcome.detail}; udp: ${udp.detail}`,
      unavailableListeners,
    };
  }
}
