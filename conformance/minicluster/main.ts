// `npm run minicluster -- <start|stop|status> [flags]`: a throw-away Kubernetes control plane with
// a fake kubelet on this machine (root needed). `start` prints `export KUBECONFIG=...` on stdout
// (progress on stderr) and leaves the cluster running; `stop` tears everything down.
import { parseArgs } from "node:util";
import { DEFAULTS, startCluster, stopCluster } from "./cluster.ts";
import { describe } from "./kube.ts";
import { isAlive } from "./proc.ts";
import { readState, runDirFor } from "./state.ts";

const USAGE = `Usage: npm run minicluster -- <command> [flags]

Commands:
  start    start etcd, kube-apiserver, kube-controller-manager, the Gateway API v1.6.1 CRDs and the
           fake kubelet; prints "export KUBECONFIG=..." on stdout
  stop     stop everything and remove the network namespaces, bridge and run dir
  status   show what runs
  env      print "export KUBECONFIG=..." of the running cluster

Flags:
  --name NAME            cluster name (default ${DEFAULTS.name}); the run dir is
                         \${GATEHOUSE_MINICLUSTER_HOME:-/tmp/gatehouse-minicluster}/NAME
  --bridge IF            the node's bridge (default ${DEFAULTS.bridge})
  --node-address IP/N    the node's address on the bridge (default ${DEFAULTS.nodeAddress})
  --pod-cidr CIDR        pod addresses, inside the bridge subnet (default ${DEFAULTS.podCIDR})
  --service-cidr CIDR    (default ${DEFAULTS.serviceCIDR})
  --node-name NAME       (default ${DEFAULTS.nodeName})
  --no-kubelet           do not start the fake kubelet
  --image REGEX=BINARY   run images matching REGEX with BINARY (repeatable)
  --no-services          no service networking (no ClusterIPs, no load-balancer addresses)
  --lb-pool CIDR         load-balancer addresses for Services of type LoadBalancer
                         (default ${DEFAULTS.loadBalancerPool})
  --lb-range CIDR        spec.loadBalancerIP is honoured inside this range
                         (default ${DEFAULTS.loadBalancerRange})
  --lb-class NAME        also serve Services with this loadBalancerClass
                         (default ${DEFAULTS.loadBalancerClass}; those without a class always)
  --keep-run-dir         stop: leave the run dir (logs) in place
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string", default: DEFAULTS.name },
      bridge: { type: "string", default: DEFAULTS.bridge },
      "node-address": { type: "string", default: DEFAULTS.nodeAddress },
      "pod-cidr": { type: "string", default: DEFAULTS.podCIDR },
      "service-cidr": { type: "string", default: DEFAULTS.serviceCIDR },
      "node-name": { type: "string", default: DEFAULTS.nodeName },
      "no-kubelet": { type: "boolean", default: false },
      image: { type: "string", multiple: true, default: [] },
      "no-services": { type: "boolean", default: false },
      "lb-pool": { type: "string", default: DEFAULTS.loadBalancerPool },
      "lb-range": { type: "string", default: DEFAULTS.loadBalancerRange },
      "lb-class": { type: "string", default: DEFAULTS.loadBalancerClass },
      "keep-run-dir": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined) {
    (values.help ? process.stdout : process.stderr).write(USAGE);
    return values.help ? 0 : 2;
  }
  const log = (line: string) => process.stderr.write(`minicluster: ${line}\n`);
  switch (command) {
    case "start": {
      const state = await startCluster({
        name: values.name,
        bridge: values.bridge,
        nodeAddress: values["node-address"],
        podCIDR: values["pod-cidr"],
        serviceCIDR: values["service-cidr"],
        nodeName: values["node-name"],
        kubelet: !values["no-kubelet"],
        images: values.image,
        services: !values["no-services"],
        loadBalancerPool: values["lb-pool"],
        loadBalancerRange: values["lb-range"],
        loadBalancerClass: values["lb-class"],
        log,
      });
      log(
        `logs: ${state.runDir}/logs; stop with: npm run minicluster -- stop${values.name === DEFAULTS.name ? "" : ` --name ${values.name}`}`,
      );
      process.stdout.write(`export KUBECONFIG=${state.kubeconfig}\n`);
      return 0;
    }
    case "stop": {
      const state = readState(values.name);
      if (state === undefined) {
        log(`no mini-cluster "${values.name}" (${runDirFor(values.name)}/state.json not found)`);
        return 0;
      }
      await stopCluster(state, log, { keepRunDir: values["keep-run-dir"] });
      log(`mini-cluster "${values.name}" stopped`);
      return 0;
    }
    case "status": {
      const state = readState(values.name);
      if (state === undefined) {
        process.stdout.write(`mini-cluster "${values.name}": not running\n`);
        return 1;
      }
      process.stdout.write(
        [
          `mini-cluster "${state.name}" (${state.runDir}), since ${state.createdAt}`,
          `  API server  ${state.apiserverURL}`,
          `  node        ${state.nodeName} ${state.nodeIP} (bridge ${state.bridge}, pods ${state.podCIDR}), kubelet :${state.kubeletPort}`,
          ...(state.services !== undefined
            ? [
                `  services    kubernetes ${state.services.kubernetesServiceIP}:443, service CIDR ${state.serviceCIDR}, load-balancer pool ${state.services.loadBalancerPool} (requests within ${state.services.loadBalancerRange}), nftables table ip ${state.servicesTable ?? "?"}`,
              ]
            : []),
          ...state.processes.map(
            (p) => `  ${p.name.padEnd(24)} pid ${p.pid} ${isAlive(p) ? "running" : "NOT RUNNING"}`,
          ),
          `  export KUBECONFIG=${state.kubeconfig}`,
          "",
        ].join("\n"),
      );
      return state.processes.every(isAlive) ? 0 : 1;
    }
    case "env": {
      const state = readState(values.name);
      if (state === undefined) {
        log(`no mini-cluster "${values.name}"`);
        return 1;
      }
      process.stdout.write(`export KUBECONFIG=${state.kubeconfig}\n`);
      return 0;
    }
    default:
      process.stderr.write(`minicluster: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`minicluster: ${describe(error)}\n`);
  process.exitCode = 1;
}
