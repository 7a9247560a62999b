/**
 * `approve` and `reject`: a person's decision through the `decide` update, so the answer says at once whether it
 * counted, and if not why (the workflow's own check: not an approver, not the pending step, nothing pending).
 */
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import type { Command } from 'commander';
import {
  MAX_APPROVER_LENGTH,
  MAX_REASON_BYTES,
  utf8Length,
  type DecisionKind,
  type DecisionResult,
} from '../../runbook/approval';
import { RunbookOutcome } from '../../workflows/search-attributes';
import { decideUpdate } from '../../workflows/messages';
import { parseRunArg } from '../args';
import type { CommandContext } from '../context';
import { failure, usageError } from '../errors';
import { renderDecision } from '../render';
import { ANSWER_TIMEOUT_MS, executionStatus, findRun } from '../runs';
import { metaOf, readStatus } from './status';

interface DecideFlags {
  step?: string;
  as: string;
  reason?: string;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function checkFlags(f: DecideFlags): void {
  if (f.as.trim() === '' || f.as !== f.as.trim() || CONTROL.test(f.as) || f.as.length > MAX_APPROVER_LENGTH)
    throw usageError(
      `--as must be your name (1 to ${MAX_APPROVER_LENGTH} characters, no control characters or surrounding spaces), got ${JSON.stringify(f.as)}`,
    );
  if (f.step !== undefined && (f.step.trim() === '' || CONTROL.test(f.step)))
    throw usageError(`--step must be a plan step id such as delete-vpsienode, got ${JSON.stringify(f.step)}`);
  if (f.reason !== undefined && utf8Length(f.reason) > MAX_REASON_BYTES)
    throw usageError(`--reason must be at most ${MAX_REASON_BYTES} bytes, got ${utf8Length(f.reason)}`);
}

function register(program: Command, context: (cmd: Command) => CommandContext, decision: DecisionKind): void {
  const verb = decision === 'approve' ? 'Approve' : 'Reject';
  program
    .command(decision)
    .summary(`${decision} the step a run waits for, through the decide update`)
    .description(
      `${verb} the step a run waits for (without --step: the one pending now), through the decide update: says at once whether the decision counted, and why not.`,
    )
    .argument(
      '<ns/name|workflow-id>',
      'the VPSieNode (its runbook run), or a workflow id such as an orphaned-VM sweep',
    )
    .option('--step <id>', 'the plan step to decide, e.g. delete-vpsienode (default: the step pending now)')
    .requiredOption('--as <name>', "who decides (checked against the run's approvers, when it has any)")
    .option('--reason <text>', `why, for the record (at most ${MAX_REASON_BYTES} bytes)`)
    .action(async (arg: string, opts: DecideFlags, self: Command) => {
      const c = context(self);
      const runArg = parseRunArg(arg, 'argument <ns/name|workflow-id>');
      checkFlags(opts);
      const { record, workflowId } = await c.temporal(async (t) => {
        const found = await findRun(t, runArg);
        const id = found.handle.workflowId;
        if (found.description.status.name !== 'RUNNING') {
          const outcome = found.description.typedSearchAttributes.get(RunbookOutcome);
          throw failure(
            `${id} has ended (${executionStatus(found.description)}${outcome ? `, outcome ${outcome}` : ''}): nothing waits for a decision`,
          );
        }
        let stepId = opts.step;
        if (stepId === undefined) {
          const s = await readStatus(t, found);
          const pending = s.status.pendingApproval;
          if (!pending)
            throw failure(
              `nothing waits for approval in ${id} (stage ${s.status.stage}); see: vpsie-runbook status ${metaOf(found, s).arg}`,
            );
          stepId = pending.stepId;
        }
        const handle = t.client.workflow.getHandle(id);
        try {
          const answer = await t.within(ANSWER_TIMEOUT_MS, () =>
            handle.executeUpdate(decideUpdate, {
              args: [
                {
                  stepId: stepId as string,
                  decision,
                  approver: opts.as,
                  ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
                },
              ],
            }),
          );
          return { record: answer, workflowId: id };
        } catch (err) {
          if (err instanceof WorkflowUpdateFailedError)
            throw failure(`${decision} of ${stepId} refused by ${id}: ${err.cause?.message ?? err.message}`);
          if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError)
            throw failure(
              `${decision} of ${stepId} not confirmed: no worker answered within ${ANSWER_TIMEOUT_MS / 1000}s; is a worker polling task queue ${found.description.taskQueue}? Check with: vpsie-runbook status ${runArg.text}`,
            );
          throw err;
        }
      });
      c.result(record satisfies DecisionResult, () => renderDecision(record, workflowId));
    });
}

export function registerDecide(program: Command, context: (cmd: Command) => CommandContext): void {
  register(program, context, 'approve');
  register(program, context, 'reject');
}
