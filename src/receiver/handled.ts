/**
 * What this receiver already answered for a firing: workflow id + fingerprint + startsAt → the run that answered
 * it. Alertmanager re-sends a firing unchanged (every group_interval while its group changes, every
 * repeat_interval, after a failed delivery, and once from each replica of an HA pair), so during an alert storm
 * nearly every notification is a repeat; answering those from memory keeps Temporal for the firings it has not
 * seen. Correctness never rests on this record: Temporal's one open run per workflow id (the start policies) is
 * the guard, and a process that lost its record (a restart, another replica) only asks Temporal again.
 */

/**
 * Entries kept. A storm of every VPSieNode of a large cluster (10,000 firings) fits; an entry is a few hundred
 * bytes, so the record stays under a few MB. Beyond it the oldest go first, and their repeats ask Temporal again.
 */
export const DEFAULT_HANDLED_MAX_ENTRIES = 10_000;
/**
 * How long an answer is reused. It covers what comes within minutes (an HA pair's duplicate, retries, the
 * default group_interval of 5 minutes) but not the 4-hour repeat_interval, and it bounds how stale an answer
 * can be: a run that was open when Temporal was asked may have closed since (its repeats then start nothing
 * either way, but the answer says `joined`, as it was; after this age Temporal is asked, and says `repeat`).
 */
export const DEFAULT_HANDLED_MAX_AGE_MS = 10 * 60_000;

/** One firing of one VPSieNode's alert: `startsAt` as the instant it names (Prometheus may write it either way). */
export function firingKey(workflowId: string, fingerprint: string, startsAt: string): string {
  const at = Date.parse(startsAt);
  return `${workflowId}\n${fingerprint}\n${Number.isFinite(at) ? at : startsAt}`;
}

export interface HandledOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  now?: () => number;
}

/** A bounded map from firing to answer, oldest dropped first; an entry's age counts from when Temporal answered. */
export class HandledFirings<T> {
  private readonly entries = new Map<string, { value: T; at: number }>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(o: HandledOptions = {}) {
    this.maxEntries = o.maxEntries ?? DEFAULT_HANDLED_MAX_ENTRIES;
    this.maxAgeMs = o.maxAgeMs ?? DEFAULT_HANDLED_MAX_AGE_MS;
    this.now = o.now ?? Date.now;
    if (!(this.maxEntries >= 0) || !(this.maxAgeMs >= 0))
      throw new RangeError(
        `handled-firings bounds must be ≥ 0, got ${this.maxEntries} entries, ${this.maxAgeMs} ms`,
      );
  }

  get size(): number {
    return this.entries.size;
  }

  /** The answer recorded for `key` and when, unless it is older than the age bound. */
  get(key: string): { value: T; at: number } | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (this.now() - e.at > this.maxAgeMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Records an answer Temporal just gave; a newer answer for the same firing replaces the older one. */
  set(key: string, value: T): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(key); // re-inserted last: the Map's order is the order of the answers' age
    this.entries.set(key, { value, at: this.now() });
    this.prune();
  }

  private prune(): void {
    const oldest = this.now() - this.maxAgeMs;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && e.at >= oldest) break;
      this.entries.delete(key);
    }
  }
}
