/**
 * A test-only workflow that runs one activity by name under the given activity options, so an activity's
 * failures meet Temporal's real retry policy on the real server (e.g. `nextRetryDelay` from `Retry-After`).
 * Bundled by the test that uses it, never registered by the product's worker.
 */
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';

type AnyActivity = (...args: unknown[]) => Promise<unknown>;

export async function runActivity(name: string, args: unknown[], options: ActivityOptions): Promise<unknown> {
  const activities = proxyActivities<Record<string, AnyActivity>>(options);
  return activities[name](...args);
}
