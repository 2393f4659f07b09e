// GatewayClass: which classes are ours, and their status.
import type { GatehouseProxySpec } from "../resources/gatehouseproxy.ts";
import type { GatewayClass } from "../resources/generated/types.ts";
import type { Snapshot } from "../resources/snapshot.ts";
import {
  gatewayClassAccepted,
  gatewayClassInvalidParameters,
  gatewayClassSupportedVersion,
  type ConditionSpec,
} from "./conditions.ts";
import type { Infrastructure } from "./options.ts";
import { classParameters } from "./parameters.ts";

export interface GatewayClassNode {
  gatewayClass: GatewayClass;
  accepted: boolean;
  conditions: ConditionSpec[];
  /** Its GatehouseProxy's spec (infrastructure "kubernetes"; empty without parametersRef). */
  parameters: GatehouseProxySpec;
}

/** The classes whose controllerName is ours, keyed by name. Other classes are ignored entirely. */
export function resolveGatewayClasses(
  snapshot: Snapshot,
  controllerName: string,
  infrastructure: Infrastructure = "host",
): Map<string, GatewayClassNode> {
  const nodes = new Map<string, GatewayClassNode>();
  for (const gc of snapshot.gatewayClasses.values()) {
    if (gc.spec.controllerName !== controllerName) continue;
    const conditions: ConditionSpec[] = [];
    const ref = gc.spec.parametersRef;
    let accepted = true;
    let parameters: GatehouseProxySpec = {};
    if (ref !== undefined && infrastructure === "host") {
      accepted = false;
      conditions.push(
        gatewayClassInvalidParameters(
          `spec.parametersRef: Gatehouse takes no GatewayClass parameters (got ${ref.group}/${ref.kind} ${ref.name}); remove parametersRef`,
        ),
      );
    } else {
      const resolved = classParameters(snapshot, gc);
      if (resolved.ok) {
        parameters = resolved.spec;
        conditions.push(gatewayClassAccepted());
      } else {
        accepted = false;
        conditions.push(gatewayClassInvalidParameters(resolved.message));
      }
    }
    conditions.push(gatewayClassSupportedVersion());
    nodes.set(gc.metadata.name, { gatewayClass: gc, accepted, conditions, parameters });
  }
  return nodes;
}
