/**
 * Defensive readers for objects as the API server returns them: a field of the wrong type reads as absent
 * instead of throwing, because the controller (and its CRDs) may be newer or older than this project.
 */
import type { Condition } from './types';

export type Json = Record<string, unknown>;

export function obj(v: unknown): Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

export function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return null;
}

export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

/**
 * A timestamp as ISO 8601 text. Custom objects arrive as JSON (strings, kept verbatim); client-node's typed APIs
 * turn date-time fields into Date objects, written back the way the API server writes them (no .000).
 */
export function time(v: unknown): string | null {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString().replace('.000Z', 'Z');
  return str(v);
}

export function conditions(v: unknown): Condition[] {
  if (!Array.isArray(v)) return [];
  return v
    .map(obj)
    .filter((c) => typeof c.type === 'string')
    .map((c) => {
      const since = time(c.lastTransitionTime);
      const updated = time(c.lastUpdateTime);
      return {
        type: c.type as string,
        status: typeof c.status === 'string' ? c.status : 'Unknown',
        ...(str(c.reason) ? { reason: str(c.reason) as string } : {}),
        ...(str(c.message) ? { message: str(c.message) as string } : {}),
        ...(since ? { lastTransitionTime: since } : {}),
        ...(updated ? { lastUpdateTime: updated } : {}),
      };
    });
}

/** name/namespace/uid/resourceVersion of a namespaced object, or an error naming the kind. */
export function identity(kind: string, metadata: Json) {
  const name = str(metadata.name);
  const namespace = str(metadata.namespace);
  if (!name || !namespace) throw new Error(`${kind} object has no metadata.name or metadata.namespace`);
  return {
    namespace,
    name,
    uid: str(metadata.uid) ?? '',
    resourceVersion: str(metadata.resourceVersion) ?? '',
  };
}
