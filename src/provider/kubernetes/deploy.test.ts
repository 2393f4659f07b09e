// The manifests under deploy/: they parse, the Gateway API ones validate, and the RBAC rules grant
// exactly what the controller uses (compared with the lists the provider and status writer use).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { parseControllerArgs } from "../../cli/controller.ts";
import { parseDocuments } from "../../resources/load.ts";
import { DEFAULT_LEASE_NAME } from "../../status/leader.ts";
import { infrastructurePermissions, LEASE_RESOURCE, permissions } from "./resources.ts";

const DEPLOY = resolve(dirname(fileURLToPath(import.meta.url)), "../../../deploy");

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}
interface Rule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}

/** Rules as `scope group/resource verb [name]` lines, one per grant. */
function grants(scope: string, rules: readonly Rule[]): string[] {
  const out: string[] = [];
  for (const r of rules)
    for (const g of r.apiGroups ?? [])
      for (const res of r.resources ?? [])
        for (const v of r.verbs)
          for (const name of r.resourceNames ?? ["*"])
            out.push(`${scope} ${g || "core"}/${res} ${v} ${name}`);
  return out.sort();
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

const manifests = files(DEPLOY);
const docs: Doc[] = manifests.flatMap((file) =>
  parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS() as Doc),
);
const find = (kind: string, name?: string): Doc[] =>
  docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));

/** Verbs the rules grant on group/resource. */
function granted(rules: readonly Rule[], group: string, resource: string): Set<string> {
  const verbs = new Set<string>();
  for (const r of rules) {
    if ((r.apiGroups ?? []).includes(group) && (r.resources ?? []).includes(resource))
      for (const v of r.verbs) verbs.add(v);
  }
  return verbs;
}

describe("deploy/ manifests", () => {
  test("there are manifests, and every document parses with apiVersion, kind and a name", () => {
    assert.ok(manifests.length >= 4, manifests.join(", "));
    for (const file of manifests) {
      for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
        assert.deepEqual(doc.errors, [], file);
        const obj = doc.toJS() as Partial<Doc>;
        assert.ok(typeof obj.apiVersion === "string" && typeof obj.kind === "string", file);
        assert.ok(typeof obj.metadata?.name === "string", `${file}: ${obj.kind} without a name`);
      }
    }
  });

  test("the project's loader accepts every file (Gateway API kinds validated against the v1.6.1 schemas)", () => {
    for (const file of manifests) {
      const result = parseDocuments(readFileSync(file, "utf8"), file);
      assert.deepEqual(result.errors.map(String), [], file);
    }
    const classes = files(DEPLOY)
      .flatMap((file) => parseDocuments(readFileSync(file, "utf8"), file).objects)
      .filter((o) => o.object.kind === "GatewayClass");
    assert.equal(classes.length, 1, "a GatewayClass example");
    assert.equal(
      (classes[0]?.object as { spec?: { controllerName?: string } }).spec?.controllerName,
      parseControllerArgs([]).controllerName,
      "the example GatewayClass names the controller's default controllerName",
    );
  });

  const clusterRole = find("ClusterRole", "gatehouse-controller")[0];
  const rules = (clusterRole?.["rules"] ?? []) as Rule[];

  test("the ClusterRole and the lease Role grant exactly what the controller uses (resources.ts), no wildcards", () => {
    assert.ok(clusterRole !== undefined);
    const leaseRole = find("Role", "gatehouse-leader-election")[0];
    assert.ok(leaseRole !== undefined);
    const deployment = find("Deployment", "gatehouse-controller")[0];
    const args = parseControllerArgs(
      (
        (
          deployment?.["spec"] as
            { template: { spec: { containers: Array<{ args: string[] }> } } } | undefined
        )?.template.spec.containers[0]?.args ?? []
      ).slice(1),
    );
    const needed = [
      ...permissions(DEFAULT_LEASE_NAME),
      ...(args.infrastructure === "kubernetes" ? infrastructurePermissions() : []),
    ];
    const expected = [
      ...new Set(
        needed.flatMap((p) =>
          p.verbs.flatMap((v) =>
            (p.names ?? ["*"]).map((n) => `${p.scope} ${p.group || "core"}/${p.resource} ${v} ${n}`),
          ),
        ),
      ),
    ].sort();
    const actual = [
      ...new Set([...grants("cluster", rules), ...grants("lease", (leaseRole["rules"] ?? []) as Rule[])]),
    ].sort();
    assert.deepEqual(actual, expected);
    for (const rule of [...rules, ...((leaseRole["rules"] ?? []) as Rule[])])
      assert.ok(
        !rule.verbs.includes("*") &&
          !(rule.resources ?? []).includes("*") &&
          !(rule.apiGroups ?? []).includes("*"),
      );
  });

  test("leader election: leases in the Deployment's lease namespace only, get/update by name, for its ServiceAccount", () => {
    const deployment = find("Deployment", "gatehouse-controller")[0];
    assert.ok(deployment !== undefined);
    const pod = (
      deployment["spec"] as {
        template: { spec: { serviceAccountName: string; containers: Array<{ args: string[] }> } };
      }
    ).template.spec;
    const args = parseControllerArgs((pod.containers[0]?.args ?? []).slice(1));
    assert.equal(pod.containers[0]?.args[0], "controller");
    assert.ok(args.leaderElect);
    const namespace = args.leaseNamespace;
    assert.ok(namespace !== undefined);
    const role = find("Role").find(
      (r) => granted((r["rules"] ?? []) as Rule[], LEASE_RESOURCE.group, LEASE_RESOURCE.plural).size > 0,
    );
    assert.ok(role !== undefined, "a Role for leases");
    assert.equal(role.metadata.namespace, namespace);
    const verbs = granted(role["rules"] as Rule[], LEASE_RESOURCE.group, LEASE_RESOURCE.plural);
    assert.deepEqual([...verbs].sort(), ["create", "get", "update"]);
    const named = (role["rules"] as Rule[]).filter((r) => r.resourceNames !== undefined);
    assert.deepEqual(
      named.map((r) => r.resourceNames),
      [[args.leaseName]],
      "get/update only on the Lease the Deployment uses",
    );
    const sa = {
      kind: "ServiceAccount",
      name: pod.serviceAccountName,
      namespace: deployment.metadata.namespace,
    };
    assert.equal(find("ServiceAccount", sa.name)[0]?.metadata.namespace, sa.namespace);
    const binds = (kind: string, roleKind: string, roleName: string) =>
      find(kind).some(
        (b) =>
          (b["roleRef"] as { kind: string; name: string }).kind === roleKind &&
          (b["roleRef"] as { name: string }).name === roleName &&
          (b["subjects"] as Array<Record<string, string>>).some(
            (s) => s["kind"] === sa.kind && s["name"] === sa.name && s["namespace"] === sa.namespace,
          ),
      );
    assert.ok(binds("ClusterRoleBinding", "ClusterRole", "gatehouse-controller"));
    assert.ok(binds("RoleBinding", "Role", role.metadata.name));
    assert.ok(find("Namespace", namespace).length === 1, "the namespace is created too");
  });
});
