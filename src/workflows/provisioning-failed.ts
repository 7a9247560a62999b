import {
  ApplicationFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { RunbookActivities } from '../activities';
import {
  assessProgress,
  describeStatus,
  InvalidInputError,
  outcomeOf,
  resolveInput,
  type DiagnosisReport,
  type Progress,
  type RunbookInput,
  type RunbookStage,
  type RunbookStatus,
  type VPSieNodeSnapshot,
} from '../runbook';
import { statusQuery } from './messages';
import * as sa from './search-attributes';

const { checkVPSieNode } = proxyActivities<RunbookActivities>({
  // A read of one object: seconds at most, retried with backoff while the API server is unreachable.
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

/**
 * The "Provisioning Failed" runbook for one VPSieNode, top to bottom.
 *
 * 1. Check VPSieNode status. While the controller is still inside its own limits (10 min to provision, 15 to
 *    join), wait with a durable timer and look again: acting then would race the controller.
 * 2. Report what was found. Classification and remediation follow in later stages.
 */
export async function provisioningFailedRunbook(input: RunbookInput): Promise<DiagnosisReport> {
  let resolved: ReturnType<typeof resolveInput>;
  try {
    resolved = resolveInput(input);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const { ref, options } = resolved;
  const startedAt = new Date().toISOString();

  const status: RunbookStatus = {
    ref,
    stage: 'starting',
    stageSince: startedAt,
    checks: 0,
    progress: null,
    nextCheckAt: null,
    outcome: null,
  };
  setHandler(statusQuery, () => status);

  const enter = (stage: RunbookStage): void => {
    status.stage = stage;
    status.stageSince = new Date().toISOString();
    upsertSearchAttributes([{ key: sa.RunbookStage, value: stage }]);
    setCurrentDetails(describeStatus(status, Date.now()));
  };
  upsertSearchAttributes([
    { key: sa.VPSieNodeNamespace, value: ref.namespace },
    { key: sa.VPSieNodeName, value: ref.name },
  ]);

  let node: VPSieNodeSnapshot | null;
  let progress: Progress;
  for (;;) {
    enter('diagnosing');
    node = await checkVPSieNode(ref);
    status.checks += 1;
    progress = assessProgress(node, Date.now(), {
      provisioningLimitMs: options.provisioningLimitMs,
      joiningLimitMs: options.joiningLimitMs,
    });
    status.progress = progress;
    if (progress.kind !== 'in-progress') break;

    // The controller still has time: look again at the next interval, or right at its deadline.
    const untilDeadline = Math.max(0, Date.parse(progress.deadline) - Date.now());
    const wait = Math.max(1, Math.min(options.recheckIntervalMs, untilDeadline));
    status.nextCheckAt = new Date(Date.now() + wait).toISOString();
    enter('waiting-for-controller');
    log.info('VPSieNode still within the controller limit; waiting', {
      reason: progress.reason,
      waitMs: wait,
    });
    await sleep(wait);
    status.nextCheckAt = null;
  }

  const outcome = outcomeOf(progress) ?? 'needs-remediation';
  status.outcome = outcome;
  enter('completed');
  upsertSearchAttributes([{ key: sa.RunbookOutcome, value: outcome }]);
  return {
    ref,
    outcome,
    progress,
    vpsieNode: node,
    checks: status.checks,
    startedAt,
    finishedAt: new Date().toISOString(),
  };
}
