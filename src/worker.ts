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
    ...(opts.workflowBundle
      ? { workflowBundle: opts.workflowBundle }
      : { workflowsPath: require.resolve('./workflows') }),
  });
}
