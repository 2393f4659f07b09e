// CPU time and memory of our process groups, from /proc (Linux).
import { readdirSync, readFileSync } from "node:fs";
import { runSync } from "./proc.ts";

let ticksPerSecond: number | undefined;
function hz(): number {
  if (ticksPerSecond === undefined) {
    const n = Number(runSync("getconf", ["CLK_TCK"], 5000).stdout.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

export interface ProcInfo {
  pid: number;
  comm: string;
  pgrp: number;
  ppid: number;
  /** user + system CPU seconds. */
  cpuS: number;
  threads: number;
}

function readStat(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const open = stat.indexOf("(");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(open + 1, close);
    const f = stat.slice(close + 2).split(" ");
    // Fields after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) ... num_threads(17)
    return {
      pid,
      comm,
      ppid: Number(f[1]),
      pgrp: Number(f[2]),
      cpuS: (Number(f[11]) + Number(f[12])) / hz(),
      threads: Number(f[17]),
    };
  } catch {
    return undefined;
  }
}

/** Every process of a process group. */
export function groupProcesses(pgrp: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(Number(name));
    if (info !== undefined && info.pgrp === pgrp) out.push(info);
  }
  return out;
}

/**
 * Every descendant of a process (children, their children...), whatever their process group:
 * Gatehouse starts HAProxy in a group of its own, so groupProcesses(gatehouse) does not see it.
 */
export function descendants(pid: number): ProcInfo[] {
  const all: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = readStat(Number(name));
    if (info !== undefined) all.push(info);
  }
  const found = new Set([pid]);
  const out: ProcInfo[] = [];
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        out.push(p);
        grew = true;
      }
    }
  }
  return out;
}

/** CPU seconds used so far by the processes of a group, by command name. */
export function groupCpu(pgrp: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const p of groupProcesses(pgrp)) by.set(p.comm, (by.get(p.comm) ?? 0) + p.cpuS);
  return by;
}

/** `VmRSS` (or another /proc/<pid>/status field) in bytes; NaN when unreadable. */
export function statusBytes(pid: number, field = "VmRSS"): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? Number.NaN : Number(m[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total time of one CPU so far, in seconds (from /proc/stat). */
export function cpuTimes(cpu: number): { busyS: number; totalS: number } {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) return { busyS: Number.NaN, totalS: Number.NaN };
  // user nice system idle iowait irq softirq steal ...
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyS: busy / hz(), totalS: (busy + idle + iowait) / hz() };
}
