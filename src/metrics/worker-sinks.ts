/**
 * The worker's side of {@link RunbookMetricsSinks}: a run's end becomes `vpsie_runbook_outcomes_total` and one
 * observation of `vpsie_runbook_alert_to_outcome_seconds` in the project's registry.
 */
import type { InjectedSinks } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { alertToOutcome, runOutcomes } from '../metrics';
import { ORIGIN_MEMO_KEY } from '../temporal/start-runbook';
import type { RunbookMetricsSinks, RunEnded } from './sink';

/**
 * Runs already counted by this process. The SDK never calls the sink while replaying, but a workflow task that
 * fails after the workflow code ran (the server refusing the completion because a signal came in at that moment,
 * a task timeout) runs that code again, not as a replay; a run ends once, so its run id is counted once. Bounded:
 * a retried task comes seconds later, not after thousands of other runs.
 */
const COUNTED_CAP = 10_000;
const counted = new Set<string>();

function firstTime(runId: string): boolean {
  if (counted.has(runId)) return false;
  counted.add(runId);
  if (counted.size > COUNTED_CAP) counted.delete(counted.values().next().value as string);
  return true;
}

/** The alert's start (`origin.startsAt` in the run's memo), when the run was started for an alert. */
export function alertStartOf(memo: Record<string, unknown> | undefined): number | null {
  const origin = memo?.[ORIGIN_MEMO_KEY] as { startsAt?: unknown } | undefined;
  if (typeof origin?.startsAt !== 'string') return null;
  const at = Date.parse(origin.startsAt);
  // Alertmanager's zero time (0001-01-01) or garbage: not an alert's start
  return Number.isFinite(at) && at > 0 ? at : null;
}

/** Counts one run's end. Exported for the worker's sink and for tests that check the arithmetic. */
export function recordRunEnded(info: Pick<WorkflowInfo, 'runId' | 'memo'>, ended: RunEnded): void {
  if (!firstTime(info.runId)) return;
  runOutcomes.inc({ outcome: ended.outcome, cause: ended.cause ?? 'none' });
  const end = Date.parse(ended.finishedAt);
  const alert = alertStartOf(info.memo);
  // The memo follows a continued run; startedAt is the chain's first run's start.
  const start = alert ?? Date.parse(ended.startedAt);
  if (!Number.isFinite(end) || !Number.isFinite(start)) return;
  // an alert stamped by a clock ahead of ours: the run took no time, not a negative one
  alertToOutcome.observe(
    { outcome: ended.outcome, since: alert !== null ? 'alert' : 'run' },
    Math.max(0, (end - start) / 1000),
  );
}

/** The sinks every runbook worker registers (src/worker.ts). */
export function runbookMetricsSinks(): InjectedSinks<RunbookMetricsSinks> {
  return {
    runbookMetrics: {
      runEnded: { fn: (info, ended) => recordRunEnded(info, ended), callDuringReplay: false },
    },
  };
}
