// Preloaded (--import) into a measured child: at exit, its own resource usage (CPU time, peak RSS)
// is written as JSON to the file named by GATEHOUSE_BENCH_RUSAGE.
import { writeFileSync } from "node:fs";

const out = process.env["GATEHOUSE_BENCH_RUSAGE"];
if (out !== undefined && out !== "") {
  process.on("exit", () => {
    const r = process.resourceUsage();
    writeFileSync(
      out,
      JSON.stringify({ userUs: r.userCPUTime, systemUs: r.systemCPUTime, maxRssKiB: r.maxRSS }),
    );
  });
}
