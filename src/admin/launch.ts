// The admin server as `gatehouse serve` and `gatehouse controller` start it: token file read (and
// watched for rotation), exposure policy enforced, the opt-out logged loudly.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { isLoopbackHost, readTokenFile, watchTokenFile } from "./auth.ts";
import { startAdminServer, type AdminServer } from "./server.ts";
import type { AdminState } from "./state.ts";

export interface AdminListen {
  host: string;
  port: number;
  /** File holding the bearer token (first line); re-read when it changes. */
  tokenFile?: string;
  /** Serve a non-loopback address without a token. */
  insecureNoAuth?: boolean;
}

export interface LaunchAdminOptions {
  listen: AdminListen;
  state: AdminState;
  registry: Registry;
  /** HAProxy's exporter, proxied by /metrics (none: a control plane without a local data plane). */
  haproxyMetricsUrl?: string;
  logger: Logger;
}

/** Starts the admin server; `close` also stops watching the token file. */
export async function launchAdmin(
  options: LaunchAdminOptions,
): Promise<{ server: AdminServer; close(): Promise<void> }> {
  const { listen, logger } = options;
  const token = listen.tokenFile !== undefined ? readTokenFile(listen.tokenFile) : undefined;
  const insecure = listen.insecureNoAuth === true && token === undefined;
  if (insecure && !isLoopbackHost(listen.host)) {
    logger.warn(
      { admin: `${listen.host}:${listen.port}`, flag: "--admin-insecure-no-auth" },
      "SECURITY WARNING: the admin API is served WITHOUT AUTHENTICATION on a non-loopback address: " +
        "anyone who can reach it reads every object's status and the configuration in effect. " +
        "Use --admin-token-file PATH instead.",
    );
  }
  const server = await startAdminServer({
    state: options.state,
    registry: options.registry,
    host: listen.host,
    port: listen.port,
    ...(options.haproxyMetricsUrl !== undefined ? { haproxyMetricsUrl: options.haproxyMetricsUrl } : {}),
    ...(token !== undefined ? { token } : {}),
    allowUnauthenticated: insecure,
    onError: (message, cause) => logger.warn({ err: cause }, message),
  });
  let current = token;
  const unwatch =
    listen.tokenFile === undefined
      ? undefined
      : watchTokenFile(
          listen.tokenFile,
          (next) => {
            if (next === current) return;
            current = next;
            server.setToken(next);
            logger.info({ file: listen.tokenFile }, "admin token file changed: the new token is in effect");
          },
          (error) =>
            logger.warn({ err: error }, "admin token file unusable; the previous token stays in effect"),
        );
  return {
    server,
    close: async () => {
      unwatch?.();
      await server.close();
    },
  };
}
