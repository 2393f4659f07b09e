// Status shapes the translator computes and status sinks write.

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** A Kubernetes object stub carrying exactly the status the controller would write. */
export interface StatusEntry {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  status: Record<string, unknown>;
}
