/**
 * `vpsie_runbook_approvals_pending`, counted by the Temporal server when scraped. The runs keep the search
 * attribute `ApprovalPending` true exactly while a step waits for a person, so the server's count is right
 * whatever happened to workers meanwhile (restarts, several replicas, a run that ended on another worker); a gauge
 * kept in the worker's memory would start at 0 after every restart. A short cache keeps several scrapers (or a
 * tight scrape interval) from turning into a stream of visibility queries.
 */
import type { Client } from '@temporalio/client';
import { approvalsPending } from '../metrics';
import { ApprovalPending } from '../workflows/search-attributes';

/** The workflow types that ask people (both write `ApprovalPending`). */
export const APPROVAL_WORKFLOW_TYPES = ['provisioningFailedRunbook', 'orphanedVmCleanup'] as const;

/** Scrapes within this long of the last count reuse it (Prometheus scrapes every 15 to 60 s). */
export const DEFAULT_APPROVALS_CACHE_MS = 10_000;

/** A string literal of Temporal's visibility query language. */
function literal(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The visibility query of one workflow type's runs waiting for a person on `taskQueue`. Only running runs: a run
 * terminated by hand while it waited keeps its last search attributes.
 */
export function approvalsPendingQuery(workflowType: string, taskQueue: string): string {
  return [
    `WorkflowType = ${literal(workflowType)}`,
    `TaskQueue = ${literal(taskQueue)}`,
    `ExecutionStatus = 'Running'`,
    `${ApprovalPending.name} = true`,
  ].join(' AND ');
}

export interface ApprovalsPendingOptions {
  client: Client;
  taskQueue: string;
  /** Default {@link DEFAULT_APPROVALS_CACHE_MS}; 0: count at every scrape. */
  cacheMs?: number;
}

export interface ApprovalsPendingSource {
  /** Sets the gauge from a count at most `cacheMs` old; false (and no samples) when the server did not answer. */
  refresh(): Promise<boolean>;
}

export function approvalsPendingSource(opts: ApprovalsPendingOptions): ApprovalsPendingSource {
  const cacheMs = opts.cacheMs ?? DEFAULT_APPROVALS_CACHE_MS;
  let last: { at: number; counting: Promise<boolean> } | null = null;

  const count = async (): Promise<boolean> => {
    try {
      const counts = await Promise.all(
        APPROVAL_WORKFLOW_TYPES.map(
          async (type) =>
            [
              type,
              (await opts.client.workflow.count(approvalsPendingQuery(type, opts.taskQueue))).count,
            ] as const,
        ),
      );
      for (const [type, n] of counts) approvalsPending.set({ workflow_type: type }, n);
      return true;
    } catch {
      // No number is better than a stale one: the series goes missing, and metrics_source_up says why.
      approvalsPending.reset();
      return false;
    }
  };

  return {
    refresh() {
      const now = Date.now();
      // concurrent scrapes share the count in flight; a failed count is not cached
      if (!last || now - last.at >= cacheMs) {
        const counting = count();
        last = { at: now, counting };
        void counting.then((ok) => {
          if (!ok && last?.counting === counting) last = null;
        });
      }
      return last.counting;
    },
  };
}
