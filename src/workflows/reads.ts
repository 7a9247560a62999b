import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { RunbookActivities } from '../activities';
import type { RunbookError } from '../runbook';

/**
 * Reads of one object: seconds at most, retried with backoff while the API server is unreachable (about 4 min
 * of backoff over 10 attempts). A permanent answer (403, 401, ...) fails at once, non-retryably.
 */
const READ_RETRY = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '1 minute',
  maximumAttempts: 10,
} as const;

/**
 * Reads, acts and the lease heartbeat while they run (src/activities/keep-alive.ts): when a worker dies, its
 * activity is retried after this, not after the whole start-to-close timeout (up to two minutes). Measured
 * with the worker killed by SIGKILL mid-activity: retried after 6.5 s instead of 31–62 s.
 */
export const HEARTBEAT_TIMEOUT = '5 seconds';

export const { checkVPSieNode, listVPSieNodes, checkNodeRegistration, checkVM, listClusterNodes } =
  proxyActivities<RunbookActivities>({
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    retry: READ_RETRY,
  });

/**
 * Every source of the diagnosis in one parallel round. A source that fails is an error inside the evidence, not
 * a failed activity, so this only fails when the VPSieNode itself cannot be read. Controller logs and VPSie
 * lists can take a while: two minutes per attempt.
 */
export const { gatherEvidence } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: READ_RETRY,
});

/**
 * The diagnosis's own reads as local activities: run by the worker inside the workflow task that asks for them,
 * so an alert reaches its cause in one workflow task instead of one task-queue round trip per read (about 100 ms
 * each on a small server). Reads are idempotent, so the re-run after a crash that local activities allow is
 * harmless; the retry policy is the same, and backoff longer than a minute becomes a durable timer.
 */
export const localReads = proxyLocalActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: READ_RETRY,
});
export const localEvidence = proxyLocalActivities<RunbookActivities>({
  startToCloseTimeout: '2 minutes',
  retry: READ_RETRY,
});

/** Refusals that no retry can change: the target is no longer the one diagnosed, or the input is wrong. */
const PERMANENT = [
  'PreconditionFailed',
  'MachineClaimed',
  'VMPreconditionFailed',
  'ClusterNodePreconditionFailed',
  'InvalidInput',
];

/**
 * The acts. Each one re-reads its target and checks the precondition itself, and is idempotent, so a retry after
 * a lost answer finds the work done. Fewer attempts than a read: a person is waiting on the result.
 */
export const {
  deleteVPSieNode,
  setNodeGroupKubernetesVersion,
  forceNodeGroupReconciliation,
  terminateVM,
  removeClusterNode,
} = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: { ...READ_RETRY, maximumAttempts: 6, nonRetryableErrorTypes: PERMANENT },
});

/** Telling people (a pending approval; an incident resolved): a run never waits on these, nor fails by them. */
export const { announceApproval, resolveEscalation } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '1 minute',
  retry: { ...READ_RETRY, nonRetryableErrorTypes: ['InvalidInput'] },
});

/** The hand-off to people: recorded even when the rest of the world is failing, so retried for longer. */
export const { escalate } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '1 minute',
  retry: { ...READ_RETRY, maximumAttempts: 15, nonRetryableErrorTypes: ['InvalidInput'] },
});

/**
 * What a step that failed for good reports: the activity exhausted its retry policy or failed non-retryably.
 * Anything else (a cancellation of the run, a bug in the workflow) is thrown on.
 */
export function stepFailure(err: unknown, localStep?: string): RunbookError {
  // A local activity's failure may arrive as its cause alone (no ActivityFailure around it).
  if (localStep && (err instanceof ApplicationFailure || err instanceof TimeoutFailure)) {
    const retryState =
      err instanceof TimeoutFailure
        ? 'TIMEOUT'
        : err.nonRetryable
          ? 'NON_RETRYABLE_FAILURE'
          : 'MAXIMUM_ATTEMPTS_REACHED';
    return { step: localStep, type: failureType(err, err), message: err.message ?? '', retryState };
  }
  if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
  const cause = err.cause;
  return {
    step: err.activityType,
    type: failureType(cause, err),
    message: cause?.message ?? err.message ?? '',
    retryState: String(err.retryState),
  };
}

function failureType(cause: Error | undefined, err: Error): string {
  if (cause instanceof ApplicationFailure) return cause.type ?? cause.name;
  if (cause instanceof TimeoutFailure) return `Timeout:${cause.timeoutType}`;
  return cause?.name ?? err.name;
}
