/**
 * V8's heap settings for the worker process. The worker has two JavaScript heaps: the main thread's (activities,
 * clients) and the workflow thread's (every cached run, and every replay). By V8's defaults each young generation
 * may take 32 MB or more, and the old generation may grow to four times what it holds before a full collection;
 * replays leave much short-lived garbage there: with 1,000 runs waiting the workflow thread's heap reached 200 MB
 * between full collections while holding about 50 MB. A smaller young generation and a heap that grows by at most
 * 50% between collections kept it under 80 MB, and the worker at 426 MB peak instead of 565 (`npm run bench --
 * --only waiting`; README "Benchmark").
 */
import { setFlagsFromString } from 'node:v8';

export const WORKER_V8_FLAGS = ['--max-semi-space-size=4', '--heap-growing-percent=50'] as const;

/**
 * Sets {@link WORKER_V8_FLAGS}, each unless the process was given that flag itself (on the command line or in
 * NODE_OPTIONS): call before the worker starts its workflow thread, whose heap is made with the flags of the
 * moment. Answers the flags it set.
 */
export function tuneWorkerHeap(
  given: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)],
): string[] {
  const named = (flag: string) => flag.split('=')[0].replace(/_/g, '-');
  const taken = new Set(given.filter(Boolean).map(named));
  const set = WORKER_V8_FLAGS.filter((f) => !taken.has(named(f)));
  for (const flag of set) setFlagsFromString(flag);
  return set;
}
