// Configuration of the fake kubelet, written by the mini-cluster (`<run dir>/kubelet.json`).
export interface KubeletConfig {
  nodeName: string;
  /** The node's InternalIP (on the bridge); the kubelet serves logs there. */
  nodeIP: string;
  /** The bridge subnet (e.g. 10.244.0.0/16): pods get an address in it, on the bridge's L2 segment. */
  nodeSubnet: string;
  /** spec.podCIDR of the node; pod addresses are allocated from it. */
  podCIDR: string;
  bridge: string;
  kubeconfig: string;
  /** How pods reach the API server (KUBERNETES_SERVICE_HOST/PORT, there is no kube-proxy). */
  apiserverURL: string;
  /** Pod directories (volumes, logs) and the record of started processes. */
  runDir: string;
  /** HTTPS port of the log server (node.status.daemonEndpoints.kubeletEndpoint.Port). */
  port: number;
  tlsCert: string;
  tlsKey: string;
  /** CA of the client certificate the API server presents (requests without one are refused). */
  clientCA: string;
  netnsPrefix: string;
  vethPrefix: string;
  /** Local binaries by name: echo-basic, coredns. */
  binaries: Record<string, string>;
  /** Extra image mappings, `REGEX=BINARY` (tried before the built-in ones). */
  images: string[];
  kubeletVersion: string;
  /** CIDRs routed via the node in every pod's network namespace (service CIDR, load-balancer range). */
  routes?: string[];
  /**
   * The `kubernetes` Service (programmed by the mini-cluster's service proxy): pods that are not
   * hostNetwork get it as KUBERNETES_SERVICE_HOST/PORT. Without it, the API server's own address.
   */
  kubernetesService?: { host: string; port: number };
}
