// Address pools (`--address-pool CIDR`) and stable allocation of their addresses to Gateways.
import { isIP } from "node:net";
import { UsageError } from "../../errors.ts";

/** An IPv4 or IPv6 prefix. */
export class AddressPool {
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly #first: bigint;
  readonly #last: bigint;

  constructor(cidr: string) {
    const slash = cidr.indexOf("/");
    const base = slash < 0 ? cidr : cidr.slice(0, slash);
    const family = isIP(base);
    if (family !== 4 && family !== 6)
      throw new UsageError(`address pool ${JSON.stringify(cidr)}: not a CIDR`);
    const bits = family === 4 ? 32 : 128;
    const prefix = slash < 0 ? bits : Number(cidr.slice(slash + 1));
    if (
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > bits ||
      (slash >= 0 && !/^\d+$/.test(cidr.slice(slash + 1)))
    )
      throw new UsageError(`address pool ${JSON.stringify(cidr)}: bad prefix length`);
    const hostBits = BigInt(bits - prefix);
    const network = (toBigInt(base) >> hostBits) << hostBits;
    let first = network;
    let last = network + (1n << hostBits) - 1n;
    // IPv4: the network and broadcast addresses are not usable (except in /31 and /32). IPv6: the
    // subnet-router anycast address (all host bits zero) is left out likewise.
    if (family === 4 && prefix <= 30) {
      first += 1n;
      last -= 1n;
    } else if (family === 6 && prefix <= 126) {
      first += 1n;
    }
    this.cidr = `${fromBigInt(network, family)}/${prefix}`;
    this.family = family;
    this.#first = first;
    this.#last = last;
  }

  /** Usable addresses in the pool. */
  get size(): bigint {
    return this.#last - this.#first + 1n;
  }

  contains(address: string): boolean {
    if (isIP(address) !== this.family) return false;
    const n = toBigInt(address);
    return n >= this.#first && n <= this.#last;
  }

  /** The lowest usable address not in `taken`, or undefined when the pool is exhausted. */
  lowestFree(taken: ReadonlySet<string>): string | undefined {
    // `taken` is small (one entry per Gateway), so at most taken.size + 1 candidates are tried.
    for (let n = this.#first; n <= this.#last; n++) {
      const candidate = fromBigInt(n, this.family);
      if (!taken.has(candidate)) return candidate;
    }
    return undefined;
  }
}

/** Canonical text form of an address (IPv6 compressed), or the input when it is not an address. */
export function canonicalAddress(address: string): string {
  const family = isIP(address);
  return family === 4 || family === 6 ? fromBigInt(toBigInt(address), family) : address;
}

function toBigInt(address: string): bigint {
  if (isIP(address) === 4) {
    return address.split(".").reduce((n, part) => (n << 8n) + BigInt(Number(part)), 0n);
  }
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1] !== undefined) {
    const n = toBigInt(v4[1]);
    text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function fromBigInt(n: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join(".");
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

export interface AllocationRequest {
  /** `namespace/name` of the Gateway. */
  key: string;
  /** Addresses the Gateway reported before (status.addresses), tried first: stable across restarts. */
  previous: readonly string[];
}

export interface AllocationResult {
  /** Gateway key → address. */
  assigned: Map<string, string>;
  /** Gateways that got no address (pool exhausted). */
  exhausted: string[];
}

/**
 * Stable allocation: a Gateway keeps its address for as long as it wants one; a Gateway new to this
 * process first gets back an address it reported before (if free); the rest get the lowest free
 * addresses, in namespace/name order (so independent replicas agree).
 */
export class AddressAllocator {
  readonly pool: AddressPool;
  readonly #assigned = new Map<string, string>();

  constructor(pool: AddressPool) {
    this.pool = pool;
  }

  /** The current assignments. */
  get assignments(): ReadonlyMap<string, string> {
    return this.#assigned;
  }

  /**
   * Assigns addresses to exactly the `requests`; addresses of Gateways not requested are released.
   * `reserved` addresses (used by Gateways' spec.addresses) are never handed out.
   */
  allocate(
    requests: readonly AllocationRequest[],
    reserved: ReadonlySet<string> = new Set(),
  ): AllocationResult {
    const wanted = new Map(requests.map((r) => [r.key, r]));
    for (const [key, address] of this.#assigned) {
      if (!wanted.has(key) || reserved.has(address) || !this.pool.contains(address))
        this.#assigned.delete(key);
    }
    const taken = new Set<string>([...reserved, ...this.#assigned.values()]);
    const pending = [...wanted.keys()].filter((k) => !this.#assigned.has(k)).sort();
    const still: string[] = [];
    for (const key of pending) {
      const previous = (wanted.get(key)?.previous ?? [])
        .map(canonicalAddress)
        .find((a) => this.pool.contains(a) && !taken.has(a));
      if (previous === undefined) {
        still.push(key);
        continue;
      }
      this.#assigned.set(key, previous);
      taken.add(previous);
    }
    const exhausted: string[] = [];
    for (const key of still) {
      const address = this.pool.lowestFree(taken);
      if (address === undefined) {
        exhausted.push(key);
        continue;
      }
      this.#assigned.set(key, address);
      taken.add(address);
    }
    const assigned = new Map<string, string>();
    for (const key of wanted.keys()) {
      const address = this.#assigned.get(key);
      if (address !== undefined) assigned.set(key, address);
    }
    return { assigned, exhausted };
  }
}
