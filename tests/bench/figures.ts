/**
 * How the runner's figures are summed up and written: the median of runs, counts, rates,
 * MiB and ratios as the tables show them, and a Markdown table.
 *
 * @module
 */

/** The median of `values`, or `undefined` when there are none. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A count rounded, with thousands separators. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** A rate as a count, or a dash when there is none. */
export function formatRate(value: number | undefined): string {
  return value === undefined ? "–" : formatCount(value);
}

/** kB as MiB with one decimal, or a dash when unknown. */
export function formatMiB(kb: number | undefined): string {
  return kb === undefined ? "–" : `${(kb / 1024).toFixed(1)} MiB`;
}

/** A ratio with two decimals, `≥` before it when it is only a lower bound. */
export function formatRatio(
  ratio: number | undefined,
  lowerBound = false,
): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return "–";
  return `${lowerBound ? "≥ " : ""}${ratio.toFixed(2)}×`;
}

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  const lines = [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
  return lines.join("\n");
}
