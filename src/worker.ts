import { Worker, type NativeConnection } from '@temporalio/worker';
import type { RunbookActivities } from './activities';
import { DEFAULT_MAX_CACHED_WORKFLOWS } from './config';
import { workflowBundlerOptions } from './bundle-workflows';
import { runbookMetricsSinks } from './metrics/worker-sinks';

export interface RunbookWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: RunbookActivities;
  /** A prebuilt workflow bundle (`npm run build` writes one; tests build one per run); unset: bundle at start. */
  workflowBundle?: { codePath: string };
  /** Runs kept in memory between their workflow tasks; default {@link DEFAULT_MAX_CACHED_WORKFLOWS}. */
  maxCachedWorkflows?: number;
}

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
    // Runs mostly wait (for the controller, for a person) and wake once per look: see DEFAULT_MAX_CACHED_WORKFLOWS.
    maxCachedWorkflows: opts.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
    // As many workflow-task polls as the server says there is work for: with the default fixed split, a storm
    // of new runs waited seconds in the task queue while the worker sat mostly idle.
    workflowTaskPollerBehavior: { type: 'autoscaling' },
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : bundledAtStart()),
  });
}

/** Without a prebuilt bundle: the worker bundles the workflows as it starts, as `npm run build` would. */
function bundledAtStart(): { workflowsPath: string; bundlerOptions: { preloadModules: string[] } } {
  const { workflowsPath, preloadModules } = workflowBundlerOptions();
  return { workflowsPath, bundlerOptions: { preloadModules } };
}
