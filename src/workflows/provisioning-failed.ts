import {
  ApplicationFailure,
  log,
  makeContinueAsNewFunc,
  patched,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import {
  assessProgress,
  describeStatus,
  InvalidInputError,
  outcomeOf,
  resolveInput,
  type DiagnosisReport,
  type ResolvedInput,
  type RunbookError,
  type RunbookInput,
  type RunbookOutcome,
  type RunbookStatus,
  type VPSieNodeSnapshot,
} from '../runbook';
import { legacyProvisioningFailedRunbook } from './legacy';
import { statusQuery } from './messages';
import { checkVPSieNode, stepFailure } from './reads';
import { writeSearchAttributes } from './search-attribute-writes';
import * as sa from './search-attributes';

/** Runs started before this patch run {@link legacyProvisioningFailedRunbook}. */
export const BOUNDED_RUNBOOK_PATCH = 'bounded-runbook';

/**
 * The "Provisioning Failed" runbook for one VPSieNode, top to bottom.
 *
 * 1. Check VPSieNode status. While the controller is still inside its own limits (10 min to provision, 15 to
 *    join), wait with a durable timer and look again: acting then would race the controller. After
 *    `checksPerRun` looks (or when the server suggests it) the run continues as new, carrying what `status` and
 *    the report need, so that history stays small however long the controller takes.
 * 2. Report what was found. A read that fails for good (refused, or failing through every retry) is an outcome,
 *    `read-failed`, with the error: a person has to look. Classification and remediation follow in later stages.
 */
export async function provisioningFailedRunbook(input: RunbookInput): Promise<DiagnosisReport> {
  if (!patched(BOUNDED_RUNBOOK_PATCH)) return legacyProvisioningFailedRunbook(input);

  let resolved: ResolvedInput;
  try {
    resolved = resolveInput(input);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const { ref, options, continuation } = resolved;
  const now = (): string => new Date().toISOString();

  // A continued run starts where the previous one stopped: waiting for the controller until `nextCheckAt`.
  const status: RunbookStatus = continuation
    ? {
        ref,
        stage: 'waiting-for-controller',
        stageSince: continuation.stageSince,
        startedAt: continuation.startedAt,
        run: continuation.run,
        checks: continuation.checks,
        progress: continuation.progress,
        nextCheckAt: continuation.nextCheckAt,
        outcome: null,
        error: null,
      }
    : {
        ref,
        stage: 'diagnosing',
        stageSince: now(),
        startedAt: now(),
        run: 1,
        checks: 0,
        progress: null,
        nextCheckAt: null,
        outcome: null,
        error: null,
      };
  setHandler(statusQuery, () => status);
  let node: VPSieNodeSnapshot | null = continuation?.vpsieNode ?? null;
  let checksThisRun = 0;

  const show = (): void => setCurrentDetails(describeStatus(status, Date.now()));
  // Search attributes are written only when they change: a continued run inherits its predecessor's.
  writeSearchAttributes([
    { key: sa.VPSieNodeNamespace, value: ref.namespace },
    { key: sa.VPSieNodeName, value: ref.name },
    { key: sa.RunbookStage, value: status.stage },
  ]);
  show();

  const finish = (outcome: RunbookOutcome, error: RunbookError | null): DiagnosisReport => {
    Object.assign(status, { stage: 'completed', stageSince: now(), nextCheckAt: null, outcome, error });
    writeSearchAttributes([
      { key: sa.RunbookStage, value: 'completed' },
      { key: sa.RunbookOutcome, value: outcome },
    ]);
    show();
    return {
      ref,
      outcome,
      progress: status.progress,
      vpsieNode: node,
      checks: status.checks,
      runs: status.run,
      error,
      startedAt: status.startedAt,
      finishedAt: now(),
    };
  };

  for (;;) {
    if (status.nextCheckAt) {
      const wait = Date.parse(status.nextCheckAt) - Date.now();
      if (wait > 0) await sleep(wait);
      status.nextCheckAt = null;
      show();
    }

    try {
      node = await checkVPSieNode(ref);
    } catch (err) {
      const error = stepFailure(err);
      log.warn('could not read the VPSieNode; ending the run', { ...error });
      return finish('read-failed', error);
    }
    status.checks += 1;
    checksThisRun += 1;
    const progress = assessProgress(node, Date.now(), {
      provisioningLimitMs: options.provisioningLimitMs,
      joiningLimitMs: options.joiningLimitMs,
    });
    status.progress = progress;
    if (progress.kind !== 'in-progress' || node === null) {
      return finish(outcomeOf(progress) ?? 'needs-remediation', null);
    }

    // The controller still has time: look again at the next interval, or right at its deadline.
    const untilDeadline = Math.max(0, Date.parse(progress.deadline) - Date.now());
    const wait = Math.max(1, Math.min(options.recheckIntervalMs, untilDeadline));
    status.nextCheckAt = new Date(Date.now() + wait).toISOString();
    if (status.stage !== 'waiting-for-controller') {
      status.stage = 'waiting-for-controller';
      status.stageSince = now();
      writeSearchAttributes([{ key: sa.RunbookStage, value: status.stage }]);
    }
    show();
    log.info('VPSieNode still within the controller limit; waiting', {
      reason: progress.reason,
      waitMs: wait,
    });

    if (checksThisRun >= options.checksPerRun || workflowInfo().continueAsNewSuggested) {
      // The wait happens in the next run, which starts with a clean history.
      // The next run inherits the search attributes as they are, so it writes none until something changes.
      const continueRun = makeContinueAsNewFunc<typeof provisioningFailedRunbook>({
        typedSearchAttributes: workflowInfo().typedSearchAttributes,
      });
      await continueRun({
        namespace: ref.namespace,
        name: ref.name,
        ...(input.options ? { options: input.options } : {}),
        continuation: {
          startedAt: status.startedAt,
          run: status.run + 1,
          checks: status.checks,
          stageSince: status.stageSince,
          progress,
          vpsieNode: node,
          nextCheckAt: status.nextCheckAt,
        },
      });
    }
  }
}
