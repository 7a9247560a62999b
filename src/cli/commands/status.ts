/** `status <ns>/<name>|<workflow-id>`: the run's `status` query, readable; `--output json` prints it raw. */
import { WorkflowFailedError } from '@temporalio/client';
import type { Command } from 'commander';
import type { OrphanSweepStatus } from '../../runbook/orphans';
import type { DiagnosisReport, RunbookStatus } from '../../runbook/report';
import { parseRunArg } from '../args';
import type { CommandContext } from '../context';
import { CliError, failure } from '../errors';
import { renderRunbookStatus, renderSweepStatus, statusFromReport, type RunMeta } from '../render';
import { ANSWER_TIMEOUT_MS, executionStatus, findRun, SWEEP_TYPE, type FoundRun } from '../runs';
import { temporalFailure, type TemporalSession } from '../temporal';

/** How long a closed run's status query may wait for a worker before its result stands in. */
const CLOSED_QUERY_TIMEOUT_MS = 5_000;

export type RunStatus =
  | { kind: 'runbook'; status: RunbookStatus; raw: unknown }
  | { kind: 'sweep'; status: OrphanSweepStatus; raw: unknown };

/**
 * The run's `status` query (a worker answers it, for a closed run too by replaying it). When no worker answers
 * and the run has completed, its result (the report) stands in; a run that failed is told as a failure (exit 1).
 */
export async function readStatus(t: TemporalSession, found: FoundRun): Promise<RunStatus> {
  const sweep = found.description.type === SWEEP_TYPE;
  const open = found.description.status.name === 'RUNNING';
  try {
    // A closed run's query needs a worker to replay it; its result needs none, so do not wait long for one.
    const raw = await t.within(open ? ANSWER_TIMEOUT_MS : CLOSED_QUERY_TIMEOUT_MS, () =>
      found.handle.query<unknown>('status'),
    );
    return sweep
      ? { kind: 'sweep', status: raw as OrphanSweepStatus, raw }
      : { kind: 'runbook', status: raw as RunbookStatus, raw };
  } catch (queryError) {
    const mapped = temporalFailure(queryError, t.settings);
    if (mapped instanceof CliError) throw mapped; // Temporal went away, or the run did
    const why = queryError instanceof Error ? queryError.message : String(queryError);
    if (open)
      throw failure(
        `${found.handle.workflowId} is running but its status query was not answered within ${ANSWER_TIMEOUT_MS / 1000}s (${why}); is a worker polling task queue ${found.description.taskQueue}?`,
      );
    try {
      const report = await t.within(ANSWER_TIMEOUT_MS, () => found.handle.result());
      return sweep
        ? {
            kind: 'sweep',
            status: {
              stage: 'completed',
              current: null,
              pendingApproval: null,
              ...(report as object),
            } as OrphanSweepStatus,
            raw: report,
          }
        : { kind: 'runbook', status: statusFromReport(report as DiagnosisReport), raw: report };
    } catch (err) {
      if (err instanceof WorkflowFailedError)
        throw failure(
          `${found.handle.workflowId} ${executionStatus(found.description).toLowerCase()}: ${err.cause?.message ?? err.message}`,
        );
      throw failure(
        `${found.handle.workflowId} (${executionStatus(found.description)}): no status to show (${why})`,
      );
    }
  }
}

/** What to type to name the run again: `ns/name` for a VPSieNode's run, else its workflow id. */
export function metaOf(found: FoundRun, s: RunStatus): RunMeta {
  return {
    arg: s.kind === 'runbook' ? `${s.status.ref.namespace}/${s.status.ref.name}` : found.handle.workflowId,
    workflowId: found.handle.workflowId,
    runId: found.description.runId,
    execution: executionStatus(found.description),
  };
}

export function registerStatus(program: Command, context: (cmd: Command) => CommandContext): void {
  program
    .command('status')
    .summary('show a run: stage, cause, plan, what it waits for, outcome')
    .description(
      "Show a run: stage, cause, reasons, plan with each step's state, the approval it waits for (target, expiry, how to approve), escalation and outcome. --output json prints the status query's answer as is.",
    )
    .argument(
      '<ns/name|workflow-id>',
      'the VPSieNode (its runbook run), or a workflow id such as an orphaned-VM sweep',
    )
    .action(async (arg: string, _opts: unknown, self: Command) => {
      const c = context(self);
      const runArg = parseRunArg(arg, 'argument <ns/name|workflow-id>');
      await c.temporal(async (t) => {
        const found = await findRun(t, runArg);
        const s = await readStatus(t, found);
        const meta = metaOf(found, s);
        const now = c.io.now();
        c.result(s.raw, () =>
          s.kind === 'runbook'
            ? renderRunbookStatus(s.status, meta, now)
            : renderSweepStatus(s.status, meta, now),
        );
      });
    });
}
