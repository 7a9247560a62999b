import { Worker, type NativeConnection } from '@temporalio/worker';
import type { RunbookActivities } from './activities';
import { runbookMetricsSinks } from './metrics/worker-sinks';

export interface RunbookWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: RunbookActivities;
  /** A prebuilt workflow bundle (tests build one per run); unset: bundle src/workflows at start. */
  workflowBundle?: { codePath: string };
  /** Runs kept in memory between their workflow tasks; default {@link DEFAULT_MAX_CACHED_WORKFLOWS}. */
  maxCachedWorkflows?: number;
}

/** Runs cached by the worker: enough for the runs that are active at once, not for every waiting one. */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 150;

/** The worker that runs the runbook workflows and their activities. */
export function createRunbookWorker(opts: RunbookWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: opts.activities,
    // runs' ends, counted into the project's metrics (never while replaying: src/metrics/sink.ts)
    sinks: runbookMetricsSinks(),
    // A run whose worker died is handed to another after this, not the default 10 s (measured: a workflow
    // task queued for a killed worker was picked up after 2.8–3.5 s instead of 10–12 s).
    stickyQueueScheduleToStartTimeout: '3 seconds',
    // Runs mostly wait (for the controller, for a person) and wake once per look; a bounded cache keeps a
    // thousand waiting runs within a few hundred MB (measured: about 1 MB per cached run above 200 MB idle,
    // with the SDK's default, sized from the heap limit, caching them all), and a run that is not cached is
    // replayed from its short history when it wakes or is queried.
    maxCachedWorkflows: opts.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
    // As many workflow-task polls as the server says there is work for: with the default fixed split, a storm
    // of new runs waited seconds in the task queue while the worker sat mostly idle.
    workflowTaskPollerBehavior: { type: 'autoscaling' },
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('./workflows') }),
  });
}
