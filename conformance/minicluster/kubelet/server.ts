// The kubelet's HTTPS endpoint as the API server uses it for `kubectl logs` / pods/log:
// GET /containerLogs/{namespace}/{pod}/{container}?sinceTime=&sinceSeconds=&timestamps=&tailLines=
// &limitBytes=&follow=&previous=. Clients must present a certificate of the cluster CA (the API
// server's kubelet client certificate).
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { KubeletConfig } from "./config.ts";
import { followLog, logOptionsFromQuery, readLog, type LogOptions } from "./logs.ts";
import type { PodRunner } from "./pod.ts";

export interface PodLookup {
  runner(namespace: string, name: string): PodRunner | undefined;
  log(message: string): void;
}

export function startLogServer(config: KubeletConfig, pods: PodLookup): Promise<Server> {
  const server = createServer(
    {
      key: readFileSync(config.tlsKey),
      cert: readFileSync(config.tlsCert),
      ca: readFileSync(config.clientCA),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const text = (status: number, body: string) => {
        res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
        res.end(body);
      };
      if (req.method !== "GET") return text(405, "method not allowed\n");
      if (url.pathname === "/healthz") return text(200, "ok");
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      if (m === null) return text(404, "not found\n");
      const [namespace, name, container] = [m[1] ?? "", m[2] ?? "", m[3] ?? ""].map(decodeURIComponent) as [
        string,
        string,
        string,
      ];
      const runner = pods.runner(namespace, name);
      if (runner === undefined) return text(404, `pod ${namespace}/${name} is not running on this node\n`);
      let options: ReturnType<typeof logOptionsFromQuery>;
      try {
        options = logOptionsFromQuery(url.searchParams);
      } catch (error) {
        return text(400, `${error instanceof Error ? error.message : String(error)}\n`);
      }
      const file = runner.logFile(container, options.previous);
      if (file === undefined) {
        const what = runner.containerNames().includes(container)
          ? "previous terminated container"
          : "container";
        return text(400, `${what} "${container}" in pod "${name}" not found\n`);
      }
      const { text: body, offset } = readLog(file, options);
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      if (!options.follow || options.previous) {
        res.end(body);
        return;
      }
      res.write(body);
      const abort = new AbortController();
      req.on("close", () => abort.abort());
      const followOptions: LogOptions = { timestamps: options.timestamps === true };
      if (options.sinceNs !== undefined) followOptions.sinceNs = options.sinceNs;
      if (options.limitBytes !== undefined)
        followOptions.limitBytes = options.limitBytes - Buffer.byteLength(body);
      followLog(
        file,
        offset,
        followOptions,
        (chunk) => res.write(chunk),
        () => !runner.containerRunning(container),
        abort.signal,
      )
        .catch((error: unknown) => pods.log(`follow ${namespace}/${name}/${container}: ${String(error)}`))
        .finally(() => res.end());
    },
  );
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.nodeIP, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
