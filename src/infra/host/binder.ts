// Making addresses exist on this host: a dummy interface (default `gatehouse0`) holding each Gateway
// address as a host route (/32, /128). Kernels without the dummy driver (some sandboxes) get a
// bridge without ports instead, which holds local addresses just the same. Side effects live behind AddressBinder: IpBinder runs
// iproute2's `ip` (optionally in a network namespace, `ip -n NS`); FakeBinder records calls.
//
// An interface Gatehouse creates carries the alias `gatehouse` (ifalias). A Gatehouse killed with
// SIGKILL cannot clean up; the next one on the host finds the alias, knows the interface is
// Gatehouse's (not one the administrator made), takes it over (its stale addresses go at the first
// reconciliation) and deletes it when it stops.
import { execFile } from "node:child_process";
import { isIP } from "node:net";
import { GatehouseError } from "../../errors.ts";

export interface AddressBinder {
  /** The interface Gatehouse owns. */
  readonly device: string;
  /**
   * Creates the interface (a dummy) if missing and brings it up; true when it is Gatehouse's to
   * delete: created now, or created by an earlier Gatehouse that did not clean up (its mark).
   */
  ensureInterface(): Promise<boolean>;
  /** Addresses on our interface (none when it does not exist). */
  list(): Promise<string[]>;
  /** Addresses on every interface of the host (ours included). */
  localAddresses(): Promise<string[]>;
  add(address: string): Promise<void>;
  remove(address: string): Promise<void>;
  /** Deletes our interface (and with it every address on it). */
  deleteInterface(): Promise<void>;
}

/** Runs a command; resolves with stdout, rejects with an Error carrying stderr. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<string>;

export class BindError extends GatehouseError {}

export const execRunner: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(
          new BindError(`${file} ${args.join(" ")}: ${stderr.trim() || error.message}`, { cause: error }),
        );
      } else {
        resolve(stdout);
      }
    });
  });

export interface IpBinderOptions {
  /** Interface name (default gatehouse0; at most 15 characters). */
  device?: string;
  /** Run every command in this network namespace (`ip -n NS`). */
  netns?: string;
  /** The `ip` binary (default "ip"). */
  ip?: string;
  /** Link type to create: dummy, bridge, or auto (default: dummy, bridge when dummy is unavailable). */
  linkType?: "dummy" | "bridge" | "auto";
  run?: CommandRunner;
}

/** The ifalias marking an interface Gatehouse created. */
export const OWNED_ALIAS = "gatehouse";

interface IpAddrJson {
  ifname?: string;
  ifalias?: string;
  addr_info?: Array<{ local?: string; prefixlen?: number; family?: string; scope?: string }>;
}

export class IpBinder implements AddressBinder {
  readonly device: string;
  readonly #netns: string | undefined;
  readonly #ip: string;
  readonly #run: CommandRunner;
  readonly #linkType: "dummy" | "bridge" | "auto";
  /** The link type created (undefined when the interface existed already). */
  created: "dummy" | "bridge" | undefined;

  constructor(options: IpBinderOptions = {}) {
    this.device = options.device ?? "gatehouse0";
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(this.device))
      throw new GatehouseError(`bad interface name ${JSON.stringify(this.device)}`);
    this.#netns = options.netns;
    this.#ip = options.ip ?? "ip";
    this.#run = options.run ?? execRunner;
    this.#linkType = options.linkType ?? "auto";
  }

  #cmd(...args: string[]): Promise<string> {
    return this.#run(this.#ip, this.#netns === undefined ? args : ["-n", this.#netns, ...args]);
  }

  async #link(): Promise<IpAddrJson | undefined> {
    const links = JSON.parse((await this.#cmd("-j", "link", "show")) || "[]") as IpAddrJson[];
    return links.find((l) => l.ifname === this.device);
  }

  async #exists(): Promise<boolean> {
    return (await this.#link()) !== undefined;
  }

  async ensureInterface(): Promise<boolean> {
    let created = false;
    const existing = await this.#link();
    if (existing !== undefined) {
      created = existing.ifalias === OWNED_ALIAS; // left by an earlier Gatehouse
    } else {
      const type = this.#linkType === "bridge" ? "bridge" : "dummy";
      try {
        await this.#cmd("link", "add", this.device, "type", type);
        this.created = type;
      } catch (error) {
        if (this.#linkType !== "auto" || !/unknown device type|not supported/i.test(String(error)))
          throw error;
        await this.#cmd("link", "add", this.device, "type", "bridge");
        this.created = "bridge";
      }
      created = true;
      await this.#cmd("link", "set", "dev", this.device, "alias", OWNED_ALIAS);
    }
    await this.#cmd("link", "set", this.device, "up");
    return created;
  }

  async list(): Promise<string[]> {
    if (!(await this.#exists())) return [];
    return addresses(
      JSON.parse((await this.#cmd("-j", "addr", "show", "dev", this.device)) || "[]") as IpAddrJson[],
    );
  }

  async localAddresses(): Promise<string[]> {
    return addresses(JSON.parse((await this.#cmd("-j", "addr", "show")) || "[]") as IpAddrJson[]);
  }

  async add(address: string): Promise<void> {
    const v6 = isIP(address) === 6;
    await this.#cmd(
      "addr",
      "add",
      `${address}/${v6 ? 128 : 32}`,
      "dev",
      this.device,
      ...(v6 ? ["nodad"] : []),
    );
  }

  async remove(address: string): Promise<void> {
    await this.#cmd("addr", "del", `${address}/${isIP(address) === 6 ? 128 : 32}`, "dev", this.device);
  }

  async deleteInterface(): Promise<void> {
    await this.#cmd("link", "del", this.device);
  }
}

/** Global and host-scope addresses (link-local ones are the kernel's, not ours). */
function addresses(links: IpAddrJson[]): string[] {
  return links
    .flatMap((l) => (l.addr_info ?? []).filter((a) => a.scope !== "link").map((a) => a.local ?? ""))
    .filter((a) => a !== "");
}

/** An in-memory binder for unit tests: `calls` records every change; `failAdd` makes adds fail. */
export class FakeBinder implements AddressBinder {
  readonly device: string;
  readonly bound = new Set<string>();
  /** Addresses on other interfaces of the fake host. */
  readonly other: Set<string>;
  exists = false;
  /** The interface carries Gatehouse's mark (created by a Gatehouse). */
  marked = false;
  readonly calls: string[] = [];
  failAdd: ((address: string) => boolean) | undefined;

  constructor(device = "gatehouse0", other: Iterable<string> = ["127.0.0.1"]) {
    this.device = device;
    this.other = new Set(other);
  }

  ensureInterface(): Promise<boolean> {
    if (this.exists) return Promise.resolve(this.marked);
    this.exists = true;
    this.marked = true;
    this.calls.push(`link add ${this.device}`);
    return Promise.resolve(true);
  }
  list(): Promise<string[]> {
    return Promise.resolve([...this.bound]);
  }
  localAddresses(): Promise<string[]> {
    return Promise.resolve([...this.other, ...this.bound]);
  }
  add(address: string): Promise<void> {
    if (!this.exists) return Promise.reject(new BindError(`${this.device} does not exist`));
    if (this.failAdd?.(address) === true) return Promise.reject(new BindError(`cannot add ${address}`));
    this.bound.add(address);
    this.calls.push(`add ${address}`);
    return Promise.resolve();
  }
  remove(address: string): Promise<void> {
    this.bound.delete(address);
    this.calls.push(`del ${address}`);
    return Promise.resolve();
  }
  deleteInterface(): Promise<void> {
    this.exists = false;
    this.marked = false;
    this.bound.clear();
    this.calls.push(`link del ${this.device}`);
    return Promise.resolve();
  }
}
