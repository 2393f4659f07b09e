// The record of a running mini-cluster (`<run dir>/state.json`): everything `stop` needs to tear it
// down, written after every step of `start` so that a failed start can be cleaned up too.
import { existsSync, readFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProcessRecord } from "./proc.ts";

export interface ClusterState {
  version: 1;
  name: string;
  runDir: string;
  binDir: string;
  createdAt: string;
  /** The node's bridge; created by us when `bridgeCreated`. */
  bridge: string;
  bridgeCreated: boolean;
  /** The node's address (on the bridge) and the bridge subnet, e.g. 10.244.0.1 and 10.244.0.0/16. */
  nodeIP: string;
  nodeSubnet: string;
  nodeName: string;
  /** Pod addresses come from here (inside nodeSubnet). */
  podCIDR: string;
  serviceCIDR: string;
  apiserverURL: string;
  etcdClientURL: string;
  kubeletPort: number;
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** Prefixes of the network namespaces and host-side veths of pods (for cleanup). */
  netnsPrefix: string;
  vethPrefix: string;
  /** Processes in start order; stopped in reverse order. */
  processes: ProcessRecord[];
  /** Extra interfaces to delete on stop (e.g. one a controller of a run made). */
  extraLinks: string[];
  /** The service proxy's nftables table (family ip), when it was started. */
  servicesTable?: string;
  /** Service networking, when enabled (services/). */
  services?: {
    /** ClusterIP of the `kubernetes` Service (port 443). */
    kubernetesServiceIP: string;
    loadBalancerPool: string;
    loadBalancerRange: string;
    loadBalancerClass: string;
  };
}

export const DEFAULT_HOME = "/tmp/gatehouse-minicluster";

export function homeDir(): string {
  const fromEnv = process.env["GATEHOUSE_MINICLUSTER_HOME"];
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_HOME;
}

export function runDirFor(name: string): string {
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(name)) throw new Error(`bad cluster name "${name}" (a-z, 0-9, -)`);
  return join(homeDir(), name);
}

export function statePath(runDir: string): string {
  return join(runDir, "state.json");
}

export function readState(name: string): ClusterState | undefined {
  const path = statePath(runDirFor(name));
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, "utf8")) as ClusterState;
}

export async function saveState(state: ClusterState): Promise<void> {
  const path = statePath(state.runDir);
  await writeFile(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}
