// The controller's side of the config stream, without the transport: the latest configuration of
// each Gateway (cut out of the whole IR with irForGateway, with its configHash), the data-plane pods
// connected for it and what they last reported. `publish` pushes to the pods of the Gateways whose
// configuration changed, and only to them.
//
// A Gateway that leaves the IR keeps its last configuration here: its pods keep serving it until
// the infrastructure reconciler deletes them (an empty configuration would cut their traffic
// before the Deployment is gone, and a Gateway deleted by mistake and re-created would have gone
// dark in between). `forget` drops one explicitly (the reconciler may call it once the pods are gone).
import type { IR } from "../ir/types.ts";
import {
  configHash,
  irForGateway,
  type DataplaneStateSource,
  type GatewayConfigState,
  type PodReport,
} from "./contract.ts";
import type { ConfigMessage, ReportMessage } from "./protocol.ts";

export interface DistributorLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConfigDistributorOptions {
  /** The clock (connectedAt of pods). */
  now?: () => Date;
  logger?: DistributorLogger;
}

/** What the transport gives for one connected pod: a way to send it a configuration (latest wins). */
export interface PodSink {
  send(message: ConfigMessage): void;
}

/** One connected pod, as the transport holds it. */
export interface PodSession {
  readonly gatewayId: string;
  /**
   * A report from the pod. Accepted only when it is about the configuration last sent on this
   * stream; a stale or unknown hash is ignored (false). Its pod name is taken either way.
   */
  report(message: ReportMessage): boolean;
  /** The pod disconnected. Idempotent. */
  close(): void;
}

interface Published {
  hash: string;
  message: ConfigMessage;
}

interface Session {
  id: number;
  gatewayId: string;
  sink: PodSink;
  connectedAt: string;
  pod: string | undefined;
  sent: string | undefined;
  report: Omit<PodReport, "pod" | "connectedAt"> | undefined;
}

export class ConfigDistributor implements DataplaneStateSource {
  readonly #now: () => Date;
  readonly #logger: DistributorLogger | undefined;
  readonly #published = new Map<string, Published>();
  readonly #sessions = new Map<string, Set<Session>>();
  readonly #listeners = new Set<(gatewayId: string) => void>();
  #nextSession = 1;

  constructor(options: ConfigDistributorOptions = {}) {
    this.#now = options.now ?? (() => new Date());
    this.#logger = options.logger;
  }

  /**
   * Takes the whole IR (as rendered for the data plane): each Gateway's cut is kept with its hash
   * and sent to that Gateway's connected pods when it changed. Returns the ids of the Gateways
   * whose configuration changed.
   */
  publish(ir: IR): string[] {
    const changed: string[] = [];
    for (const gateway of ir.gateways) {
      const cut = irForGateway(ir, gateway.id);
      const hash = configHash(cut);
      if (this.#published.get(gateway.id)?.hash === hash) continue;
      const message: ConfigMessage = { type: "config", hash, ir: cut };
      this.#published.set(gateway.id, { hash, message });
      changed.push(gateway.id);
      const sessions = this.#sessions.get(gateway.id) ?? new Set();
      for (const s of sessions) this.#send(s, message);
      this.#logger?.info(
        { gateway: gateway.id, hash, pods: sessions.size },
        "published a data-plane configuration",
      );
    }
    // No change event: the caller computed the statuses from this very configuration (its hash);
    // only what the pods do afterwards (connect, report, leave) changes them.
    return changed;
  }

  /** The configuration published for a Gateway now. */
  current(gatewayId: string): { hash: string; ir: IR } | undefined {
    const p = this.#published.get(gatewayId);
    return p === undefined ? undefined : { hash: p.hash, ir: p.message.ir };
  }

  /** Drops a Gateway's configuration (e.g. once the reconciler has deleted its pods). */
  forget(gatewayId: string): void {
    if (this.#published.delete(gatewayId)) this.#emit(gatewayId);
  }

  /** A pod connected for `gatewayId` (already authenticated): it gets the current configuration at once. */
  connect(gatewayId: string, sink: PodSink): PodSession {
    const session: Session = {
      id: this.#nextSession++,
      gatewayId,
      sink,
      connectedAt: this.#now()
        .toISOString()
        .replace(/\.\d+Z$/, "Z"),
      pod: undefined,
      sent: undefined,
      report: undefined,
    };
    let set = this.#sessions.get(gatewayId);
    if (set === undefined) this.#sessions.set(gatewayId, (set = new Set()));
    set.add(session);
    const current = this.#published.get(gatewayId);
    if (current !== undefined) this.#send(session, current.message);
    this.#emit(gatewayId);
    let closed = false;
    return {
      gatewayId,
      report: (message) => {
        if (closed) return false;
        const named = session.pod !== message.pod;
        session.pod = message.pod;
        if (session.sent === undefined || message.hash !== session.sent) {
          this.#logger?.debug(
            { gateway: gatewayId, pod: message.pod, hash: message.hash, sent: session.sent },
            "ignored a report about a configuration this stream did not send last",
          );
          if (named) this.#emit(gatewayId);
          return false;
        }
        session.report = {
          hash: message.hash,
          applied: message.applied,
          ...(message.error !== undefined ? { error: message.error } : {}),
          unavailableListeners: message.unavailableListeners,
        };
        this.#emit(gatewayId);
        return true;
      },
      close: () => {
        if (closed) return;
        closed = true;
        set.delete(session);
        if (set.size === 0 && this.#sessions.get(gatewayId) === set) this.#sessions.delete(gatewayId);
        this.#emit(gatewayId);
      },
    };
  }

  /**
   * The Gateway's published hash and its connected pods. A pod that has not reported yet (or whose
   * reports were all stale) shows `hash: ""`, `applied: false`; one that has not named itself yet
   * shows as `<gateway namespace>/connection-<n>`.
   */
  gateway(gatewayId: string): GatewayConfigState {
    const namespace = gatewayId.split("/")[0] ?? "";
    const pods: PodReport[] = [...(this.#sessions.get(gatewayId) ?? [])].map((s) => ({
      pod: s.pod ?? `${namespace}/connection-${s.id}`,
      connectedAt: s.connectedAt,
      ...(s.report ?? { hash: "", applied: false, unavailableListeners: [] }),
    }));
    return { hash: this.#published.get(gatewayId)?.hash, pods };
  }

  onChange(listener: (gatewayId: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #send(session: Session, message: ConfigMessage): void {
    session.sent = message.hash;
    session.sink.send(message);
  }

  #emit(gatewayId: string): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(gatewayId);
      } catch (err) {
        this.#logger?.warn({ err, gateway: gatewayId }, "a data-plane state listener failed");
      }
    }
  }
}
