import { Context } from '@temporalio/activity';

/** The running activity's context, or null outside one (a script, a test calling the function directly). */
export function inActivity(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/**
 * Heartbeats while `fn` runs, when the activity was scheduled with a heartbeat timeout. That timeout (a few
 * seconds, src/workflows/reads.ts) is what lets Temporal notice a worker that died mid-activity and retry the
 * activity elsewhere at once, instead of after its whole start-to-close timeout. Activities that keep their own
 * progress in heartbeat details (the escalation activities) are scheduled without one and are left alone.
 */
export function keepAlive<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R> {
  return async (...args: A): Promise<R> => {
    const ctx = inActivity();
    const timeoutMs = ctx && !ctx.info.isLocal ? ctx.info.heartbeatTimeoutMs : undefined;
    // several beats per timeout: the SDK throttles them to 80 % of it anyway
    const timer = timeoutMs
      ? setInterval(() => ctx!.heartbeat(), Math.max(200, Math.min(1_000, timeoutMs / 4)))
      : null;
    try {
      return await fn(...args);
    } finally {
      if (timer) clearInterval(timer);
    }
  };
}

/** Every function of `activities`, wrapped in {@link keepAlive}. */
export function keptAlive<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: T,
): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      keepAlive(fn as (...args: unknown[]) => Promise<unknown>),
    ]),
  ) as unknown as T;
}
