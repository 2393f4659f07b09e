// Core Kubernetes kinds the translator reads, reduced to the fields Gatehouse uses.
// (The Gateway API kinds are generated from the CRDs: see ./generated/types.ts.)
import type { ObjectMeta } from "./meta.ts";

export interface Namespace {
  apiVersion: "v1";
  kind: "Namespace";
  metadata: ObjectMeta;
}

export interface ServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: "TCP" | "UDP" | "SCTP";
  appProtocol?: string;
}

export interface Service {
  apiVersion: "v1";
  kind: "Service";
  metadata: ObjectMeta;
  spec?: {
    type?: string;
    clusterIP?: string;
    ports?: ServicePort[];
    selector?: Record<string, string>;
    externalName?: string;
  };
}

export interface EndpointSlice {
  apiVersion: "discovery.k8s.io/v1";
  kind: "EndpointSlice";
  metadata: ObjectMeta;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    hostname?: string;
    nodeName?: string;
  }>;
  ports?: Array<{ name?: string; port?: number; protocol?: string; appProtocol?: string }>;
}

export interface Secret {
  apiVersion: "v1";
  kind: "Secret";
  metadata: ObjectMeta;
  type?: string;
  /** base64-encoded values */
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface ConfigMap {
  apiVersion: "v1";
  kind: "ConfigMap";
  metadata: ObjectMeta;
  data?: Record<string, string>;
}

/**
 * A Pod, reduced to what an InferencePool reads: labels (its selector), the Pod's IP and whether it
 * is ready. In `serve` mode Pods are written in the YAML with `status.podIP` (and optionally
 * `status.conditions` Ready and `status.phase`), as the API server would report them.
 */
export interface Pod {
  apiVersion: "v1";
  kind: "Pod";
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: Array<{ ip: string }>;
    conditions?: Array<{ type: string; status: string }>;
  };
}
