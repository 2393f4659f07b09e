// The loopback HTTP side of the Lua bridges (ExternalAuth, endpoint picker): reading a request's
// message with a size bound.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The request's body, or undefined when it is larger than `max` bytes: the request is then
 * answered 413 and its socket destroyed.
 */
export async function readMessage(
  req: IncomingMessage,
  res: ServerResponse,
  max: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > max) {
      res.writeHead(413).end();
      req.destroy();
      return undefined;
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/**
 * Headers that describe a message's framing or one connection, and Host: a bridge never copies
 * them between messages nor lets a service change them.
 */
export const HOP_HEADERS: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
  "host",
]);

/** Listens on a free loopback port; resolves with `127.0.0.1:<port>` (the Lua actions' argument). */
export async function listenLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}
