// Gateway API Duration (GEP-2257): "^([0-9]{1,5}(h|m|s|ms)){1,4}$", e.g. "1h30m", "500ms", "0s".

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Milliseconds of a Gateway API Duration, or undefined when the string is not one. */
export function parseDuration(value: string): number | undefined {
  if (!/^([0-9]{1,5}(h|m|s|ms)){1,4}$/.test(value)) return undefined;
  let total = 0;
  for (const m of value.matchAll(/([0-9]{1,5})(ms|h|m|s)/g))
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
  return total;
}
