/** A duration as callers write it: milliseconds, or text such as "90s", "10m", "1h30m", "500ms", "2 minutes". */
export type DurationInput = number | string;

const UNIT_MS: Record<string, number> = {
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
};

/**
 * Parses a duration to milliseconds, or throws an Error naming `what` and the value. Pure and deterministic, so
 * workflows use it to validate their own input.
 */
export function parseDuration(value: unknown, what: string): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value > 0) return Math.round(value);
    throw new Error(`${what} must be a positive duration, got ${value}`);
  }
  if (typeof value !== 'string' || value.trim() === '') {
    throw new Error(`${what} must be a duration such as "90s" or "10m", got ${JSON.stringify(value)}`);
  }
  const text = value.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return parseDuration(Number(text), what);
  const part = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/g;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m !== null; m = part.exec(text)) {
    if (m.index !== consumed) break;
    const unit = UNIT_MS[m[2]];
    if (unit === undefined) throw new Error(`${what}: unknown unit "${m[2]}" in ${JSON.stringify(value)}`);
    total += Number(m[1]) * unit;
    consumed = part.lastIndex;
  }
  if (consumed !== text.length || total <= 0) {
    throw new Error(`${what} must be a duration such as "90s" or "10m", got ${JSON.stringify(value)}`);
  }
  return Math.round(total);
}

/** "1h 5m", "90s", "250ms": short and readable, for status and logs. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.round(ms / 1000);
  const parts: string[] = [];
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}m`);
  if (sec || parts.length === 0) parts.push(`${sec}s`);
  return parts.join(' ');
}
