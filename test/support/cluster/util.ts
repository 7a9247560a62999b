/** Small helpers shared by the simulator's actors. */
import { randomBytes } from 'node:crypto';
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Condition } from './types';

export const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function rand(n: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...randomBytes(n)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** Lower-case hex, as upstream's generateRandomSuffix (`%x` of 4 random bytes). */
export function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A metav1.Time as Go serialises it: RFC 3339 in UTC, whole seconds. */
export function metaTime(ms: number = Date.now()): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/** Go's time.Duration.String() for a millisecond duration (e.g. `10m0.512s`, `3.2s`, `150ms`). */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = ((ms % 60_000) / 1000).toFixed(3).replace(/\.?0+$/, '');
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s}s`;
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

export const isNotFound = (err: unknown) => statusOf(err) === 404;
export const isConflict = (err: unknown) => statusOf(err) === 409;

/** An apiserver error as client-go prints it (its status message), else the error's message. */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const raw: unknown = err.body;
    let body = raw;
    if (typeof raw === 'string') {
      try {
        body = JSON.parse(raw);
      } catch {
        return raw || `HTTP ${err.code}`;
      }
    }
    const message = (body as { message?: unknown } | undefined)?.message;
    return typeof message === 'string' ? message : `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** vX.Y.Z → [X, Y], or undefined. */
export function majorMinor(version: string | undefined): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?/.exec(version ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The JSON merge patch from `before` to `after` (what controller-runtime's `client.MergeFrom` sends): changed
 * keys, `null` for removed ones, arrays whole. Undefined when nothing changed.
 */
export function mergeDiff(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const a = before ?? {};
  const b = after ?? {};
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const va = a[key];
    const vb = b[key];
    if (vb === undefined) {
      if (va !== undefined) patch[key] = null;
    } else if (isPlain(va) && isPlain(vb)) {
      const sub = mergeDiff(va, vb);
      if (sub) patch[key] = sub;
    } else if (!same(va, vb)) {
      patch[key] = vb;
    }
  }
  return Object.keys(patch).length ? patch : undefined;
}

/**
 * Sets one condition as upstream's SetCondition does: `lastUpdateTime` always now, `lastTransitionTime` only
 * when the status changes; empty reason and message are left out (Go's omitempty).
 */
export function setCondition(
  conditions: Condition[] | undefined,
  type: string,
  status: string,
  reason: string,
  message: string,
  now: number = Date.now(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === type);
  const prev = i >= 0 ? list[i] : undefined;
  const t = metaTime(now);
  const next: Condition = {
    type,
    status,
    lastTransitionTime:
      prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : t,
    lastUpdateTime: t,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function conditionOf(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return (conditions ?? []).find((c) => c.type === type);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
