import {
  ActivityFailure,
  ApplicationFailure,
  isCancellation,
  proxyActivities,
  TimeoutFailure,
} from '@temporalio/workflow';
import type { RunbookActivities } from '../activities';
import type { RunbookError } from '../runbook';

/**
 * Reads of one object: seconds at most, retried with backoff while the API server is unreachable (about 4 min
 * of backoff over 10 attempts). A permanent answer (403, 401, ...) fails at once, non-retryably.
 */
export const { checkVPSieNode } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

/**
 * What a step that failed for good reports: the activity exhausted its retry policy or failed non-retryably.
 * Anything else (a cancellation of the run, a bug in the workflow) is thrown on.
 */
export function stepFailure(err: unknown): RunbookError {
  if (!(err instanceof ActivityFailure) || isCancellation(err)) throw err;
  const cause = err.cause;
  let type: string;
  if (cause instanceof ApplicationFailure) type = cause.type ?? cause.name;
  else if (cause instanceof TimeoutFailure) type = `Timeout:${cause.timeoutType}`;
  else type = cause?.name ?? err.name;
  return {
    step: err.activityType,
    type,
    message: cause?.message ?? err.message ?? '',
    retryState: String(err.retryState),
  };
}
