// Serve-loop phases at N routes (default 1,000), measured in-process against a real HAProxy: the
// input is N route files (one HTTPRoute + its own Service each, as in propagation.ts); then, S times,
// one more route is added either with its own new Service (`route+service`) or to an existing
// Service (`route-only`), and each phase of taking it to HAProxy is timed: load (the file provider's
// incremental reload of the one file written, as `gatehouse serve` does it), translate (incremental,
// as the serve loop does it; `--full` translates from scratch each time instead), checkRenderable
// (the serve loop's renderability check), and the applier's own phases (render, plan, runtime API,
// files, `haproxy -c`, reload).
//
//   node bench/apply-phases.ts [--routes 1000] [--samples 10] [--spares 16] [--full]
//
// Prints one table per change kind (median and max per phase, ms). Needs `haproxy` on PATH.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HAProxyApplier, type ApplyOutcome } from "../src/dataplane/haproxy/apply/applier.ts";
import { nodeFileWriter } from "../src/dataplane/haproxy/apply/files.ts";
import { findHAProxy, HAProxyProcess } from "../src/dataplane/haproxy/process/manager.ts";
import { checkRenderable, type RenderOptions } from "../src/dataplane/haproxy/render/index.ts";
import { workerRuntimeApi } from "../src/dataplane/haproxy/runtime/socket.ts";
import { FileIndex } from "../src/resources/file-index.ts";
import { IncrementalTranslator } from "../src/translate/incremental.ts";
import { translate } from "../src/translate/index.ts";
import { freePort } from "./lib/net.ts";
import { gatewayYaml, numberedRoute, routeWithServiceYaml, routeYaml, CONTROLLER } from "./lib/gatehouse.ts";
import { haproxyValidators } from "../src/dataplane/haproxy/capabilities.ts";

const { values } = parseArgs({
  options: {
    routes: { type: "string", default: "1000" },
    samples: { type: "string", default: "10" },
    spares: { type: "string", default: "16" },
    full: { type: "boolean", default: false },
  },
});
const ROUTES = Number(values.routes);
const SAMPLES = Number(values.samples);
const SPARES = Number(values.spares);

const root = await mkdtemp(join(tmpdir(), "gh-phases-"));
const configDir = join(root, "config");
const stateDir = join(root, "state");
const masterSocket = join(stateDir, "master.sock");
const haproxy = new HAProxyProcess({ masterSocket, binary: findHAProxy("haproxy") });

try {
  await nodeFileWriter.mkdir(configDir);
  await nodeFileWriter.mkdir(stateDir);
  const port = await freePort();
  await writeFile(join(configDir, "gateway.yaml"), gatewayYaml(port));
  for (let i = 0; i < ROUTES; i++)
    await writeFile(
      join(configDir, `r${i}.yaml`),
      routeWithServiceYaml(numberedRoute("r", i), "127.0.0.1:9"),
    );

  const render: Omit<RenderOptions, "stateDir"> = {
    runtimeSocket: join(stateDir, "haproxy.sock"),
    serverSlots: 16,
    hardStopAfter: "10s",
    spareBackends: SPARES,
  };
  const applier = new HAProxyApplier({
    stateDir,
    process: haproxy,
    runtime: workerRuntimeApi(masterSocket),
    files: nodeFileWriter,
    render,
  });

  const index = new FileIndex(configDir);
  const translator = new IncrementalTranslator();
  const options = { controllerName: CONTROLLER, now: "2026-01-01T00:00:00Z", validators: haproxyValidators };
  /** `written`: the file just written (undefined: load everything). */
  const step = async (
    written?: string,
  ): Promise<{ outcome: ApplyOutcome; phases: Record<string, number> }> => {
    const tl = performance.now();
    const loaded = written === undefined ? await index.reload() : await index.refresh([written]);
    if (loaded === undefined) throw new Error("the file index could not follow the change");
    const { snapshot } = loaded;
    const t0 = performance.now();
    const { ir } = values.full ? translate(snapshot, options) : translator.update(snapshot, options);
    const t1 = performance.now();
    const issues = checkRenderable(ir, { ...render, stateDir });
    if (issues.length > 0) throw new Error(`not renderable: ${issues[0]?.message ?? ""}`);
    const t2 = performance.now();
    const outcome = await applier.apply(ir);
    const t3 = performance.now();
    return {
      outcome,
      phases: {
        load: t0 - tl,
        translate: t1 - t0,
        check: t2 - t1,
        ...(outcome.durationsMs ?? {}),
        apply: t3 - t2,
        total: t3 - tl,
      },
    };
  };

  const first = await step();
  console.log(`start: ${first.outcome.method} in ${Math.round(first.phases["total"] ?? 0)} ms`);

  for (const kind of ["route+service", "route-only"] as const) {
    const rows: Array<Record<string, number>> = [];
    const methods = new Map<string, number>();
    for (let s = 0; s < SAMPLES; s++) {
      const r = numberedRoute(kind === "route-only" ? "o" : "n", s);
      const text =
        kind === "route-only"
          ? routeYaml({ ...r, service: numberedRoute("r", s).service })
          : routeWithServiceYaml(r, "127.0.0.1:9");
      const file = `${kind === "route-only" ? "o" : "n"}${s}.yaml`;
      await writeFile(join(configDir, file), text);
      const { outcome, phases } = await step(file);
      methods.set(outcome.method, (methods.get(outcome.method) ?? 0) + 1);
      rows.push(phases);
    }
    const names = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    console.log(
      `\n${kind} at ${ROUTES} routes, ${SAMPLES} samples, applied via ${[...methods].map(([m, n]) => `${m} ×${n}`).join(", ")}`,
    );
    console.log("| phase | median ms | max ms |\n| --- | ---: | ---: |");
    for (const name of names) {
      const v = rows.map((r) => r[name] ?? 0).sort((a, b) => a - b);
      const median = v[Math.floor(v.length / 2)] ?? 0;
      console.log(`| ${name} | ${median.toFixed(1)} | ${(v[v.length - 1] ?? 0).toFixed(1)} |`);
    }
  }
} finally {
  await haproxy.stop({ graceful: false, timeoutMs: 2000 }).catch(() => undefined);
  await rm(root, { recursive: true, force: true });
}
