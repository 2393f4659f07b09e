// `gatehouse explain`: for a route, or for a request (host, path, method, headers), which listener
// and rule serve it, and if none, why not. Against YAML files (translated like `translate`) or a
// running instance's /config and /status (`--admin URL`, with `--admin-token-file`).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { GatehouseError, UsageError } from "../errors.ts";
import {
  explainRequest,
  explainRoute,
  formatVerdict,
  type ExplainIR,
  type RequestQuery,
} from "../observability/explain.ts";
import type { StatusEntry } from "../status/types.ts";
import { DEFAULT_CONTROLLER_NAME } from "../translate/index.ts";
import type { CliIO, Command } from "./main.ts";
import { formatTime, loadConfig, translateOnce } from "./translate.ts";

const USAGE = `Usage: gatehouse explain (--config PATH | --admin URL) (--route KIND/NAMESPACE/NAME | --host HOST [--path PATH] ...)

Says which Gateway listener and route rule serve a request, or a route, and if none, why not.

Source (one of):
  -c, --config PATH        YAML files, translated as \`gatehouse translate\` does.
      --admin URL          A running Gatehouse's admin server (e.g. http://127.0.0.1:9901): its
                           /config (the configuration in effect) and /status.
      --admin-token-file PATH
                           Bearer token for --admin (the file's first line).
      --controller-name NAME
                           With --config: the GatewayClass controllerName (default
                           ${DEFAULT_CONTROLLER_NAME}).

What (one of):
      --route KIND/NAMESPACE/NAME
                           A route, e.g. HTTPRoute/default/shop: its conditions per parent and
                           where its rules are served.
      --host HOST          A request's Host (with --path PATH, default /; --method METHOD,
                           default GET; --header NAME=VALUE, repeatable; --port N and
                           --gateway NAMESPACE/NAME to narrow the listeners).
      --json               Print the explanation as JSON.
  -h, --help               Show this help.

Exit code: 0 when served, 3 when not served (the reasons are printed), 1 on errors.
`;

export const explainCommand: Command = {
  name: "explain",
  summary: "Explain which listener and rule serve a request or a route, and why not",
  usage: USAGE,
  run: runExplain,
};

/** Where explain reads the configuration: injected so the command is testable without I/O. */
export interface ExplainSource {
  load(): Promise<{ ir: ExplainIR; statuses: StatusEntry[] }>;
}

export function fileSource(path: string, controllerName: string, io: CliIO): ExplainSource {
  return {
    async load() {
      const loaded = await loadConfig(path, io);
      const { statuses, ir } = translateOnce(loaded, controllerName, formatTime(io.now()));
      return { ir, statuses };
    },
  };
}

export function adminSource(url: string, token: string | undefined): ExplainSource {
  const get = async (path: string): Promise<unknown> => {
    const target = new URL(path, url.endsWith("/") ? url : `${url}/`);
    let res: Response;
    try {
      res = await fetch(target, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
    } catch (error) {
      throw new GatehouseError(`cannot reach ${target.href}: is Gatehouse running there?`, { cause: error });
    }
    if (res.status === 401)
      throw new GatehouseError(`${target.href}: 401: give the admin token with --admin-token-file`);
    if (!res.ok) throw new GatehouseError(`${target.href}: HTTP ${res.status}`);
    return res.json();
  };
  return {
    async load() {
      const [config, status] = await Promise.all([get("config"), get("status")]);
      const ir = (config ?? { gateways: [] }) as ExplainIR;
      return { ir, statuses: (status as { objects?: StatusEntry[] }).objects ?? [] };
    },
  };
}

function parseHeaders(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    if (i <= 0) throw new UsageError(`--header must be NAME=VALUE, not "${v}"`);
    out[v.slice(0, i).trim().toLowerCase()] = v.slice(i + 1);
  }
  return out;
}

async function runExplain(args: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      config: { type: "string", short: "c" },
      admin: { type: "string" },
      "admin-token-file": { type: "string" },
      "controller-name": { type: "string" },
      route: { type: "string" },
      host: { type: "string" },
      path: { type: "string" },
      method: { type: "string" },
      header: { type: "string", multiple: true },
      port: { type: "string" },
      gateway: { type: "string" },
      json: { type: "boolean" },
    },
    strict: true,
    allowPositionals: false,
  });
  if ((values.config === undefined) === (values.admin === undefined))
    throw new UsageError("give one source: --config PATH or --admin URL");
  if ((values.route === undefined) === (values.host === undefined))
    throw new UsageError("give one question: --route KIND/NAMESPACE/NAME or --host HOST");
  let token: string | undefined;
  if (values["admin-token-file"] !== undefined) {
    try {
      token = readFileSync(values["admin-token-file"], "utf8").split("\n")[0]?.trim();
    } catch (error) {
      throw new GatehouseError(`cannot read --admin-token-file ${values["admin-token-file"]}`, {
        cause: error,
      });
    }
  }
  const source =
    values.config !== undefined
      ? fileSource(values.config, values["controller-name"] ?? DEFAULT_CONTROLLER_NAME, io)
      : adminSource(values.admin ?? "", token);
  const { ir, statuses } = await source.load();
  const lines: string[] = [];
  let served: boolean;
  let json: unknown;
  if (values.route !== undefined) {
    const [kind, namespace, name, ...rest] = values.route.split("/");
    if (kind === undefined || namespace === undefined || name === undefined || rest.length > 0 || name === "")
      throw new UsageError(
        `--route must be KIND/NAMESPACE/NAME (e.g. HTTPRoute/default/shop), not "${values.route}"`,
      );
    const e = explainRoute(ir, statuses, { kind, namespace, name });
    served = e.served.length > 0;
    json = e;
    lines.push(`${kind} ${namespace}/${name}`);
    if (e.conditions.length > 0) lines.push("conditions:", ...e.conditions.map((c) => `  ${c}`));
    if (e.served.length > 0)
      lines.push("served by:", ...e.served.map((v) => formatVerdict(v).replace(/^/gm, "  ")));
    if (e.reasons.length > 0) lines.push("not served:", ...e.reasons.map((r) => `  ${r}`));
  } else {
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
      throw new UsageError("--port must be 1..65535");
    const q: RequestQuery = {
      host: values.host ?? "",
      path: values.path ?? "/",
      ...(values.method !== undefined ? { method: values.method } : {}),
      headers: parseHeaders(values.header ?? []),
      ...(port !== undefined ? { port } : {}),
      ...(values.gateway !== undefined ? { gateway: values.gateway } : {}),
    };
    if (!q.path.startsWith("/")) throw new UsageError("--path must start with /");
    const e = explainRequest(ir, statuses, q);
    served = e.served;
    json = e;
    lines.push(`${(q.method ?? "GET").toUpperCase()} ${q.host}${q.path}`);
    for (const v of e.verdicts) lines.push(formatVerdict(v).replace(/^/gm, "  "));
    if (!e.served) lines.push("not served:");
    for (const r of e.reasons) lines.push(`  ${r}`);
  }
  io.stdout(values.json === true ? `${JSON.stringify(json, null, 2)}\n` : `${lines.join("\n")}\n`);
  return served ? 0 : 3;
}
