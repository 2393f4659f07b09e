// GatewayClass: which classes are ours, and their status.
import type { GatewayClass } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import {
  gatewayClassAccepted,
  gatewayClassInvalidParameters,
  gatewayClassSupportedVersion,
  type ConditionSpec,
} from "./conditions.ts";

export interface GatewayClassNode {
  gatewayClass: GatewayClass;
  accepted: boolean;
  conditions: ConditionSpec[];
}

/** The classes whose controllerName is ours, keyed by name. Other classes are ignored entirely. */
export function resolveGatewayClasses(
  snapshot: Snapshot,
  controllerName: string,
): Map<string, GatewayClassNode> {
  const nodes = new Map<string, GatewayClassNode>();
  for (const gc of snapshot.gatewayClasses.values()) {
    if (gc.spec.controllerName !== controllerName) continue;
    const conditions: ConditionSpec[] = [];
    const ref = gc.spec.parametersRef;
    if (ref !== undefined) {
      conditions.push(
        gatewayClassInvalidParameters(
          `spec.parametersRef: Gatehouse takes no GatewayClass parameters (got ${ref.group}/${ref.kind} ${ref.name}); remove parametersRef`,
        ),
      );
    } else {
      conditions.push(gatewayClassAccepted());
    }
    conditions.push(gatewayClassSupportedVersion());
    nodes.set(gc.metadata.name, { gatewayClass: gc, accepted: ref === undefined, conditions });
  }
  return nodes;
}
