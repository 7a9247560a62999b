/** `list`: runs by what their search attributes say; `--pending-approval` is the on-call's inbox. */
import type { Command } from 'commander';
import type { PendingApproval } from '../../runbook/approval';
import { parseWholeNumber } from '../args';
import type { CommandContext } from '../context';
import { renderRows } from '../render';
import { ANSWER_TIMEOUT_MS, pendingApprovalFromMemo, rowOf, type RunRow } from '../runs';
import { listQuery, type ListFilters } from '../visibility';

interface ListFlags {
  pendingApproval?: boolean;
  cause?: string;
  nodegroup?: string;
  outcome?: string;
  stage?: string;
  open?: boolean;
  anyTaskQueue?: boolean;
  limit: string;
}

export function registerList(program: Command, context: (cmd: Command) => CommandContext): void {
  program
    .command('list')
    .summary('list runs by search attributes; --pending-approval is the inbox')
    .description(
      "List runbook runs and orphaned-VM sweeps on this deployment's task queue, newest first (a Temporal visibility query over the project's search attributes).",
    )
    .option(
      '--pending-approval',
      'only runs waiting for a person now (ApprovalPending = true, still running)',
    )
    .option('--cause <cause>', 'only runs diagnosed with this cause (RunbookCause), e.g. ProvisioningTimeout')
    .option('--nodegroup <name>', 'only runs about this NodeGroup (NodeGroup)')
    .option('--outcome <outcome>', 'only runs that ended so (RunbookOutcome), e.g. Escalated')
    .option('--stage <stage>', 'only runs at this stage (RunbookStage), e.g. awaiting-approval')
    .option('--open', 'only runs still running')
    .option('--any-task-queue', "runs on every task queue, not only this deployment's (TEMPORAL_TASK_QUEUE)")
    .option('--limit <n>', 'at most this many runs (1 to 1000)', '100')
    .action(async (opts: ListFlags, self: Command) => {
      const c = context(self);
      const limit = parseWholeNumber(opts.limit, '--limit', 1, 1000);
      const filters: Omit<ListFilters, 'taskQueue'> = {
        ...(opts.pendingApproval ? { pendingApproval: true } : {}),
        ...(opts.open ? { open: true } : {}),
        ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
        ...(opts.nodegroup !== undefined ? { nodeGroup: opts.nodegroup } : {}),
        ...(opts.outcome !== undefined ? { outcome: opts.outcome } : {}),
        ...(opts.stage !== undefined ? { stage: opts.stage } : {}),
      };
      listQuery(filters); // the values are checked before anything connects
      const rows = await c.temporal(async (t) => {
        const query = listQuery({ ...filters, taskQueue: opts.anyTaskQueue ? null : t.settings.taskQueue });
        c.io.progress(`query: ${query}`);
        const found: RunRow[] = [];
        const unknown: RunRow[] = [];
        for await (const info of t.client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
          const row = rowOf(info);
          found.push(row);
          // The inbox says what each run waits for: from its memo, which visibility answered already.
          if (opts.pendingApproval) {
            const pending = pendingApprovalFromMemo(info);
            if (pending) row.pendingApproval = pending;
            else unknown.push(row);
          }
          if (found.length >= limit) break;
        }
        // Runs that keep no memo of it (started by an older version) are asked, all at once.
        if (unknown.length)
          await Promise.all(
            unknown.map(async (row) => {
              try {
                const s = await t.within(ANSWER_TIMEOUT_MS, () =>
                  t.client.workflow
                    .getHandle(row.workflowId, row.runId)
                    .query<{ pendingApproval: PendingApproval | null }>('status'),
                );
                row.pendingApproval = s.pendingApproval;
              } catch {
                row.pendingApproval = null; // not answered: the row still lists the run
              }
            }),
          );
        return found;
      });
      if (!rows.length) c.io.progress('no runs match');
      c.result(rows, () => (rows.length ? renderRows(rows, c.io.now()) : ''));
    });
}
