// The external tools a bench run needs, checked (and installed from Debian when missing and we are
// root): haproxy (the data plane Gatehouse drives), nginx (backend and reference proxy), wrk (load),
// taskset (CPU pinning). Versions are recorded in the results.
import { runSync } from "./proc.ts";

interface Tool {
  command: string;
  versionArgs: string[];
  /** Debian package providing it. */
  pkg: string;
}

const TOOLS: Tool[] = [
  { command: "haproxy", versionArgs: ["-v"], pkg: "haproxy" },
  { command: "nginx", versionArgs: ["-v"], pkg: "nginx" },
  { command: "wrk", versionArgs: ["-v"], pkg: "wrk" },
  { command: "taskset", versionArgs: ["-V"], pkg: "util-linux" },
];

function present(tool: Tool): boolean {
  return runSync("sh", ["-c", `command -v ${tool.command}`], 10_000).status === 0;
}

function version(tool: Tool): string {
  const r = runSync(tool.command, tool.versionArgs, 10_000);
  // wrk -v exits 1; nginx -v prints on stderr.
  const text = `${r.stdout}\n${r.stderr}`.split("\n").find((line) => line.trim() !== "") ?? "";
  return text.trim();
}

/** Makes sure every tool is there (installing with apt-get if needed) and returns their versions. */
export function ensureTools(log: (line: string) => void = () => undefined): Record<string, string> {
  const missing = TOOLS.filter((t) => !present(t));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => t.pkg))];
    if (process.getuid?.() !== 0)
      throw new Error(
        `missing tools: ${missing.map((t) => t.command).join(", ")}; install: apt-get install ${pkgs.join(" ")}`,
      );
    log(`installing ${pkgs.join(" ")} with apt-get`);
    const env = ["env", "DEBIAN_FRONTEND=noninteractive"];
    let r = runSync(
      env[0] ?? "env",
      [...env.slice(1), "apt-get", "install", "-y", "--no-install-recommends", ...pkgs],
      600_000,
    );
    if (r.status !== 0) {
      runSync("env", [...env.slice(1), "apt-get", "update"], 600_000);
      r = runSync(
        "env",
        [...env.slice(1), "apt-get", "install", "-y", "--no-install-recommends", ...pkgs],
        600_000,
      );
    }
    const still = TOOLS.filter((t) => !present(t));
    if (still.length > 0)
      throw new Error(`could not install ${still.map((t) => t.command).join(", ")}: ${r.stderr.slice(-500)}`);
  }
  const versions: Record<string, string> = {};
  for (const tool of TOOLS) versions[tool.command] = version(tool);
  return versions;
}
