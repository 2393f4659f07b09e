// The loopback HTTP side of the Lua bridges (ExternalAuth, endpoint picker): reading a request's
// message with a size bound.
import type { IncomingMessage, ServerResponse } from "node:http";

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
