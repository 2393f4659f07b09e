// The parts of core/v1 Service and discovery.k8s.io/v1 EndpointSlice the mini-cluster's service
// proxy and load-balancer allocator read and write (JSON as the API server sends it).
export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  deletionTimestamp?: string;
}

export type Protocol = "TCP" | "UDP" | "SCTP";

export interface ServicePort {
  name?: string;
  protocol?: Protocol;
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface LoadBalancerIngress {
  ip?: string;
  hostname?: string;
  ipMode?: "VIP" | "Proxy";
}

export interface Service {
  metadata: Meta;
  spec: {
    type?: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";
    clusterIP?: string;
    clusterIPs?: string[];
    ports?: ServicePort[];
    selector?: Record<string, string>;
    loadBalancerIP?: string;
    loadBalancerClass?: string;
  };
  status?: { loadBalancer?: { ingress?: LoadBalancerIngress[] } };
}

export interface EndpointSlice {
  metadata: Meta;
  addressType: "IPv4" | "IPv6" | "FQDN";
  endpoints?: Array<{
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
  }>;
  ports?: Array<{ name?: string; protocol?: Protocol; port?: number }> | null;
}

export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
