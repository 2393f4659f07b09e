// Entry point of the mini-cluster's service networking (kube-proxy + load-balancer allocator, test
// infrastructure): `node conformance/minicluster/services/main.ts --config FILE`. Started by the
// mini-cluster; removes its nftables table and routes on SIGTERM or SIGINT.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { describe, Kube } from "../kube.ts";
import { HostNetwork } from "./host.ts";
import { ServiceProxy, type ServicesConfig } from "./proxy.ts";

const log = (message: string) => process.stdout.write(`${new Date().toISOString()} ${message}\n`);

const { values } = parseArgs({ options: { config: { type: "string" } } });
if (values.config === undefined) {
  process.stderr.write("usage: services/main.ts --config FILE\n");
  process.exit(2);
}
const config = JSON.parse(readFileSync(values.config, "utf8")) as ServicesConfig;
const host = new HostNetwork(config);
const abort = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    log(`${signal}: shutting down`);
    abort.abort();
  });
}
try {
  await host.setup();
  log(
    `table ip ${config.table}, service CIDR ${config.serviceCIDR} and load-balancer IPs routed to ${config.bridge}; ` +
      `pool ${config.loadBalancerPool}, requested addresses within ${config.loadBalancerRange}` +
      (config.masqueradeAll ? "; masquerading all service traffic (no br_netfilter)" : ""),
  );
  await new ServiceProxy(config, Kube.fromFile(config.kubeconfig), host, log).run(abort.signal);
} catch (error) {
  log(`fatal: ${describe(error)}`);
  process.exitCode = 1;
} finally {
  await host.teardown().catch((error: unknown) => {
    log(describe(error));
    process.exitCode = 1;
  });
  log("stopped; table and routes removed");
}
