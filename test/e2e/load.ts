// Steady traffic for end-to-end tests that count failed requests: client loops (a keep-alive
// connection, or a new connection per request) send requests to one host until stopped; an answer
// that is not a 200 from the expected backend, or an error, is a failure.
import { keepAliveAgent, request, type Response } from "./client.ts";

export interface Load {
  stop(): Promise<{ ok: number; failures: string[] }>;
}

/** Where the requests go: a Harness, or any address and port (e.g. a Gateway's load-balancer IP). */
export interface LoadEndpoint {
  ip: string;
  port: number;
}

export interface LoadTarget {
  host: string;
  path?: string;
  /** The e2e echo backend's name the answers must come from (its x-backend header)... */
  backend?: string;
  /** ...or any other test of a good answer (e.g. echo-basic's JSON); default: the backend check. */
  accept?: (res: Response) => boolean;
}

export function load(
  h: LoadEndpoint,
  clients: Array<"keep-alive" | "new-connection">,
  target: LoadTarget,
): Load {
  const accept =
    target.accept ?? ((res: Response) => res.status === 200 && res.echo?.backend === target.backend);
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loops = clients.map(async (kind, i) => {
    const agent = kind === "keep-alive" ? keepAliveAgent() : false;
    try {
      while (running) {
        try {
          const res = await request({
            address: h.ip,
            port: h.port,
            host: target.host,
            path: `${target.path ?? "/load"}/${kind}/${i}`,
            agent,
            timeoutMs: 5000,
          });
          if (accept(res)) ok++;
          else failures.push(`${kind}: status ${res.status} ${res.body.slice(0, 100)}`);
        } catch (err) {
          failures.push(`${kind}: ${String(err)}`);
        }
      }
    } finally {
      if (agent !== false) agent.destroy();
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { ok, failures };
    },
  };
}
