// The pods side of bench/distribution.ts, one process: one real ConfigStreamClient per Gateway (its
// own client certificate from the controller's CA, mTLS to the distribution server), each doing
// what the agent (src/dataplane/agent/agent.ts) does with a configuration before HAProxy: its
// configHash compared with the announced hash, validateIR, checkRenderable with the agent's default
// render options; then it reports applied (HAProxy itself is not run: its apply costs are measured
// by the other benches). A configuration failing a check is reported refused, as the agent does.
//
// Input: one JSON argument {controller, pods: [{namespace, name, tlsDir}]}. On stdin, the line
// `stats` prints one JSON line of what the checks cost so far ({configs, refused, checkMs[]}) and
// resets it; stdin closing stops every client and exits.
import { createInterface } from "node:readline";
import { ConfigStreamClient, type ConfigResult } from "../../src/distribute/client.ts";
import { configHash } from "../../src/distribute/contract.ts";
import type { ConfigMessage } from "../../src/distribute/protocol.ts";
import {
  checkRenderable,
  formatIssue,
  type RenderOptions,
} from "../../src/dataplane/haproxy/render/index.ts";
import { DEFAULT_METRICS_ADDRESS } from "../../src/dataplane/local.ts";
import { validateIR } from "../../src/ir/validate.ts";
import { createLogger } from "../../src/observability/logger.ts";

interface PodsInput {
  controller: string;
  pods: Array<{ namespace: string; name: string; tlsDir: string }>;
}

const input = JSON.parse(process.argv[2] ?? "") as PodsInput;
// What openLocalDataplane gives the agent by default (its state directory is per pod).
const renderOptions: RenderOptions = {
  stateDir: "/var/lib/gatehouse",
  runtimeSocket: "/var/lib/gatehouse/haproxy.sock",
  serverSlots: 16,
  spareBackends: 16,
  hardStopAfter: "10m",
  metricsAddress: DEFAULT_METRICS_ADDRESS,
};
// The agent logs at info; 100 pods' lines in one process would only add to the artefact of running
// them on one core, so warnings only.
const logger = createLogger({ level: "warn" });
let stats = { configs: 0, refused: 0, checkMs: [] as number[] };

function check(message: ConfigMessage): ConfigResult {
  const t = performance.now();
  const refuse = (error: string): ConfigResult => {
    stats.refused++;
    logger.error({ hash: message.hash, error }, "configuration refused");
    return { hash: message.hash, applied: false, error, unavailableListeners: [] };
  };
  try {
    if (configHash(message.ir) !== message.hash) return refuse("the configuration does not match its hash");
    const broken = validateIR(message.ir);
    if (broken.length > 0) return refuse(`the IR violates its invariants: ${broken.slice(0, 5).join("; ")}`);
    const issues = checkRenderable(message.ir, renderOptions);
    if (issues.length > 0) return refuse(`cannot render: ${issues.slice(0, 5).map(formatIssue).join("; ")}`);
    return { hash: message.hash, applied: true, unavailableListeners: [] };
  } finally {
    stats.configs++;
    stats.checkMs.push(performance.now() - t);
  }
}

const clients = input.pods.map(
  (p, i) =>
    new ConfigStreamClient({
      controller: input.controller,
      gateway: { namespace: p.namespace, name: p.name },
      tlsDir: p.tlsDir,
      pod: `${p.namespace}/${p.name}-pod-${i}`,
      logger: logger.child({ gateway: `${p.namespace}/${p.name}` }),
      onConfig: (message) => Promise.resolve(check(message)),
    }),
);
for (const c of clients) c.start();

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() !== "stats") return;
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  stats = { configs: 0, refused: 0, checkMs: [] };
});
lines.on("close", () => {
  for (const c of clients) c.stop();
  process.exit(0);
});
