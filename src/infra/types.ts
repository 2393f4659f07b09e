// Infrastructure: what turns a Gateway into something reachable. The serve loop calls `prepare`
// after translating and before rendering; an implementation may fill IRGateway.addresses (and make
// those addresses exist on the host), and reports them in the Gateways' status.addresses. It never
// decides anything the Gateway API rules decide: that is the translator's job.
import type { IR } from "../ir/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import type { StatusEntry } from "../status/types.ts";

export interface InfrastructureInput {
  ir: IR;
  statuses: readonly StatusEntry[];
  snapshot: Snapshot;
  /** RFC 3339 time for conditions this step sets. */
  now: string;
}

export interface InfrastructureOutput {
  /** The IR to render: Gateways carry the addresses they bind on; Gateways that got none are left out. */
  ir: IR;
  /** The statuses, with status.addresses (and Programmed False for Gateways left out). */
  statuses: StatusEntry[];
}

export interface GatewayInfrastructure {
  prepare(input: InfrastructureInput): Promise<InfrastructureOutput>;
  /** Releases what prepare set up (addresses, interfaces). */
  close(): Promise<void>;
}
