/** The table the bench prints: figure, value, floor, ratio, target, pass/MISS. */
import type { Figure } from './parts/context';

const fmt = (v: number, unit: string) =>
  Number.isFinite(v)
    ? `${Number.isInteger(v) ? v : v.toFixed(unit === 'ms' || unit === 'MB' ? 1 : 2)} ${unit}`.trim()
    : 'n/a';

export function renderTable(figures: Figure[]): string {
  const rows = [
    ['figure', 'value', 'floor', 'ratio', 'target', 'result'],
    ...figures.map((f) => [
      f.label,
      fmt(f.value, f.unit),
      f.floor ? `${fmt(f.floor.value, f.unit)} (${f.floor.label})` : '',
      f.ratio !== undefined ? `${f.ratio.toFixed(2)}×` : '',
      f.target ?? '',
      f.pass === undefined ? '' : f.pass ? 'pass' : 'MISS',
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (c === 1 || c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
