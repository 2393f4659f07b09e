// Entry point of the fake kubelet: `node conformance/minicluster/kubelet/main.ts --config FILE`.
// Started by the mini-cluster; stops every pod and removes their network namespaces on SIGTERM or
// SIGINT.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { describe, Kube } from "../kube.ts";
import type { KubeletConfig } from "./config.ts";
import { Kubelet } from "./kubelet.ts";

const log = (message: string) => process.stdout.write(`${new Date().toISOString()} ${message}\n`);

const { values } = parseArgs({ options: { config: { type: "string" } } });
if (values.config === undefined) {
  process.stderr.write("usage: kubelet/main.ts --config FILE\n");
  process.exit(2);
}
const config = JSON.parse(readFileSync(values.config, "utf8")) as KubeletConfig;
const kubelet = new Kubelet(config, Kube.fromFile(config.kubeconfig), log);
const abort = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    log(`${signal}: shutting down`);
    abort.abort();
  });
}
try {
  await kubelet.run(abort.signal);
  log("stopped");
} catch (error) {
  log(`fatal: ${describe(error)}`);
  await kubelet.shutdown().catch(() => undefined);
  process.exitCode = 1;
}
