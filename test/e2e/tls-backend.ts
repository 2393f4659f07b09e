// A TLS backend for end-to-end tests (node:https on 127.0.0.1, a free port): the BackendTLSPolicy,
// subjectAltNames and backend client certificate tests share it.
import { createServer, type ServerOptions } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface TLSBackend {
  /** `127.0.0.1:<port>`, for a Service's `gatehouse.dev/endpoints`. */
  endpoint: string;
  close(): Promise<void>;
}

export async function startTLSBackend(
  options: ServerOptions,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TLSBackend> {
  const server = createServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
