// Reading the official ConformanceReport (conformance/out/report.yaml) for the run's summary.
import { parse as parseYaml } from "yaml";

interface ReportStatus {
  result?: string;
  statistics?: { Passed?: number; Failed?: number; Skipped?: number };
  failedTests?: string[];
  skippedTests?: string[];
  supportedFeatures?: string[];
  unsupportedFeatures?: string[];
}

interface Report {
  implementation?: { organization?: string; project?: string; version?: string };
  gatewayAPIVersion?: string;
  gatewayAPIChannel?: string;
  mode?: string;
  profiles?: Array<{ name: string; core?: ReportStatus; extended?: ReportStatus }>;
  succeededProvisionalTests?: string[];
}

function statusLine(label: string, s: ReportStatus | undefined): string[] {
  if (s === undefined) return [];
  const st = s.statistics ?? {};
  const lines = [
    `    ${label}: ${s.result ?? "?"} (${st.Passed ?? 0} passed, ${st.Failed ?? 0} failed, ${st.Skipped ?? 0} skipped)`,
  ];
  if ((s.failedTests ?? []).length > 0) lines.push(`      failed: ${(s.failedTests ?? []).join(", ")}`);
  const skipped = s.skippedTests ?? [];
  if (skipped.length > 0) {
    const shown = skipped.slice(0, 12).join(", ");
    lines.push(
      `      skipped: ${shown}${skipped.length > 12 ? `, ... (${skipped.length - 12} more in the report)` : ""}`,
    );
  }
  if ((s.unsupportedFeatures ?? []).length > 0)
    lines.push(`      unsupported features: ${(s.unsupportedFeatures ?? []).join(", ")}`);
  return lines;
}

/**
 * Names of the conformance tests that failed according to `go test -v` output
 * (`--- FAIL: TestConformance/<name>`). The v1.6.1 suite counts a parallel test as passed in its
 * report whatever its outcome (t.Run returns as soon as the test calls t.Parallel), so the report
 * alone can hide failures.
 */
export function failedTests(output: string): string[] {
  const names = new Set<string>();
  for (const m of output.matchAll(/^\s*--- FAIL: TestConformance\/([^/\s]+) /gm)) names.add(m[1] ?? "");
  return [...names].filter((n) => n !== "").sort();
}

/** Tests still running when `go test -timeout` fired (listed after "panic: test timed out"). */
export function timedOutTests(output: string): string[] {
  const panic = output.indexOf("panic: test timed out");
  if (panic < 0) return [];
  const names = new Set<string>();
  for (const line of output.slice(panic).split("\n").slice(1)) {
    if (line.trim() === "running tests:") continue;
    const m = /^\s+TestConformance\/([^/\s]+)(\/\S+)? \(/.exec(line);
    if (m === null) break;
    names.add(m[1] ?? "");
  }
  return [...names].filter((n) => n !== "").sort();
}

/** Every test name the report lists as failed. */
function reportedFailures(report: Report): Set<string> {
  const names = new Set<string>();
  for (const p of report.profiles ?? []) {
    for (const n of [...(p.core?.failedTests ?? []), ...(p.extended?.failedTests ?? [])]) names.add(n);
  }
  return names;
}

/**
 * A per-profile summary of a ConformanceReport; `failedInOutput` (from failedTests) adds the
 * failures the report does not show.
 */
export function summarizeReport(
  text: string,
  failedInOutput: readonly string[] = [],
  timedOut: readonly string[] = [],
): string {
  const report = parseYaml(text) as Report;
  const impl = report.implementation ?? {};
  const lines = [
    `Conformance report: ${impl.organization ?? "?"}/${impl.project ?? "?"} ${impl.version ?? "?"}, Gateway API ${report.gatewayAPIVersion ?? "?"} (${report.gatewayAPIChannel ?? "?"}), mode ${report.mode ?? "?"}`,
  ];
  const profiles = [...(report.profiles ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  if (profiles.length === 0) lines.push("  (no profile results)");
  for (const p of profiles) {
    lines.push(`  ${p.name}`, ...statusLine("core", p.core), ...statusLine("extended", p.extended));
  }
  if ((report.succeededProvisionalTests ?? []).length > 0) {
    lines.push(`  provisional tests passed: ${(report.succeededProvisionalTests ?? []).join(", ")}`);
  }
  const reported = reportedFailures(report);
  const hidden = failedInOutput.filter((n) => !reported.has(n));
  if (hidden.length > 0) {
    lines.push(
      `  FAILED in the go test output but not in the report (parallel tests, counted as passed by the suite): ${hidden.join(", ")}`,
    );
  }
  if (timedOut.length > 0) {
    lines.push(
      `  TIMED OUT (go test -timeout) while running: ${timedOut.join(", ")}; tests after them did not run`,
    );
  }
  return `${lines.join("\n")}\n`;
}
