// Test helpers on real loopback sockets: a UDP echo backend and a UDP client. Used by the
// forwarder's tests and the end-to-end tests.
import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";

export interface EchoReply {
  /** The backend's name. */
  backend: string;
  /** The datagram received, as text. */
  payload: string;
  /** Source port the backend saw (one per flow: the forwarder's upstream socket). */
  fromPort: number;
}

export interface UdpEcho {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** Datagrams received so far. */
  readonly received: Array<{ payload: string; from: { address: string; port: number } }>;
  close(): Promise<void>;
}

/** A UDP echo server answering every datagram with a JSON EchoReply. */
export async function startUdpEcho(name: string, address = "127.0.0.1"): Promise<UdpEcho> {
  const socket = createSocket(isIPv6(address) ? "udp6" : "udp4");
  const received: UdpEcho["received"] = [];
  socket.on("message", (data, rinfo) => {
    const payload = data.toString("utf8");
    received.push({ payload, from: { address: rinfo.address, port: rinfo.port } });
    const reply: EchoReply = { backend: name, payload, fromPort: rinfo.port };
    socket.send(JSON.stringify(reply), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, address, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return {
    name,
    address,
    port: socket.address().port,
    received,
    close: () => closeSocket(socket),
  };
}

export interface UdpClient {
  readonly port: number;
  /** Sends `payload` and waits for one reply (undefined after `timeoutMs`). */
  ask(payload: string, timeoutMs?: number): Promise<EchoReply | undefined>;
  /** Every datagram received so far, as text. */
  readonly replies: string[];
  close(): Promise<void>;
}

/** A UDP client bound to an ephemeral port, talking to `address:port`. */
export async function udpClient(address: string, port: number): Promise<UdpClient> {
  const socket = createSocket(isIPv6(address) ? "udp6" : "udp4");
  const replies: string[] = [];
  const waiters: Array<(text: string) => void> = [];
  socket.on("message", (data) => {
    const text = data.toString("utf8");
    replies.push(text);
    waiters.shift()?.(text);
  });
  await new Promise<void>((resolve) => socket.bind(0, isIPv6(address) ? "::1" : undefined, resolve));
  return {
    port: socket.address().port,
    replies,
    ask(payload, timeoutMs = 1000) {
      return new Promise((resolve) => {
        let done = false;
        const waiter = (text: string): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          try {
            resolve(JSON.parse(text) as EchoReply);
          } catch {
            resolve(undefined);
          }
        };
        const timer = setTimeout(() => {
          done = true;
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          resolve(undefined);
        }, timeoutMs);
        waiters.push(waiter);
        socket.send(payload, port, address);
      });
    },
    close: () => closeSocket(socket),
  };
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve();
    }
  });
}
