// Steady traffic for end-to-end tests that count failed requests: client loops (a keep-alive
// connection, or a new connection per request) send requests to one host until stopped; an answer
// that is not a 200 from the expected backend, or an error, is a failure.
import { keepAliveAgent, request } from "./client.ts";
import type { Harness } from "./harness.ts";

export interface Load {
  stop(): Promise<{ ok: number; failures: string[] }>;
}

export function load(
  h: Harness,
  clients: Array<"keep-alive" | "new-connection">,
  target: { host: string; backend: string; path?: string },
): Load {
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
          if (res.status === 200 && res.echo?.backend === target.backend) ok++;
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
