// The Helm chart (charts/gatehouse): `helm lint`, golden `helm template` output for each values file
// under charts/testdata (<case>.values.yaml → <case>.out.yaml), deploy/ generated from the default
// case, and values.schema.json rejecting bad values. Helm 4 comes from charts/helm.sh (built from
// its Go module, cached): without a built helm this suite is skipped, except in CI, where it fails.
// Goldens and deploy/ are rewritten only with GATEHOUSE_UPDATE_GOLDEN=1.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";

const ROOT = resolve(import.meta.dirname, "../..");
const CHART = join(ROOT, "charts", "gatehouse");
const TESTDATA = join(ROOT, "charts", "testdata");
const DEPLOY = join(ROOT, "deploy");
const UPDATE = process.env.GATEHOUSE_UPDATE_GOLDEN === "1";
const RELEASE = "gatehouse";
const NAMESPACE = "gatehouse-system";

function findHelm(): string | undefined {
  if (process.env.GATEHOUSE_HELM !== undefined) return process.env.GATEHOUSE_HELM;
  const args = process.env.CI === "true" ? [] : ["--cached-only"];
  const result = spawnSync("bash", [join(ROOT, "charts", "helm.sh"), ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

const helmBinary = findHelm();
if (helmBinary === undefined && process.env.CI === "true")
  throw new Error("charts/helm.sh could not build helm");
const skip = helmBinary === undefined ? "helm is not built (bash charts/helm.sh)" : false;

function helm(args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(helmBinary ?? "helm", args, { encoding: "utf8", cwd: ROOT });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The `token:` line of the admin token Secret the chart generates (48 random characters, base64). */
const GENERATED_TOKEN = /^( {2}token: )[A-Za-z0-9+/]{64}$/m;

function template(valuesFile: string, extra: readonly string[] = []): string {
  const result = helm([
    "template",
    RELEASE,
    CHART,
    "--namespace",
    NAMESPACE,
    "--values",
    valuesFile,
    ...extra,
  ]);
  assert.equal(result.status, 0, result.stderr);
  // The admin token the chart generates is random: goldens hold a placeholder (its shape is checked
  // by its own test).
  return result.stdout.replace(GENERATED_TOKEN, "$1<generated>");
}

const cases = readdirSync(TESTDATA)
  .filter((name) => name.endsWith(".values.yaml"))
  .map((name) => name.slice(0, -".values.yaml".length))
  .sort();

/** Compares `actual` with the golden file, or rewrites it under GATEHOUSE_UPDATE_GOLDEN=1. */
function golden(path: string, actual: string): void {
  if (UPDATE) {
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `${path} is missing: run with GATEHOUSE_UPDATE_GOLDEN=1`);
  assert.equal(actual, readFileSync(path, "utf8"), `${path} is stale: run with GATEHOUSE_UPDATE_GOLDEN=1`);
}

interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}
const docsOf = (text: string): Doc[] =>
  parseAllDocuments(text)
    .map((doc) => doc.toJS() as Doc | null)
    .filter((doc): doc is Doc => doc !== null);

interface PodSpec {
  hostNetwork?: boolean;
  securityContext: { runAsUser: number; runAsNonRoot: boolean; seccompProfile: { type: string } };
  containers: {
    image: string;
    args: string[];
    securityContext: {
      readOnlyRootFilesystem: boolean;
      allowPrivilegeEscalation: boolean;
      capabilities: { drop: string[]; add?: string[] };
    };
  }[];
}
function podSpec(text: string): PodSpec {
  const deployment = docsOf(text).find((doc) => doc.kind === "Deployment");
  assert.ok(deployment !== undefined);
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

/** deploy/<file> ← the chart templates rendered into it (default values). */
const DEPLOY_FILES: Record<string, string[]> = {
  "rbac.yaml": ["serviceaccount.yaml", "rbac.yaml"],
  "deployment.yaml": ["deployment.yaml"],
  "gatewayclass.yaml": ["gatewayclass.yaml"],
  "service.yaml": ["service.yaml", "distribution-service.yaml"],
  "pdb.yaml": ["pdb.yaml"],
};
/** Templates deploy/ leaves out on purpose: the token Secret is the user's (deploy/README.md). */
const NOT_DEPLOYED = ["admin-token.yaml"];
const DEPLOY_HEADER =
  "# Generated from charts/gatehouse with its default values (release gatehouse, namespace\n" +
  "# gatehouse-system) by test/image/chart.test.ts; do not edit: change the chart, then run\n" +
  "# GATEHOUSE_UPDATE_GOLDEN=1 node --test test/image/chart.test.ts\n";

function deployFiles(rendered: string): Map<string, string> {
  const byTemplate = new Map<string, string[]>();
  for (const part of rendered.split(/^---\n/m)) {
    const source = /^# Source: gatehouse\/templates\/(\S+)$/m.exec(part)?.[1];
    if (source === undefined) continue;
    const body = part.replace(/^# Source: .*\n/m, "").trim();
    if (body !== "") byTemplate.set(source, [...(byTemplate.get(source) ?? []), body]);
  }
  const files = new Map<string, string>();
  files.set(
    "namespace.yaml",
    `${DEPLOY_HEADER}apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${NAMESPACE}\n`,
  );
  for (const [file, templates] of Object.entries(DEPLOY_FILES)) {
    const bodies = templates.flatMap((name) => byTemplate.get(name) ?? []);
    assert.ok(bodies.length > 0, `nothing rendered for deploy/${file}`);
    files.set(file, `${DEPLOY_HEADER}${bodies.join("\n---\n")}\n`);
  }
  const mapped = new Set([...Object.values(DEPLOY_FILES).flat(), ...NOT_DEPLOYED]);
  const unmapped = [...byTemplate.keys()].filter((name) => !mapped.has(name));
  assert.deepEqual(unmapped, [], "every rendered template has its deploy/ file");
  // The chart's CRDs (Helm installs crds/ before the templates), verbatim.
  const crds = readdirSync(join(CHART, "crds"))
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => readFileSync(join(CHART, "crds", name), "utf8").trim());
  files.set("crds.yaml", `${DEPLOY_HEADER}${crds.join("\n---\n")}\n`);
  return files;
}

void describe("charts/gatehouse", { skip }, () => {
  void test("helm lint --strict passes with every values file", () => {
    for (const name of cases) {
      const result = helm(["lint", "--strict", CHART, "--values", join(TESTDATA, `${name}.values.yaml`)]);
      assert.equal(result.status, 0, `${name}: ${result.stdout}${result.stderr}`);
    }
  });

  for (const name of cases) {
    void test(`helm template matches the golden: ${name}`, () => {
      golden(join(TESTDATA, `${name}.out.yaml`), template(join(TESTDATA, `${name}.values.yaml`)));
    });
  }

  void test("the admin token: generated random (48 characters), or an existing Secret of yours", () => {
    const raw = helm(["template", RELEASE, CHART, "--namespace", NAMESPACE]);
    assert.equal(raw.status, 0, raw.stderr);
    const token = GENERATED_TOKEN.exec(raw.stdout)?.[0].trim().slice("token: ".length) ?? "";
    assert.match(Buffer.from(token, "base64").toString("utf8"), /^[A-Za-z0-9]{48}$/);
    const own = template(join(TESTDATA, "default.values.yaml"), ["--set", "admin.existingTokenSecret=mine"]);
    assert.doesNotMatch(own, /kind: Secret/);
    assert.match(own, /secretName: mine/);
    assert.match(own, /--admin-token-file=\/var\/run\/secrets\/gatehouse-admin\/token/);
  });

  void test("every golden has its values file", () => {
    for (const file of readdirSync(TESTDATA).filter((name) => name.endsWith(".out.yaml"))) {
      assert.ok(cases.includes(file.slice(0, -".out.yaml".length)), `${file} has no values file`);
    }
  });

  void test("deploy/ is the chart rendered with its default values", () => {
    const files = deployFiles(template(join(TESTDATA, "default.values.yaml")));
    const yamlIn = (dir: string): string[] => readdirSync(dir).filter((name) => /\.ya?ml$/.test(name));
    if (UPDATE) {
      for (const stale of yamlIn(DEPLOY).filter((name) => !files.has(name))) unlinkSync(join(DEPLOY, stale));
    }
    for (const [file, text] of files) golden(join(DEPLOY, file), text);
    assert.deepEqual(
      yamlIn(DEPLOY).sort(),
      [...files.keys()].sort(),
      "deploy/ holds exactly the generated files",
    );
  });

  void test("the default pod is restricted: non-root, read-only root, no capabilities, RuntimeDefault", () => {
    const pod = podSpec(template(join(TESTDATA, "default.values.yaml")));
    const container = pod.containers[0];
    assert.ok(container !== undefined);
    assert.equal(pod.hostNetwork, undefined);
    assert.deepEqual(
      { user: pod.securityContext.runAsUser, nonRoot: pod.securityContext.runAsNonRoot },
      { user: 65532, nonRoot: true },
    );
    assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"] });
    assert.equal(container.image, `gatehouse:${chartAppVersion()}`);
  });

  void test("hostNetwork adds only NET_BIND_SERVICE, through the image's haproxy-net-bind", () => {
    const pod = podSpec(template(join(TESTDATA, "host-network.values.yaml")));
    const container = pod.containers[0];
    assert.ok(container !== undefined);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(container.securityContext.capabilities, { drop: ["ALL"], add: ["NET_BIND_SERVICE"] });
    assert.ok(container.args.includes("--haproxy=/usr/lib/gatehouse/haproxy-net-bind"));
  });

  void test("values.schema.json rejects bad values", () => {
    for (const bad of [
      "logLevel=loud",
      "replicas=-1",
      "image.pullPolicy=Sometimes",
      "unknownKey=1",
      "addressPool=nope",
    ]) {
      const result = helm(["template", RELEASE, CHART, "--set", bad]);
      assert.notEqual(result.status, 0, `--set ${bad} was accepted`);
    }
  });

  void test("the CRD check stays out of the way of helm template", () => {
    const result = helm(["template", RELEASE, CHART, "--set", "gatewayAPI.checkCRDs=true"]);
    assert.equal(result.status, 0, result.stderr);
  });
});

function chartAppVersion(): string {
  const chart = readFileSync(join(CHART, "Chart.yaml"), "utf8");
  const version = /^appVersion:\s*"?([^"\n]+)"?$/m.exec(chart)?.[1];
  assert.ok(version !== undefined);
  const packageVersion = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string })
    .version;
  assert.equal(version, packageVersion, "Chart.yaml appVersion follows package.json");
  return version;
}
