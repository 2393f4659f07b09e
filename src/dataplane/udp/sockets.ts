// The forwarder's only side effect: UDP sockets. `UdpSockets` is what the forwarder needs;
// `nodeUdpSockets` implements it with node:dgram. Errors are typed (UdpBindError, with the system
// error as `cause`); nothing here throws on a send: failures are reported to the callback.
import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import { GatehouseError } from "../../errors.ts";
import { formatHostPort } from "./plan.ts";

export interface UdpPeer {
  address: string;
  port: number;
}

export interface UdpHandlers {
  message(data: Buffer, from: UdpPeer): void;
  /** An asynchronous socket error (the socket may still work). */
  error(err: Error): void;
}

export interface UdpSocket {
  /** Sends one datagram; `done` gets the error when it could not be sent. Never throws. */
  send(data: Uint8Array, to: UdpPeer, done: (err: Error | undefined) => void): void;
  /** Idempotent. */
  close(): void;
}

export interface UdpListenSocket extends UdpSocket {
  /** The address and port actually bound. */
  readonly local: UdpPeer;
}

export interface UdpSockets {
  /** Binds `address:port` ("" = every interface, IPv6 and IPv4 when the host has IPv6). Rejects with UdpBindError. */
  listen(address: string, port: number, handlers: UdpHandlers): Promise<UdpListenSocket>;
  /** An unbound socket for the family of `peer` (bound to an ephemeral port by the first send). */
  open(peer: UdpPeer, handlers: UdpHandlers): UdpSocket;
}

/** A UDP address could not be bound. `code` is the system error code (EADDRINUSE, ...). */
export class UdpBindError extends GatehouseError {
  readonly code: string | undefined;
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(message, options);
    this.code = options.code;
  }
}

/** What a bind error means, in words for a status message. */
export function describeBindError(code: string | undefined, fallback: string): string {
  switch (code) {
    case "EADDRINUSE":
      return "the address is in use by another process";
    case "EADDRNOTAVAIL":
      return "the address is not assigned to this host";
    case "EACCES":
    case "EPERM":
      return "permission denied (ports below 1024 need privileges)";
    default:
      return fallback;
  }
}

class NodeUdpSocket implements UdpListenSocket {
  readonly #socket: Socket;
  #closed = false;
  local: UdpPeer = { address: "", port: 0 };

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  send(data: Uint8Array, to: UdpPeer, done: (err: Error | undefined) => void): void {
    if (this.#closed) {
      done(new GatehouseError("the socket is closed"));
      return;
    }
    try {
      this.#socket.send(data, to.port, to.address, (err) => done(err ?? undefined));
    } catch (err) {
      done(err instanceof Error ? err : new GatehouseError(String(err)));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#socket.close();
    } catch {
      // already closed by Node (e.g. after a bind failure)
    }
  }
}

function wire(socket: Socket, handlers: UdpHandlers): void {
  socket.on("message", (data, rinfo) => handlers.message(data, { address: rinfo.address, port: rinfo.port }));
  socket.on("error", (err) => handlers.error(err));
}

function bindOnce(
  type: "udp4" | "udp6",
  address: string,
  port: number,
  handlers: UdpHandlers,
): Promise<NodeUdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type, ipv6Only: false, reuseAddr: false });
    const wrapped = new NodeUdpSocket(socket);
    const onBindError = (err: NodeJS.ErrnoException): void => {
      wrapped.close();
      reject(err);
    };
    socket.once("error", onBindError);
    socket.bind({ port, address, exclusive: true }, () => {
      socket.off("error", onBindError);
      wire(socket, handlers);
      const bound = socket.address();
      wrapped.local = { address: bound.address, port: bound.port };
      resolve(wrapped);
    });
  });
}

export const nodeUdpSockets: UdpSockets = {
  async listen(address, port, handlers) {
    const fail = (err: unknown): UdpBindError => {
      const code = (err as NodeJS.ErrnoException).code;
      const text = err instanceof Error ? err.message : String(err);
      return new UdpBindError(
        `cannot listen on UDP ${formatHostPort(address, port)}: ${describeBindError(code, text)}`,
        { cause: err, ...(code !== undefined ? { code } : {}) },
      );
    };
    if (address !== "") {
      try {
        return await bindOnce(isIPv6(address) ? "udp6" : "udp4", address, port, handlers);
      } catch (err) {
        throw fail(err);
      }
    }
    try {
      return await bindOnce("udp6", "::", port, handlers);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // No IPv6 on this host: every IPv4 interface then.
      if (code !== "EAFNOSUPPORT" && code !== "EADDRNOTAVAIL") throw fail(err);
    }
    try {
      return await bindOnce("udp4", "0.0.0.0", port, handlers);
    } catch (err) {
      throw fail(err);
    }
  },

  open(peer, handlers) {
    const socket = createSocket({ type: isIPv6(peer.address) ? "udp6" : "udp4" });
    wire(socket, handlers);
    return new NodeUdpSocket(socket);
  },
};
