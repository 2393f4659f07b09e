// The TLS bridge: upstream TLS for backends whose BackendTLSPolicy lists subjectAltNames, which
// HAProxy 2.6 cannot verify (it checks one name, the SNI, and no URI SANs). HAProxy reaches such a
// backend's servers through a SOCKS4 proxy (`socks4` on the server lines) served here, one loopback
// port per backend: for each connection HAProxy asks to CONNECT to a server's address; the bridge
// opens TLS to it (the policy's SNI and CAs), checks the certificate chain and that one of the
// subjectAltNames matches, and only then answers "granted" and relays bytes. HAProxy sends nothing
// before that answer, so no request byte reaches a server whose certificate fails the check: such a
// connection is refused and HAProxy answers 503. Endpoint changes stay runtime updates of HAProxy's
// server addresses (the SOCKS request carries the address). Cost: one extra relay in this process
// for those backends only (see the README). No ALPN is offered: HTTP/1.1 only (gRPC backends that
// need SAN validation are not supported; their rules are refused by the validators).
import { createServer, type Server, type Socket } from "node:net";
import { connect as tlsConnect, rootCertificates, type PeerCertificate, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { IR, IRBackend } from "../../ir/types.ts";

/** What the bridge needs of a backend: how to reach and verify its servers. */
interface BridgeTarget {
  sni: string;
  caCertificates: string[];
  system: boolean;
  subjectAltNames: string[];
}

/** Whether a backend goes through the bridge: upstream TLS with subjectAltNames to verify. */
export function needsBridge(backend: IRBackend): boolean {
  return backend.tls !== undefined && backend.tls.subjectAltNames.length > 0;
}

/**
 * Why `cert` matches none of `sans` (`DNS:<name>` with `*.` wildcards as RFC 6125 allows, or
 * `URI:<uri>`, compared exactly), or undefined when one matches.
 */
export function sanMismatch(cert: PeerCertificate, sans: readonly string[]): string | undefined {
  const presented = (cert.subjectaltname ?? "").split(/,\s*/).filter((s) => s !== "");
  const dns = presented.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4).toLowerCase());
  const uris = presented.filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
  for (const want of sans) {
    if (want.startsWith("URI:") && uris.includes(want.slice(4))) return undefined;
    if (want.startsWith("DNS:")) {
      const name = want.slice(4).toLowerCase();
      if (
        dns.some(
          (d) =>
            d === name ||
            (d.startsWith("*.") && name.endsWith(d.slice(1)) && !name.slice(0, -d.length + 1).includes(".")),
        )
      )
        return undefined;
    }
  }
  return `the certificate's subjectAltNames (${presented.join(", ") || "none"}) match none of ${sans.join(", ")}`;
}

export interface TLSBridgeOptions {
  logger: Logger;
  /** How long the TLS handshake with a server may take (default 10 s). */
  handshakeTimeoutMs?: number;
}

interface Listener {
  server: Server;
  address: string;
  target: BridgeTarget;
}

export class TLSBridge {
  readonly #o: TLSBridgeOptions;
  readonly #listeners = new Map<string, Listener>();
  readonly #sockets = new Set<Socket>();

  constructor(options: TLSBridgeOptions) {
    this.#o = options;
  }

  /**
   * Serves the backends of `ir` that need the bridge (a listener per backend, kept while the backend
   * exists, its TLS settings updated in place) and returns `ir` with each one's `tls.bridge` set.
   */
  async apply(ir: IR): Promise<IR> {
    const wanted = new Map(ir.backends.filter(needsBridge).map((b) => [b.id, b]));
    for (const [id, l] of this.#listeners) {
      if (!wanted.has(id)) {
        this.#listeners.delete(id);
        l.server.close();
      }
    }
    if (wanted.size === 0) return ir;
    const addresses = new Map<string, string>();
    for (const [id, backend] of wanted) {
      const target = targetOf(backend);
      const existing = this.#listeners.get(id);
      if (existing !== undefined) {
        existing.target = target;
        addresses.set(id, existing.address);
        continue;
      }
      const listener = await this.#listen(target);
      this.#listeners.set(id, listener);
      addresses.set(id, listener.address);
    }
    return {
      ...ir,
      backends: ir.backends.map((b) => {
        const address = addresses.get(b.id);
        return address === undefined || b.tls === undefined
          ? b
          : { ...b, tls: { ...b.tls, bridge: address } };
      }),
    };
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(
      [...this.#listeners.values()].map((l) => new Promise<void>((done) => l.server.close(() => done()))),
    );
    this.#listeners.clear();
  }

  async #listen(target: BridgeTarget): Promise<Listener> {
    const listener: Listener = { server: createServer(), address: "", target };
    listener.server.on("connection", (socket) => this.#serve(socket, listener));
    await new Promise<void>((resolve, reject) => {
      listener.server.once("error", reject);
      listener.server.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (listener.server.address() as { port: number }).port;
    listener.address = `127.0.0.1:${port}`;
    return listener;
  }

  /** One SOCKS4 CONNECT: verify the server over TLS, then grant and relay; refuse otherwise. */
  #serve(client: Socket, listener: Listener): void {
    this.#track(client);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      // VN(1)=4 CD(1)=1 DSTPORT(2) DSTIP(4) USERID... NUL
      const end = buffered.indexOf(0, 8);
      if (buffered.length > 512 || (buffered.length >= 2 && (buffered[0] !== 4 || buffered[1] !== 1))) {
        client.destroy();
        return;
      }
      if (end < 0) return;
      client.off("data", onData);
      client.pause();
      const port = buffered.readUInt16BE(2);
      const host = `${buffered[4]}.${buffered[5]}.${buffered[6]}.${buffered[7]}`;
      const rest = buffered.subarray(end + 1);
      this.#dial(client, host, port, listener.target, rest);
    };
    client.on("data", onData);
  }

  #dial(client: Socket, host: string, port: number, target: BridgeTarget, early: Buffer): void {
    const refuse = (why: string): void => {
      this.#o.logger.warn({ server: `${host}:${port}`, sni: target.sni }, `backend TLS refused: ${why}`);
      if (!client.destroyed) client.end(Buffer.from([0, 0x5b, 0, 0, 0, 0, 0, 0]));
    };
    const ca = [...target.caCertificates, ...(target.system ? rootCertificates : [])];
    let upstream: TLSSocket;
    try {
      upstream = tlsConnect({
        host,
        port,
        servername: target.sni,
        ca,
        rejectUnauthorized: true,
        // The chain is verified by Node; the name check is the policy's subjectAltNames, not the SNI.
        checkServerIdentity: (_host, cert) => {
          const why = sanMismatch(cert, target.subjectAltNames);
          return why === undefined ? undefined : new Error(why);
        },
        timeout: this.#o.handshakeTimeoutMs ?? 10_000,
      });
    } catch (err) {
      refuse(err instanceof Error ? err.message : String(err));
      return;
    }
    this.#track(upstream);
    let granted = false;
    upstream.once("timeout", () => {
      if (!granted) {
        refuse("TLS handshake timed out");
        upstream.destroy();
      }
    });
    upstream.once("secureConnect", () => {
      granted = true;
      upstream.setTimeout(0);
      client.write(Buffer.from([0, 0x5a, 0, 0, 0, 0, 0, 0]));
      if (early.length > 0) upstream.write(early);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
    upstream.on("error", (err: Error) => {
      if (!granted) refuse(err.message);
      else client.destroy();
    });
    client.on("error", () => upstream.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
  }
}

function targetOf(b: IRBackend): BridgeTarget {
  const tls = b.tls;
  if (tls === undefined) throw new Error(`internal: backend ${b.id} has no TLS settings`);
  return {
    sni: tls.sni,
    caCertificates: tls.caCertificates,
    system: tls.wellKnownCACertificates === "System",
    subjectAltNames: tls.subjectAltNames,
  };
}
