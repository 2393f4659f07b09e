// `npm run example`: starts the example's two backends and runs `gatehouse serve` on examples/basic.
// Try: curl -H 'Host: app.localhost' http://127.0.0.1:8080/api/hello
import { spawn } from "node:child_process";
import { join } from "node:path";
import { startExampleBackends } from "../examples/basic/backends.ts";

const root = join(import.meta.dirname, "..");
const stopBackends = await startExampleBackends();
process.stderr.write(
  "example backends on 127.0.0.1:9001 (api) and 127.0.0.1:9002 (frontend)\n" +
    "try:  curl -H 'Host: app.localhost' http://127.0.0.1:8080/api/hello\n" +
    "      curl http://127.0.0.1:9901/status\n",
);
const child = spawn(
  process.execPath,
  [
    join(root, "bin", "gatehouse.js"),
    "serve",
    "--config",
    join(root, "examples", "basic"),
    "--log-format",
    "text",
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
const code = await new Promise<number>((done) => child.on("exit", (c) => done(c ?? 1)));
await stopBackends();
process.exit(code);
