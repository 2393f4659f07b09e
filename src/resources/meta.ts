// Kubernetes object metadata as Gatehouse reads it (the subset the translator uses).

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  creationTimestamp?: string;
  uid?: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
}

/** Any Kubernetes object: the shape every loaded document has. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}
