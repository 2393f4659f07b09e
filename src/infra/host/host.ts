// `--infrastructure host`: Gateways are served by this process's HAProxy, on addresses of this host.
//
// - A Gateway with spec.addresses (IPAddress) listens on them; any of them that is not an address
//   of this host yet is added to our interface.
// - A Gateway without spec.addresses gets one address of the pool (`--address-pool CIDR`), stable
//   per namespace/name (see AddressAllocator; after a restart the address in status.addresses is
//   taken back), added to our interface. Without a pool such a Gateway listens on all interfaces.
// - Every address reported is in status.addresses. A Gateway that cannot get an address (pool
//   exhausted, `ip` failed) is left out of the IR and reports Programmed False (AddressNotAssigned,
//   AddressNotUsable) instead of binding somewhere it should not.
// - Addresses on our interface that no Gateway uses any more are removed, those left by an earlier
//   run (a controller killed with SIGKILL) at the first reconciliation; close() removes them all
//   (and the interface, if a Gatehouse created it: see the mark in binder.ts).
import type { IR, IRGateway } from "../../ir/types.ts";
import type { Snapshot } from "../../resources/snapshot.ts";
import type { Condition, StatusEntry } from "../../status/types.ts";
import * as cond from "../../translate/conditions.ts";
import type { ConditionSpec } from "../../translate/conditions.ts";
import { describeError } from "../../provider/kubernetes/client.ts";
import type { GatewayInfrastructure, InfrastructureInput, InfrastructureOutput } from "../types.ts";
import type { AddressBinder } from "./binder.ts";
import { AddressAllocator, canonicalAddress, type AddressPool } from "./pool.ts";

export interface HostInfrastructureOptions {
  binder: AddressBinder;
  /** Addresses for Gateways without spec.addresses (default none: they listen on all interfaces). */
  pool?: AddressPool;
  log?: { info(message: string): void; warn(message: string): void };
}

export class HostInfrastructure implements GatewayInfrastructure {
  readonly #binder: AddressBinder;
  readonly #allocator: AddressAllocator | undefined;
  readonly #log: HostInfrastructureOptions["log"];
  #interfaceReady = false;
  #createdInterface = false;

  constructor(options: HostInfrastructureOptions) {
    this.#binder = options.binder;
    this.#allocator = options.pool === undefined ? undefined : new AddressAllocator(options.pool);
    this.#log = options.log;
  }

  /** Current pool assignments (Gateway key → address). */
  get assignments(): ReadonlyMap<string, string> {
    return this.#allocator?.assignments ?? new Map();
  }

  async prepare(input: InfrastructureInput): Promise<InfrastructureOutput> {
    const failed = new Map<string, ConditionSpec>();
    const static_ = new Map<string, string[]>();
    const requests: Array<{ key: string; previous: string[] }> = [];
    for (const g of input.ir.gateways) {
      if (g.addresses.length > 0) static_.set(g.id, g.addresses.map(canonicalAddress));
      else if (this.#allocator !== undefined)
        requests.push({ key: g.id, previous: reported(input.snapshot, g) });
    }
    const reserved = new Set([...static_.values()].flat());
    const allocation = this.#allocator?.allocate(requests, reserved) ?? {
      assigned: new Map<string, string>(),
      exhausted: [],
    };
    for (const key of allocation.exhausted) {
      failed.set(
        key,
        cond.gatewayAddressNotAssigned(
          `The address pool ${this.#allocator?.pool.cidr ?? ""} has no free address left`,
        ),
      );
    }

    // What must be on our interface: pool addresses, and static addresses not local elsewhere.
    const wanted = new Map<string, string[]>(); // address → gateways
    const need = (address: string, key: string) => wanted.set(address, [...(wanted.get(address) ?? []), key]);
    for (const [key, address] of allocation.assigned) need(address, key);
    let bound: Set<string>;
    let local: Set<string>;
    try {
      // (An interface left over from an earlier run is listed too: its stale addresses go below.)
      bound = new Set((await this.#binder.list()).map(canonicalAddress));
      local = new Set((await this.#binder.localAddresses()).map(canonicalAddress));
      for (const [key, addresses] of static_) {
        for (const a of addresses) if (bound.has(a) || !local.has(a)) need(a, key);
      }
      // The interface is created only when there is something to put on it; one left over from an
      // earlier run (it has addresses) is taken over: ensureInterface says whether it is ours to
      // delete (Gatehouse's mark), e.g. after the previous controller was killed with SIGKILL.
      if (!this.#interfaceReady && (bound.size > 0 || [...wanted.keys()].some((a) => !bound.has(a)))) {
        this.#createdInterface = (await this.#binder.ensureInterface()) || this.#createdInterface;
        this.#interfaceReady = true;
      }
    } catch (error) {
      const message = `Cannot manage addresses on interface ${this.#binder.device}: ${describeError(error)}`;
      this.#log?.warn(message);
      for (const key of [...allocation.assigned.keys(), ...static_.keys()])
        failed.set(key, cond.gatewayAddressNotUsable(message));
      return finish(input, new Map(), failed);
    }
    for (const [address, keys] of wanted) {
      if (bound.has(address)) continue;
      try {
        await this.#binder.add(address);
        this.#log?.info(`bound ${address} on ${this.#binder.device} for Gateway ${keys.join(", ")}`);
      } catch (error) {
        const message = `Cannot add address ${address} to interface ${this.#binder.device}: ${describeError(error)}`;
        this.#log?.warn(message);
        for (const key of keys) failed.set(key, cond.gatewayAddressNotUsable(message));
      }
    }
    for (const address of bound) {
      if (wanted.has(address)) continue;
      try {
        await this.#binder.remove(address);
        this.#log?.info(`released ${address} from ${this.#binder.device}`);
      } catch (error) {
        this.#log?.warn(
          `cannot remove address ${address} from ${this.#binder.device}: ${describeError(error)}`,
        );
      }
    }
    return finish(input, allocation.assigned, failed);
  }

  async close(): Promise<void> {
    this.#interfaceReady = false;
    try {
      if (this.#createdInterface) {
        this.#createdInterface = false;
        await this.#binder.deleteInterface();
        this.#log?.info(`deleted interface ${this.#binder.device}`);
      } else {
        for (const address of await this.#binder.list()) await this.#binder.remove(address);
      }
    } catch (error) {
      this.#log?.warn(`cannot clean up interface ${this.#binder.device}: ${describeError(error)}`);
    }
  }
}

/** IPAddress values the Gateway object reports in status.addresses (from an earlier run). */
function reported(snapshot: Snapshot, g: IRGateway): string[] {
  const gateway = snapshot.gateways.get(g.id) as
    { status?: { addresses?: Array<{ type?: string; value?: string }> } } | undefined;
  return (gateway?.status?.addresses ?? [])
    .filter((a) => (a.type ?? "IPAddress") === "IPAddress" && typeof a.value === "string")
    .map((a) => a.value as string);
}

function finish(
  input: InfrastructureInput,
  assigned: ReadonlyMap<string, string>,
  failed: ReadonlyMap<string, ConditionSpec>,
): InfrastructureOutput {
  const gateways = input.ir.gateways
    .filter((g) => !failed.has(g.id))
    .map((g) => {
      const address = assigned.get(g.id);
      return address === undefined ? g : { ...g, addresses: [address] };
    });
  const ir: IR = { ...input.ir, gateways };
  const addresses = new Map(gateways.map((g) => [g.id, g.addresses]));
  const statuses = input.statuses.map((entry): StatusEntry => {
    if (entry.kind !== "Gateway") return entry;
    const key = `${entry.metadata.namespace ?? "default"}/${entry.metadata.name}`;
    const problem = failed.get(key);
    if (problem !== undefined) return notProgrammed(entry, problem, input.now);
    const list = addresses.get(key);
    if (list === undefined || list.length === 0) return entry;
    return {
      ...entry,
      status: { ...entry.status, addresses: list.map((value) => ({ type: "IPAddress", value })) },
    };
  });
  return { ir, statuses };
}

function notProgrammed(entry: StatusEntry, problem: ConditionSpec, now: string): StatusEntry {
  const conditions = (entry.status["conditions"] as Condition[] | undefined) ?? [];
  const generation = conditions[0]?.observedGeneration;
  const stamp = (c: ConditionSpec): Condition => ({
    ...c,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: now,
  });
  const listeners = (entry.status["listeners"] as Array<{ conditions?: Condition[] }> | undefined) ?? [];
  const rest = { ...entry.status };
  delete rest["addresses"];
  return {
    ...entry,
    status: {
      ...rest,
      conditions: [...conditions.filter((c) => c.type !== "Programmed"), stamp(problem)],
      listeners: listeners.map((l) => ({
        ...l,
        conditions: [
          ...(l.conditions ?? []).filter((c) => c.type !== "Programmed"),
          stamp(cond.listenerNotProgrammed(problem.message)),
        ],
      })),
    },
  };
}
