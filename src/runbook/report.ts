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
 * - `needs-remediation`: stuck past the controller's limits or Failed; remediation follows in later stages.
 */
export type RunbookOutcome = 'recovered' | 'not-found' | 'terminating' | 'needs-remediation';

export interface RunbookStatus {
  ref: VPSieNodeRef;
  stage: RunbookStage;
  /** When the current stage began (workflow time, ISO 8601). */
  stageSince: string;
  /** How many times the VPSieNode was read. */
  checks: number;
  progress: Progress | null;
  /** While waiting for the controller, when we look next. */
  nextCheckAt: string | null;
  outcome: RunbookOutcome | null;
}

export interface DiagnosisReport {
  ref: VPSieNodeRef;
  outcome: RunbookOutcome;
  progress: Progress;
  vpsieNode: VPSieNodeSnapshot | null;
  checks: number;
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
      const next = status.nextCheckAt
        ? formatDuration(Math.max(0, Date.parse(status.nextCheckAt) - nowMs))
        : '?';
      return `${node}: ${status.progress?.reason ?? 'in progress'}; waiting for the controller, next check in ${next}`;
    }
    case 'completed':
      return `${node}: ${status.outcome} (${status.progress?.reason ?? 'no observation'})`;
  }
}
