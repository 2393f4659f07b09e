// ReferenceGrant: may an object in one namespace refer to an object in another?
// Spec (ReferenceGrant): "ReferenceGrant identifies kinds of resources in other namespaces that are
// trusted to reference the specified kinds of resources in the same namespace as the policy."
import type { ReferenceGrant } from "../resources/generated/types.ts";
import type { ObjectMap } from "../resources/snapshot.ts";

export interface ReferenceFrom {
  group: string;
  kind: string;
  namespace: string;
}

export interface ReferenceTo {
  group: string;
  kind: string;
  namespace: string;
  name: string;
}

/** True when the reference stays in its namespace, or a ReferenceGrant in the target namespace allows it. */
export function referenceAllowed(
  grants: ObjectMap<ReferenceGrant>,
  from: ReferenceFrom,
  to: ReferenceTo,
): boolean {
  if (from.namespace === to.namespace) return true;
  for (const grant of grants.values()) {
    if (grant.metadata.namespace !== to.namespace) continue;
    const fromOk = grant.spec.from.some(
      (f) => f.group === from.group && f.kind === from.kind && f.namespace === from.namespace,
    );
    if (!fromOk) continue;
    const toOk = grant.spec.to.some(
      (t) =>
        t.group === to.group &&
        t.kind === to.kind &&
        (t.name === undefined || t.name === "" || t.name === to.name),
    );
    if (toOk) return true;
  }
  return false;
}
