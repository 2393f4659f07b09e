// Pieces shared by the conformance runs (run.ts: the Gateway API suite; inference.ts: the
// Inference Extension suite): the GatewayClass, the suite process with its log, the logs kept
// after a failure.
import { spawn } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isNotFound, type Kube } from "./minicluster/kube.ts";
import { waitFor } from "./minicluster/proc.ts";
import { controllerPodDirs } from "./chart.ts";

export const CONTROLLER_NAME = "gatehouse.dev/gateway-controller";

/** Creates GatewayClass `name` for Gatehouse (replacing one of another controller). */
export async function applyGatewayClass(kube: Kube, name: string): Promise<void> {
  const path = `/apis/gateway.networking.k8s.io/v1/gatewayclasses/${name}`;
  const body = {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "GatewayClass",
    metadata: { name },
    spec: { controllerName: CONTROLLER_NAME, description: "Gatehouse (conformance run)" },
  };
  try {
    const existing = await kube.request<{ spec: { controllerName: string } }>("GET", path);
    if (existing.spec.controllerName !== CONTROLLER_NAME) {
      await kube.request("DELETE", path);
      await waitFor(`GatewayClass ${name} deleted`, 30_000, async () => {
        try {
          await kube.request("GET", path);
          return undefined;
        } catch (error) {
          if (isNotFound(error)) return true;
          throw error;
        }
      });
      await kube.request("POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", body);
    }
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await kube.request("POST", "/apis/gateway.networking.k8s.io/v1/gatewayclasses", body);
  }
}

/** The last `lines` lines of a file, or "(no log)". */
export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/** Lines of `go test -v` output shown with --quiet. */
const RESULT_LINE = /^\s*--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok|FAIL)\b|panic:|Error Trace|Error:/;

/**
 * Runs a conformance suite (`go test ...` or a test binary) in its own process group; its output
 * goes to `logFile` and to the console (with `quiet`, only the result lines). Resolves with the
 * exit code (130 when killed by a signal).
 */
export function runSuite(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; logFile: string; quiet: boolean; children: Set<number> },
): Promise<number> {
  const out = createWriteStream(options.logFile);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    if (child.pid !== undefined) options.children.add(child.pid);
    let pending = "";
    const onData = (chunk: Buffer) => {
      out.write(chunk);
      if (!options.quiet) {
        process.stdout.write(chunk);
        return;
      }
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) if (RESULT_LINE.test(line)) process.stdout.write(`${line}\n`);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (child.pid !== undefined) options.children.delete(child.pid);
      out.end(() => resolve(code ?? (signal !== null ? 130 : 1)));
    });
  });
}

export function copyIfExists(from: string, to: string): void {
  if (existsSync(from)) cpSync(from, to, { recursive: true, dereference: false });
}

/**
 * Copies the mini-cluster's logs (controller, kubelet, control plane), the controller's state dir
 * and its Pods' logs and state into `logs` (after a failed run).
 */
export function keepLogs(runDir: string, logs: string): void {
  mkdirSync(logs, { recursive: true });
  for (const file of [
    "controller.log",
    "kubelet.log",
    "services.log",
    "kube-apiserver.log",
    "kube-controller-manager.log",
    "etcd.log",
  ]) {
    copyIfExists(join(runDir, "logs", file), join(logs, file));
  }
  copyIfExists(join(runDir, "ctl"), join(logs, "controller-state"));
  for (const [i, dir] of controllerPodDirs(runDir).entries()) {
    copyIfExists(join(dir, "logs"), join(logs, `controller-pod-${i}`, "logs"));
    copyIfExists(join(dir, "volumes", "state"), join(logs, `controller-pod-${i}`, "state"));
  }
}

/**
 * SIGINT/SIGTERM during a run: the suite's process groups (`children`, added by runSuite) get
 * SIGINT so that the suite stops and cleans up, and `interrupted` tells the run to tear down.
 */
export class Interruption {
  readonly children = new Set<number>();
  #interrupted = false;

  constructor(log: (line: string) => void) {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (this.#interrupted) return;
      this.#interrupted = true;
      log(`${signal}: stopping the suite, then tearing down`);
      for (const pid of this.children) {
        try {
          process.kill(-pid, "SIGINT");
        } catch {
          // gone
        }
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }

  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Throws when a signal came: the run's next step is not started. */
  check(): void {
    if (this.#interrupted) throw new Error("interrupted");
  }
}
