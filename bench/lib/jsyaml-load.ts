// The reference of the translate-10k bench: js-yaml's loadAll of a file, timed in-process (the file
// read first, not timed). Prints {"ms": wall, "cpuMs": user + system} as JSON.
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: jsyaml-load.ts FILE");
const text = readFileSync(file, "utf8");
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const docs = loadAll(text);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, documents: docs.length })}\n`,
);
