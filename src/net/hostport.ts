// `host:port` and `[v6]:port`: the one parser and formatter of addresses given on command lines
// (--admin, --haproxy-metrics, --distribute-listen, ...).

export interface HostPort {
  host: string;
  port: number;
}

/**
 * `host:port`, `[v6]:port` or (with `defaultHost`) a bare `port` → { host, port }; undefined when
 * the text is none of these or the port is outside 0–65535 (0: any free port). The brackets of an
 * IPv6 literal are removed.
 */
export function parseHostPort(text: string, options: { defaultHost?: string } = {}): HostPort | undefined {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):)?(\d{1,5})$/.exec(text.trim());
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port > 65535) return undefined;
  const host = m[1] ?? m[2];
  if (host === undefined || host === "") {
    if (options.defaultHost === undefined) return undefined;
    return { host: options.defaultHost, port };
  }
  return { host, port };
}

/** { host, port } → `host:port`, brackets around an IPv6 literal. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
