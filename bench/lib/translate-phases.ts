// `gatehouse translate` phase by phase in one process, as src/cli/translate.ts runs them: module
// loading, read, parse + validate (parseDocuments), snapshot, translate, JSON output (redacted, as
// the command prints it), each timed (wall ms). Prints JSON.
const t0 = performance.now();
const { readFileSync } = await import("node:fs");
const { parseDocuments } = await import("../../src/resources/load.ts");
const { buildSnapshot } = await import("../../src/resources/snapshot.ts");
const { translate } = await import("../../src/translate/index.ts");
const { haproxyValidators } = await import("../../src/dataplane/haproxy/capabilities.ts");
const { redactIR, redactText } = await import("../../src/admin/redact.ts");
const { loadAll } = await import("js-yaml");

const file = process.argv[2];
if (file === undefined) throw new Error("usage: translate-phases.ts FILE");
const phases: Record<string, number> = {};
let t = performance.now();
phases["modules"] = t - t0;
const lap = (name: string): void => {
  const now = performance.now();
  phases[name] = now - t;
  t = now;
};
const text = readFileSync(file, "utf8");
lap("read");
const parsed = parseDocuments(text, file);
lap("parse+validate");
const { snapshot } = buildSnapshot(parsed.objects);
lap("snapshot");
const { statuses, ir } = translate(snapshot, {
  controllerName: "gatehouse.dev/gateway-controller",
  now: "2025-01-01T00:00:00Z",
  validators: haproxyValidators,
});
lap("translate");
const out = `${redactText(JSON.stringify({ statuses, ir: redactIR(ir) }, null, 2))}\n`;
lap("json");
// The reference in the same process, after the rest (warm, like the parse above).
loadAll(text);
lap("js-yaml loadAll (same process)");
process.stdout.write(
  `${JSON.stringify({ phases, outputBytes: out.length, errors: parsed.errors.length })}\n`,
);
