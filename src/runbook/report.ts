import { formatDuration } from './duration';
import type { Progress } from './progress';
import type { VPSieNodeRef, VPSieNodeSnapshot } from './types';

/** Where a run is; the `status` query answers with this at any time. */
export type RunbookStage = 'starting' | 'diagnosing' | 'waiting-for-controller' | 'completed';

export const RUNBOOK_STAGES: readonly RunbookStage[] = [
  'starting',
  'diagnosing',
  'waiting-for-controller',
  'completed',
];

/**
 * How the run ended, so far:
 * - `recovered`: the node became Ready on its own, nothing was done;
 * - `not-found`: the VPSieNode is gone (stale alert or already cleaned up);
 * - `terminating`: the VPSieNode is being deleted, the controller owns it;
 * - `needs-remediation`: stuck past the controller's limits or Failed; remediation follows in later stages;
 * - `read-failed`: the VPSieNode could not be read (permission refused, or the API kept failing through every
 *   retry); the report's `error` says why, and a person has to look.
 */
export type RunbookOutcome = 'recovered' | 'not-found' | 'terminating' | 'needs-remediation' | 'read-failed';

export const RUNBOOK_OUTCOMES: readonly RunbookOutcome[] = [
  'recovered',
  'not-found',
  'terminating',
  'needs-remediation',
  'read-failed',
];

/** A step that failed for good, as the run reports it: which step, the error's type and message, and why it stopped. */
export interface RunbookError {
  /** The activity that failed, e.g. `checkVPSieNode`. */
  step: string;
  /** The failure type, e.g. `Kubernetes403`, or the error's name when it was retried (`KubernetesApiError`). */
  type: string;
  message: string;
  /**
   * Why Temporal stopped retrying: `NON_RETRYABLE_FAILURE` (a permanent answer such as 403), `MAXIMUM_ATTEMPTS_REACHED`
   * or `TIMEOUT` (it kept failing through the retry policy).
   */
  retryState: string;
}

export interface RunbookStatus {
  ref: VPSieNodeRef;
  stage: RunbookStage;
  /** When the current stage began (workflow time, ISO 8601); carried across continue-as-new. */
  stageSince: string;
  /** When the runbook started for this alert: the first run's start, carried across continue-as-new. */
  startedAt: string;
  /** Which run of the chain answers: 1, then one more at every continue-as-new. */
  run: number;
  /** How many times the VPSieNode was read, over all runs of the chain. */
  checks: number;
  progress: Progress | null;
  /** While waiting for the controller, when we look next; null while looking. */
  nextCheckAt: string | null;
  outcome: RunbookOutcome | null;
  /** With outcome `read-failed`: what failed. */
  error: RunbookError | null;
}

export interface DiagnosisReport {
  ref: VPSieNodeRef;
  outcome: RunbookOutcome;
  /** The last observation; null only when the very first read failed (`read-failed`). */
  progress: Progress | null;
  /** The VPSieNode as last read; null when it does not exist or was never read. */
  vpsieNode: VPSieNodeSnapshot | null;
  /** Reads of the VPSieNode, over all runs of the chain. */
  checks: number;
  /** Runs in the chain: 1 plus the number of times it continued as new. */
  runs: number;
  /** With outcome `read-failed`: what failed; null otherwise. */
  error: RunbookError | null;
  /** The first run's start. */
  startedAt: string;
  finishedAt: string;
}

/** What the last observation means for the run. `null`: keep waiting for the controller. */
export function outcomeOf(progress: Progress): RunbookOutcome | null {
  switch (progress.kind) {
    case 'healthy':
      return 'recovered';
    case 'missing':
      return 'not-found';
    case 'terminating':
      return 'terminating';
    case 'in-progress':
      return null;
    case 'stuck':
    case 'failed':
      return 'needs-remediation';
  }
}

/**
 * One line for the Temporal UI's "current details" of a run, so the UI reads like the runbook: where the run is
 * and why. Pure, so the workflow and tests share it.
 */
export function describeStatus(status: RunbookStatus, nowMs: number): string {
  const node = `VPSieNode ${status.ref.namespace}/${status.ref.name}`;
  switch (status.stage) {
    case 'starting':
    case 'diagnosing':
      return `Checking ${node} (check ${status.checks + 1})`;
    case 'waiting-for-controller': {
      const reason = status.progress?.reason ?? 'in progress';
      if (!status.nextCheckAt) return `${node}: ${reason}; checking again (check ${status.checks + 1})`;
      const next = formatDuration(Math.max(0, Date.parse(status.nextCheckAt) - nowMs));
      return `${node}: ${reason}; waiting for the controller, next check in ${next}`;
    }
    case 'completed':
      if (status.error) {
        return `${node}: ${status.outcome} (${status.error.step}: ${status.error.type}: ${status.error.message})`;
      }
      return `${node}: ${status.outcome} (${status.progress?.reason ?? 'no observation'})`;
  }
}
