// The UDP forwarder: Gatehouse's data plane for UDP listeners (HAProxy 2.6 has no UDP). Per
// listener socket, every client (address, port) gets a flow: its own upstream socket to one endpoint
// chosen by the route's weights, so replies go back to that client through the listener socket. A
// flow stays on its endpoint for its life; it ends after `idleTimeoutMs` without a datagram in
// either direction, when the table is full and it is the least recently active, or when its endpoint
// leaves the listener's route.
//
// `apply(ir)` reconciles the sockets with the IR: listeners that stay keep their socket and flows
// (the new route applies to new flows), removed ones close, new ones bind. A listener that cannot be
// bound (port in use) or that clashes with another is reported in the result and retried at the
// next apply; nothing here throws on input.
import type { Logger } from "pino";
import type { IR } from "../../ir/types.ts";
import { chooseTarget, type UdpDropReason, type UdpTarget } from "./choose.ts";
import { FlowTable } from "./flows.ts";
import {
  formatHostPort,
  planUdp,
  type UdpListenerPlan,
  type UdpListenerProblem,
  type UdpRoutePlan,
} from "./plan.ts";
import type { UnavailableListener } from "../../status/feedback.ts";
import {
  UdpBindError,
  type UdpListenSocket,
  type UdpPeer,
  type UdpSocket,
  type UdpSockets,
} from "./sockets.ts";

/** Counters and gauges the forwarder keeps (src/observability/metrics.ts provides them). */
export interface UdpMetrics {
  /** Datagrams forwarded, by direction (`to_backend`, `to_client`). */
  datagrams(direction: UdpDirection, bytes: number): void;
  /** A datagram not forwarded, by reason. */
  dropped(reason: UdpDropReason): void;
  flowOpened(): void;
  flowClosed(reason: UdpFlowCloseReason): void;
  /** Current number of flows and of bound listener sockets. */
  gauges(flows: number, listeners: number): void;
}

export type UdpDirection = "to_backend" | "to_client";
export type UdpFlowCloseReason =
  "idle" | "evicted" | "reconfigured" | "listener_closed" | "error" | "shutdown";

export interface UdpForwarderOptions {
  sockets: UdpSockets;
  /** A flow with no datagram in either direction for this long is closed (default 60 s). */
  idleTimeoutMs?: number;
  /** Most flows at once across all listeners; the least recently active is evicted (default 4096). */
  maxFlows?: number;
  metrics?: UdpMetrics;
  logger?: Logger;
  /** Monotonic milliseconds (default performance.now). */
  now?: () => number;
  /** In [0, 1) (default Math.random). */
  random?: () => number;
  /** How often idle flows are looked for (default a quarter of the idle timeout, 50 ms..1 s). 0: never (tests call sweep()). */
  sweepIntervalMs?: number;
}

export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_UDP_MAX_FLOWS = 4096;

/** A UDP listener that is not served, and why (for the listener's status). */
export interface UdpListenerFailure extends UnavailableListener {
  address: string;
  port: number;
}

export interface UdpApplyResult {
  /** Whether anything was bound, closed or re-routed. */
  changed: boolean;
  /** One line for the log. */
  detail: string;
  /** Listeners not served. */
  failures: UdpListenerFailure[];
}

/** What the forwarder serves right now (for /status and tests). */
export interface UdpListenerState {
  listenerId: string;
  address: string;
  port: number;
  /** The port actually bound (differs from `port` only for port 0). */
  boundPort: number;
  route?: string;
  flows: number;
}

interface Listener {
  plan: UdpListenerPlan;
  socket: UdpListenSocket;
  closed: boolean;
}

interface Flow {
  key: string;
  listener: Listener;
  client: UdpPeer;
  target: UdpTarget;
  upstream: UdpSocket;
  closed: boolean;
}

export class UdpForwarder {
  readonly #sockets: UdpSockets;
  readonly #metrics: UdpMetrics | undefined;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #flows: FlowTable<Flow>;
  readonly #listeners = new Map<string, Listener>();
  #queue: Promise<unknown> = Promise.resolve();
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: UdpForwarderOptions) {
    this.#sockets = options.sockets;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_UDP_IDLE_TIMEOUT_MS;
    this.#flows = new FlowTable({ maxFlows: options.maxFlows ?? DEFAULT_UDP_MAX_FLOWS, idleTimeoutMs });
    const interval = options.sweepIntervalMs ?? Math.min(1000, Math.max(50, idleTimeoutMs / 4));
    if (interval > 0) {
      this.#sweeper = setInterval(() => this.sweep(), interval);
      this.#sweeper.unref();
    }
  }

  /** Serves what `ir` says (calls are serialised). Never rejects. */
  apply(ir: IR): Promise<UdpApplyResult> {
    const run = this.#queue.then(() => this.#apply(ir));
    this.#queue = run.catch(() => undefined);
    return run.catch((err: unknown) => {
      // Not reachable by input (everything above is total); a bug must not stop the serve loop.
      this.#logger?.error({ err }, "UDP forwarder: internal error while applying");
      return { changed: false, detail: "internal error", failures: [] };
    });
  }

  /** Closes expired flows now (the sweeper calls it periodically). */
  sweep(): void {
    for (const flow of this.#flows.expire(this.#now())) this.#closeFlow(flow, "idle");
    this.#updateGauges();
  }

  /** Listener sockets in service. */
  listeners(): UdpListenerState[] {
    const counts = new Map<Listener, number>();
    for (const f of this.#flows.flows()) counts.set(f.listener, (counts.get(f.listener) ?? 0) + 1);
    return [...this.#listeners.values()].map((l) => ({
      listenerId: l.plan.listenerId,
      address: l.plan.address,
      port: l.plan.port,
      boundPort: l.socket.local.port,
      ...(l.plan.route !== undefined
        ? { route: `${l.plan.route.route.namespace}/${l.plan.route.route.name}` }
        : {}),
      flows: counts.get(l) ?? 0,
    }));
  }

  get flowCount(): number {
    return this.#flows.size;
  }

  /** Closes every socket. Idempotent; apply() afterwards does nothing. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    await this.#queue;
    for (const flow of this.#flows.removeWhere(() => true)) this.#closeFlow(flow, "shutdown");
    for (const l of this.#listeners.values()) this.#closeListener(l);
    this.#listeners.clear();
    this.#updateGauges();
  }

  async #apply(ir: IR): Promise<UdpApplyResult> {
    if (this.#closed) return { changed: false, detail: "closed", failures: [] };
    const plan = planUdp(ir);
    const wanted = new Map(plan.listeners.map((l) => [l.key, l]));
    const changes: string[] = [];

    for (const [key, l] of this.#listeners) {
      if (wanted.has(key)) continue;
      this.#listeners.delete(key);
      for (const flow of this.#flows.removeWhere((f) => f.listener === l))
        this.#closeFlow(flow, "listener_closed");
      this.#closeListener(l);
      changes.push(`closed ${formatHostPort(l.plan.address, l.plan.port)}`);
    }

    for (const [key, next] of wanted) {
      const current = this.#listeners.get(key);
      if (current === undefined) continue;
      if (samePlan(current.plan, next)) continue;
      current.plan = next;
      // Flows stay on their endpoint while it is still a target of the listener's route.
      const keep = endpointsOf(next.route);
      const moved = this.#flows.removeWhere(
        (f) => f.listener === current && !keep.has(endpointKey(f.target.address, f.target.port)),
      );
      for (const flow of moved) this.#closeFlow(flow, "reconfigured");
      changes.push(
        `re-routed ${formatHostPort(next.address, next.port)}${moved.length > 0 ? ` (${moved.length} flow(s) closed)` : ""}`,
      );
    }

    const failures: UdpListenerFailure[] = plan.problems.map((p: UdpListenerProblem) => ({
      ...p,
      reason: "Invalid" as const,
    }));
    for (const [key, next] of wanted) {
      if (this.#listeners.has(key)) continue;
      // Datagrams can arrive as soon as the socket is bound, before `listener` exists: dropped.
      const ref: { listener?: Listener } = {};
      let socket: UdpListenSocket;
      try {
        socket = await this.#sockets.listen(next.address, next.port, {
          message: (data, from) => {
            if (ref.listener !== undefined) this.#fromClient(ref.listener, data, from);
          },
          error: (err) =>
            this.#logger?.warn(
              { err, listener: next.listenerId },
              `UDP listener ${formatHostPort(next.address, next.port)}: socket error`,
            ),
        });
      } catch (err) {
        const message =
          err instanceof UdpBindError
            ? err.message
            : `cannot listen on UDP ${formatHostPort(next.address, next.port)}: ${String(err)}`;
        failures.push({
          listenerId: next.listenerId,
          address: next.address,
          port: next.port,
          message,
          reason: "Pending",
        });
        continue;
      }
      const listener: Listener = (ref.listener = { plan: next, socket, closed: false });
      if (this.#closed) {
        socket.close();
        break;
      }
      this.#listeners.set(key, listener);
      changes.push(`listening on ${formatHostPort(next.address, next.port)}`);
    }
    for (const f of failures)
      this.#logger?.warn({ listener: f.listenerId }, `UDP listener not served: ${f.message}`);
    this.#updateGauges();
    const served = `${this.#listeners.size} UDP listener(s)`;
    return {
      changed: changes.length > 0,
      detail: changes.length > 0 ? `${changes.join(", ")}; ${served}` : `no change; ${served}`,
      failures,
    };
  }

  #fromClient(listener: Listener, data: Buffer, client: UdpPeer): void {
    if (listener.closed) return;
    const key = `${listener.plan.key}|${client.address}|${client.port}`;
    const now = this.#now();
    let flow = this.#flows.get(key);
    if (flow === undefined || flow.listener !== listener) {
      const choice = chooseTarget(listener.plan.route, this.#random);
      if (!choice.ok) {
        this.#metrics?.dropped(choice.reason);
        return;
      }
      flow = this.#openFlow(key, listener, client, choice.target, now);
    } else {
      this.#flows.touch(key, now);
    }
    const f = flow;
    f.upstream.send(data, f.target, (err) => {
      if (err === undefined) {
        this.#metrics?.datagrams("to_backend", data.length);
        return;
      }
      this.#metrics?.dropped("send_error");
      this.#logger?.debug({ err, target: f.target }, "UDP: could not send to the backend");
    });
  }

  #openFlow(key: string, listener: Listener, client: UdpPeer, target: UdpTarget, now: number): Flow {
    const ref: { flow?: Flow } = {};
    const upstream = this.#sockets.open(target, {
      message: (data, from) => {
        if (ref.flow !== undefined) this.#fromBackend(ref.flow, data, from);
      },
      error: (err) => {
        const flow = ref.flow;
        if (flow === undefined) return;
        this.#logger?.debug({ err, target }, "UDP: upstream socket error; closing the flow");
        if (this.#flows.get(key) === flow) this.#flows.delete(key);
        this.#closeFlow(flow, "error");
        this.#updateGauges();
      },
    });
    const flow: Flow = (ref.flow = { key, listener, client, target, upstream, closed: false });
    this.#metrics?.flowOpened();
    for (const evicted of this.#flows.add(key, flow, now)) this.#closeFlow(evicted, "evicted");
    this.#updateGauges();
    return flow;
  }

  #fromBackend(flow: Flow, data: Buffer, from: UdpPeer): void {
    if (flow.closed || flow.listener.closed) return;
    if (from.port !== flow.target.port || from.address !== flow.target.address) {
      this.#metrics?.dropped("unexpected_source");
      return;
    }
    this.#flows.touch(flow.key, this.#now());
    flow.listener.socket.send(data, flow.client, (err) => {
      if (err === undefined) {
        this.#metrics?.datagrams("to_client", data.length);
        return;
      }
      this.#metrics?.dropped("send_error");
      this.#logger?.debug({ err, client: flow.client }, "UDP: could not send to the client");
    });
  }

  #closeFlow(flow: Flow, reason: UdpFlowCloseReason): void {
    if (flow.closed) return;
    flow.closed = true;
    flow.upstream.close();
    this.#metrics?.flowClosed(reason);
  }

  #closeListener(l: Listener): void {
    l.closed = true;
    l.socket.close();
  }

  #updateGauges(): void {
    this.#metrics?.gauges(this.#flows.size, this.#listeners.size);
  }
}

function endpointKey(address: string, port: number): string {
  return `${address}|${port}`;
}

function endpointsOf(route: UdpRoutePlan | undefined): Set<string> {
  const out = new Set<string>();
  for (const s of route?.shares ?? [])
    for (const e of s.backend?.endpoints ?? []) out.add(endpointKey(e.address, e.port));
  return out;
}

function samePlan(a: UdpListenerPlan, b: UdpListenerPlan): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
