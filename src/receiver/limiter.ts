/**
 * A bound on the Temporal work the receiver has in flight at once, so that an alert storm is fed to the server
 * at the rate it answers instead of all at once (a dev server on two cores slows down for everyone when flooded).
 * Work past the bound waits in line; when the line is too long or a place does not come in time, the receiver
 * is overloaded and says so (503 with Retry-After): Alertmanager retries, and a retry only does what was not done.
 */

/**
 * VPSieNode decisions (a describe and a start, or a signal) at once. On the two-core machine the dev server's
 * throughput stops growing at about this many; more only lengthens each call and risks its deadline.
 */
export const DEFAULT_MAX_TEMPORAL_IN_FLIGHT = 16;
/** Decisions waiting for a place; beyond that a new one is refused at once rather than queued. */
export const DEFAULT_MAX_TEMPORAL_WAITING = 5_000;
/** The longest a decision waits for a place before it is refused (its calls then get their full deadline). */
export const DEFAULT_MAX_TEMPORAL_WAIT_MS = 10_000;

/** No place within the bound: the receiver is overloaded (not Temporal unreachable). */
export class LimiterFullError extends Error {
  override name = 'LimiterFullError';
}

export interface LimiterOptions {
  maxInFlight?: number;
  maxWaiting?: number;
  maxWaitMs?: number;
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

export class Limiter {
  readonly maxInFlight: number;
  readonly maxWaiting: number;
  readonly maxWaitMs: number;
  private active = 0;
  private readonly waiting: Waiter[] = [];

  constructor(o: LimiterOptions = {}) {
    this.maxInFlight = o.maxInFlight ?? DEFAULT_MAX_TEMPORAL_IN_FLIGHT;
    this.maxWaiting = o.maxWaiting ?? DEFAULT_MAX_TEMPORAL_WAITING;
    this.maxWaitMs = o.maxWaitMs ?? DEFAULT_MAX_TEMPORAL_WAIT_MS;
    if (!(this.maxInFlight >= 1)) throw new RangeError(`maxInFlight must be ≥ 1, got ${this.maxInFlight}`);
  }

  /** Decisions running and waiting now. */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.active, waiting: this.waiting.length };
  }

  /** Runs `fn` once a place is free; LimiterFullError when none comes within the bounds. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private acquire(): Promise<void> {
    if (this.active < this.maxInFlight) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.maxWaiting)
      return Promise.reject(
        new LimiterFullError(
          `overloaded: ${this.active} of ${this.maxInFlight} Temporal decisions in flight and ${this.waiting.length} waiting`,
        ),
      );
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(
            new LimiterFullError(
              `overloaded: no place among ${this.maxInFlight} Temporal decisions in flight within ${this.maxWaitMs} ms`,
            ),
          );
        }, this.maxWaitMs),
      };
      this.waiting.push(waiter);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next)
      next.grant(); // the place passes on: `active` stays
    else this.active--;
  }
}
