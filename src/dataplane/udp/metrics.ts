// The forwarder's metrics on Gatehouse's registry (src/observability/metrics.ts). Label children
// are resolved once, so counting a datagram costs no label lookup.
import type { Metrics } from "../../observability/metrics.ts";
import type { UdpDropReason } from "./choose.ts";
import type { UdpDirection, UdpFlowCloseReason, UdpMetrics } from "./forwarder.ts";

export function udpMetrics(metrics: Metrics): UdpMetrics {
  const directions = ["to_backend", "to_client"] as const satisfies readonly UdpDirection[];
  const datagrams = new Map(directions.map((d) => [d, metrics.udpDatagrams.labels({ direction: d })]));
  const bytes = new Map(directions.map((d) => [d, metrics.udpBytes.labels({ direction: d })]));
  const drops = new Map<UdpDropReason, ReturnType<Metrics["udpDrops"]["labels"]>>();
  const closed = new Map<UdpFlowCloseReason, ReturnType<Metrics["udpFlowsClosed"]["labels"]>>();
  return {
    datagrams(direction, n) {
      datagrams.get(direction)?.inc();
      bytes.get(direction)?.inc(n);
    },
    dropped(reason) {
      let child = drops.get(reason);
      if (child === undefined) drops.set(reason, (child = metrics.udpDrops.labels({ reason })));
      child.inc();
    },
    flowOpened() {
      metrics.udpFlowsOpened.inc();
    },
    flowClosed(reason) {
      let child = closed.get(reason);
      if (child === undefined) closed.set(reason, (child = metrics.udpFlowsClosed.labels({ reason })));
      child.inc();
    },
    gauges(flows, listeners) {
      metrics.udpFlowsActive.set(flows);
      metrics.udpListeners.set(listeners);
    },
  };
}
