// A watch that asks the API server for metadata only (PartialObjectMetadata: name, namespace,
// resourceVersion, labels, annotations; no data), for Secrets and ConfigMaps. The client library's
// Watch cannot send the Accept header this needs, so this is a small watch of our own with the same
// contract (`done` once, with an error or null; a TimeoutError after a quiet `idleMs`, which
// ListWatch answers by reconnecting at once), authenticated through the KubeConfig like HttpKubeApi.
import * as http from "node:http";
import * as https from "node:https";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { GatehouseError } from "../../errors.ts";
import type { WatchLike } from "./provider.ts";

export const METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
export const METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

type WatchArgs = Parameters<WatchLike["watch"]>;

export class MetadataWatch implements WatchLike {
  readonly #config: KubeConfig;
  readonly #idleMs: number;

  constructor(config: KubeConfig, options: { idleMs?: number } = {}) {
    this.#config = config;
    this.#idleMs = options.idleMs ?? 30_000;
  }

  async watch(
    path: WatchArgs[0],
    queryParams: WatchArgs[1],
    callback: WatchArgs[2],
    done: WatchArgs[3],
  ): Promise<AbortController> {
    const cluster = this.#config.getCurrentCluster();
    if (cluster === null) throw new GatehouseError("kubeconfig: no current cluster");
    const url = new URL(cluster.server.replace(/\/+$/, "") + path);
    url.searchParams.set("watch", "true");
    for (const [key, value] of Object.entries(queryParams))
      if (value !== undefined) url.searchParams.set(key, String(value));
    const opts: https.RequestOptions = { method: "GET", headers: {} };
    await this.#config.applyToHTTPSOptions(opts);
    const controller = new AbortController();
    let finished = false;
    const finish = (error: unknown): void => {
      if (finished) return;
      finished = true;
      controller.abort();
      done(error);
    };
    const transport = url.protocol === "http:" ? http : https;
    const req = transport.request(url, {
      ...opts,
      headers: { ...(opts.headers as Record<string, string> | undefined), accept: METADATA_ACCEPT },
      signal: controller.signal,
    });
    req.setTimeout(this.#idleMs, () => {
      const error = new Error(`watch ${path}: nothing for ${this.#idleMs} ms`);
      error.name = "TimeoutError";
      finish(error);
      req.destroy();
    });
    // Aborted by the caller (ListWatch.stop): a normal end.
    req.on("error", (error) => finish(controller.signal.aborted ? null : error));
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        finish(
          Object.assign(new Error(`watch ${path}: HTTP ${res.statusCode ?? 0}`), {
            statusCode: res.statusCode,
          }),
        );
        return;
      }
      const lines = createInterface({ input: res });
      lines.on("error", (error) => finish(error));
      lines.on("line", (line) => {
        try {
          const event = JSON.parse(line) as { type: string; object: unknown };
          callback(event.type, event.object, event);
        } catch {
          // not a watch event: ignore, as the library does
        }
      });
      res.on("error", (error) => finish(error));
      res.on("end", () => finish(null));
      res.on("close", () => finish(null));
    });
    req.end();
    return controller;
  }
}
