/**
 * What workflow code tells the worker's metrics, through a Temporal sink (workflows cannot reach prom-client: they
 * run in a deterministic sandbox). Types only, so that workflow code can import this file.
 *
 * Why a sink: the SDK calls a sink function (registered with `callDuringReplay: false`) only for workflow code
 * that runs for the first time, never while it replays history (after a worker restart, a cache eviction, or to
 * answer a query on a closed run), and a replay worker calls none. So a run's end is counted once, by the worker
 * that ran it, and the call adds no command: history and replay are unchanged. This is the mechanism the SDK's
 * own workflow `metricMeter` is built on; a sink of our own keeps the project's metrics in its prom-client
 * registry, named, labelled and bucketed (in seconds) like the rest, instead of in the SDK's exporter.
 */
import type { Sinks } from '@temporalio/workflow';

/** A run's end: its outcome and cause, and when the run (first of its continue-as-new chain) started and ended. */
export interface RunEnded {
  outcome: string;
  /** null: ended before a cause was named. */
  cause: string | null;
  /** ISO times, in workflow time. */
  startedAt: string;
  finishedAt: string;
}

export interface RunbookMetricsSinks extends Sinks {
  runbookMetrics: {
    runEnded(ended: RunEnded): void;
  };
}
