/**
 * When a controller reconciles an object, as controller-runtime's informer + workqueue decide it: on a watch
 * event (the object's resourceVersion changed, its own writes included), on the requeue its last reconcile
 * asked for, after an error with per-object exponential backoff (`Requeue: true` counts as one too), and at
 * the manager's resync period. One reconcile per object at a time.
 */
import type { ReconcileTrigger, SimTimings } from './types';

/** What a reconcile returns: `requeue` (rate-limited, at once), `after` ms, or an error (backoff). */
export interface Result {
  requeue?: boolean;
  after?: number;
  error?: string;
}

interface Entry {
  seenRV: string;
  dueAt: number;
  dueKind: 'requeue' | 'error-backoff';
  failures: number;
  lastAt: number;
  poked: boolean;
}

export class WorkQueue {
  private readonly entries = new Map<string, Entry>();

  /** Why `key` (at resourceVersion `rv`) is due now, or undefined. */
  due(key: string, rv: string, now: number, timings: SimTimings): ReconcileTrigger | undefined {
    const e = this.entries.get(key);
    if (!e) return 'created';
    if (e.seenRV !== rv) return 'updated';
    if (e.poked) return 'owned-vpsienode';
    if (now >= e.dueAt) return e.dueKind;
    if (now - e.lastAt >= timings.syncPeriodMs) return 'resync';
    return undefined;
  }

  /** An event on something the object owns (a NodeGroup's VPSieNodes). */
  poke(key: string): void {
    const e = this.entries.get(key);
    if (e) e.poked = true;
  }

  /**
   * Records a finished reconcile. `seenRV` is the version the watch has delivered: the one read before the
   * reconcile (so the reconcile's own writes come back as an event), or the one it wrote (to ignore them).
   */
  done(key: string, seenRV: string, result: Result, now: number, timings: SimTimings): void {
    const prev = this.entries.get(key);
    let failures = prev?.failures ?? 0;
    let dueAt = Infinity;
    let dueKind: Entry['dueKind'] = 'requeue';
    if (result.error !== undefined || result.requeue) {
      dueAt = now + Math.min(timings.errorBackoffBaseMs * 2 ** failures, timings.errorBackoffMaxMs);
      failures += 1;
      dueKind = result.error !== undefined ? 'error-backoff' : 'requeue';
    } else {
      failures = 0;
      if (result.after !== undefined) dueAt = now + result.after;
    }
    this.entries.set(key, { seenRV, dueAt, dueKind, failures, lastAt: now, poked: false });
  }

  /** Marks what the watch has delivered without a reconcile (e.g. skipped objects). */
  seen(key: string, rv: string, now: number): void {
    const e = this.entries.get(key);
    if (e) e.seenRV = rv;
    else
      this.entries.set(key, {
        seenRV: rv,
        dueAt: Infinity,
        dueKind: 'requeue',
        failures: 0,
        lastAt: now,
        poked: false,
      });
  }

  forgetExcept(keys: Set<string>): void {
    for (const k of this.entries.keys()) if (!keys.has(k)) this.entries.delete(k);
  }
}
