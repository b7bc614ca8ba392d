// Figures every benchmark prints: nearest-rank percentiles and rounding.

/** The nearest-rank p-th percentile (NaN for no samples). */
export function pct(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const r1 = (x: number) => Math.round(x * 10) / 10;
export const r2 = (x: number) => Math.round(x * 100) / 100;
export const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Count, p50, p90, p95, p99 and max of `xs`, rounded with `round` (2 decimals by default). */
export function summary(xs: readonly number[], round: (x: number) => number = r2) {
  return {
    n: xs.length, p50: round(pct(xs, 50)), p90: round(pct(xs, 90)), p95: round(pct(xs, 95)), p99: round(pct(xs, 99)),
    max: round(xs.length ? Math.max(...xs) : NaN),
  };
}
export type Summary = ReturnType<typeof summary>;
