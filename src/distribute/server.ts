// The distribution server (controller side): HTTP/2 over TLS 1.3 with mutual TLS. Its certificate
// comes from the data-plane CA (re-issued in the last third of its life); a client certificate is
// required and verified against that CA at the handshake. The Gateway a pod may stream is the one
// its client certificate's URI SAN names, and nothing else: a stream path naming another Gateway is
// refused (403) and logged. A follower replica (`accepting` false) answers 503 so the pod retries
// and lands on the leader.
import { createSecureServer, constants, type Http2SecureServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { gatewayIdentityOfCertificate, needsRenewal, type GatewayIdentity } from "./ca.ts";
import type { IssuedCertificate } from "./contract.ts";
import type { ConfigDistributor, PodSession } from "./distributor.ts";
import {
  MAX_REPORT_LINE_BYTES,
  NDJSON_CONTENT_TYPE,
  oneLine,
  parsePodMessage,
  parseStreamPath,
} from "./protocol.ts";
import { streamEnd } from "./stream.ts";

export interface DistributionServerLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface DistributionServerOptions {
  listen: { host: string; port: number };
  /** The data-plane CA (a CertificateAuthority). */
  ca: { readonly caPem: string; issueServer(names: ServerNames): Promise<IssuedCertificate> };
  distributor: ConfigDistributor;
  /** Names the pods reach the server by (the controller Service's DNS names, IPs). */
  serverNames: ServerNames;
  /** False on a replica that must not serve streams now (a follower): new streams get 503. Default always true. */
  accepting?: () => boolean;
  logger: DistributionServerLogger;
  /** Heartbeat and dead-peer timing (defaults HEARTBEAT_MS / PEER_TIMEOUT_MS); tests shorten them. */
  heartbeatMs?: number;
  peerTimeoutMs?: number;
  /** How often the server certificate is checked for renewal (default 1 h). */
  renewCheckMs?: number;
}

export interface ServerNames {
  dnsNames: readonly string[];
  ipAddresses: readonly string[];
}

export interface DistributionServer {
  readonly address: { host: string; port: number };
  /** Streams open now. */
  readonly streams: number;
  /** Stops accepting, ends every stream, closes. */
  close(): Promise<void>;
}

export async function startDistributionServer(o: DistributionServerOptions): Promise<DistributionServer> {
  let issued = await o.ca.issueServer(o.serverNames);
  const server: Http2SecureServer = createSecureServer({
    key: issued.keyPem,
    cert: issued.certPem,
    ca: [o.ca.caPem],
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    allowHTTP1: false,
    settings: { initialWindowSize: 4 * 1024 * 1024 },
  });
  const open = new Set<ServerHttp2Stream>();
  server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
    o.logger.warn(
      { remote: socket.remoteAddress, error: err.message },
      "config stream: TLS handshake refused (no valid client certificate from the data-plane CA)",
    );
  });
  server.on("stream", (stream, headers) => {
    try {
      handle(o, stream, String(headers[":method"]), String(headers[":path"]), open);
    } catch (err) {
      o.logger.error({ err }, "config stream: internal error");
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err: Error) => o.logger.error({ err }, "config stream server error"));
  const renew = setInterval(() => {
    if (!needsRenewal(issued.certPem, new Date())) return;
    o.ca
      .issueServer(o.serverNames)
      .then((next) => {
        issued = next;
        server.setSecureContext({
          key: next.keyPem,
          cert: next.certPem,
          ca: [o.ca.caPem],
          minVersion: "TLSv1.3",
        });
        o.logger.info({ notAfter: next.notAfter.toISOString() }, "config stream: server certificate renewed");
      })
      .catch((err: unknown) => o.logger.error({ err }, "config stream: cannot renew the server certificate"));
  }, o.renewCheckMs ?? 3_600_000);
  renew.unref();
  const address = server.address() as AddressInfo;
  o.logger.info({ host: address.address, port: address.port }, "config stream server listening");
  return {
    address: { host: address.address, port: address.port },
    get streams() {
      return open.size;
    },
    close: async () => {
      clearInterval(renew);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of open) s.close(constants.NGHTTP2_CANCEL);
      await closed;
    },
  };
}

function handle(
  o: DistributionServerOptions,
  stream: ServerHttp2Stream,
  method: string,
  path: string,
  open: Set<ServerHttp2Stream>,
): void {
  const refuse = (status: number, text: string): void => {
    stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8" });
    stream.end(`${text}\n`);
  };
  const requested = parseStreamPath(path);
  if (method !== "POST" || requested === undefined) return refuse(404, "not a config stream path");
  const socket = stream.session?.socket as TLSSocket | undefined;
  const peer = socket?.getPeerCertificate();
  const identity: GatewayIdentity | undefined =
    peer?.raw !== undefined ? gatewayIdentityOfCertificate(peer.raw) : undefined;
  const remote = socket?.remoteAddress;
  if (identity === undefined) {
    o.logger.warn({ remote }, "config stream refused: the client certificate names no Gateway");
    return refuse(403, "the client certificate names no Gateway");
  }
  const gatewayId = `${identity.namespace}/${identity.name}`;
  if (requested.namespace !== identity.namespace || requested.name !== identity.name) {
    o.logger.warn(
      { remote, certificate: gatewayId, requested: oneLine(`${requested.namespace}/${requested.name}`) },
      "config stream refused: a pod asked for another Gateway's configuration",
    );
    return refuse(403, "this certificate may only stream its own Gateway's configuration");
  }
  if (!(o.accepting?.() ?? true)) {
    stream.respond({ ":status": 503, "retry-after": "1", "content-type": "text/plain; charset=utf-8" });
    stream.end("not the leader: retry\n");
    return;
  }
  stream.respond({ ":status": 200, "content-type": NDJSON_CONTENT_TYPE, "cache-control": "no-store" });
  open.add(stream);
  const pod: { session?: PodSession } = {};
  const end = streamEnd(stream, {
    maxLineBytes: MAX_REPORT_LINE_BYTES,
    ...(o.heartbeatMs !== undefined ? { heartbeatMs: o.heartbeatMs } : {}),
    ...(o.peerTimeoutMs !== undefined ? { peerTimeoutMs: o.peerTimeoutMs } : {}),
    onValue: (value) => {
      const message = parsePodMessage(value);
      if (typeof message === "string") {
        o.logger.warn(
          { gateway: gatewayId, remote, problem: message },
          "config stream: bad message from a pod",
        );
        stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
        return;
      }
      if (message.type !== "report") return;
      const accepted = pod.session?.report(message) ?? false;
      o.logger.debug(
        { gateway: gatewayId, pod: message.pod, hash: message.hash, applied: message.applied, accepted },
        "config stream: report",
      );
    },
    onFailure: (reason) => {
      o.logger.warn({ gateway: gatewayId, remote, reason }, "config stream: closing");
      stream.close(constants.NGHTTP2_CANCEL);
    },
  });
  const cleanup = (): void => {
    end.stop();
    open.delete(stream);
    pod.session?.close();
  };
  stream.on("close", cleanup);
  stream.on("error", () => undefined);
  o.logger.info({ gateway: gatewayId, remote }, "config stream: pod connected");
  pod.session = o.distributor.connect(gatewayId, { send: (message) => end.send(message, true) });
}
