// Number formatting for the Markdown tables.

/** `n` with `digits` decimals; "—" for NaN, infinities and undefined (a figure that was not measured). */
export function fixed(n: number | undefined, digits = 0): string {
  return n !== undefined && Number.isFinite(n) ? n.toFixed(digits) : "—";
}
