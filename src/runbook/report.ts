import type { DecisionRecord, PendingApproval } from './approval';
import type { Cause, Reason } from './classify';
import type { Evidence } from './diagnosis';
import { formatDuration } from './duration';
import type { Escalation, EscalationRecord } from './escalation';
import { describeTarget, type PlanStep } from './plan';
import type { Progress } from './progress';
import type { VPSieNodeRef, VPSieNodeSnapshot } from './types';

/** Where a run is; the `status` query answers with this at any time. */
export type RunbookStage =
  | 'starting'
  | 'diagnosing'
  | 'waiting-for-controller'
  | 'gathering-evidence'
  | 'awaiting-approval'
  | 'remediating'
  | 'escalating'
  | 'completed';

export const RUNBOOK_STAGES: readonly RunbookStage[] = [
  'starting',
  'diagnosing',
  'waiting-for-controller',
  'gathering-evidence',
  'awaiting-approval',
  'remediating',
  'escalating',
  'completed',
];

/**
 * How the run ended:
 * - `Recovered`: the node became Ready (or its Node registered Ready) without anything being done;
 * - `Remediated`: the run replaced the node (a new VPSieNode is Ready) or removed the machine left behind;
 * - `Escalated`: a person must act; the report's `escalation` says why, with the evidence;
 * - `Rejected`: a person rejected a step; nothing more was done;
 * - `ApprovalExpired`: nobody decided in time; the run escalated and did nothing;
 * - `DryRun`: diagnosed and planned only (input `dryRun`);
 * - `VPSieNodeGone`: the VPSieNode is gone or being deleted by someone else, and nothing of it is left to us.
 */
export type RunbookOutcome =
  'Recovered' | 'Remediated' | 'Escalated' | 'Rejected' | 'ApprovalExpired' | 'DryRun' | 'VPSieNodeGone';

export const RUNBOOK_OUTCOMES: readonly RunbookOutcome[] = [
  'Recovered',
  'Remediated',
  'Escalated',
  'Rejected',
  'ApprovalExpired',
  'DryRun',
  'VPSieNodeGone',
];

/**
 * What runs started before the whole runbook (patch `whole-runbook`) ended with: they stopped after the wait.
 * Kept so their histories replay and their results stay readable.
 */
export type LegacyRunbookOutcome =
  'recovered' | 'not-found' | 'terminating' | 'needs-remediation' | 'read-failed';

/** Where a plan step is. */
export type StepState =
  'pending' | 'awaiting-approval' | 'running' | 'done' | 'skipped' | 'expired' | 'rejected' | 'failed';

export interface PlanStepStatus extends PlanStep {
  state: StepState;
  startedAt: string | null;
  endedAt: string | null;
  /** One line: what the step found or did (`deleted`, `already gone`, `replacement ng-a-x8 (uid …) Ready`). */
  result: string | null;
}

/** The NodeGroup's new VPSieNode that took the deleted one's place. */
export interface ReplacementRef extends VPSieNodeRef {
  uid: string;
}
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
  outcome: RunbookOutcome | LegacyRunbookOutcome | null;
  /** What failed for good, when a step did (the run then escalates). */
  error: RunbookError | null;
  /** Input `dryRun`: the run plans and acts on nothing. */
  dryRun: boolean;
  /** Who may decide (input `approvers`); empty: anyone who may signal the workflow. */
  approvers: string[];
  /** Once classified: the cause, and the evidence that proves it. */
  cause: Cause | null;
  reasons: Reason[];
  /** Other causes the evidence also shows, in order of precedence. */
  also: Cause[];
  /** The plan, each step with its state; [] before planning. */
  plan: PlanStepStatus[];
  /** The step running now, or waiting for approval. */
  currentStep: string | null;
  /** The destructive step waiting for a person: its exact target and when the wait expires. */
  pendingApproval: PendingApproval | null;
  /** Every decision received, accepted or refused, with who and when. */
  decisions: DecisionRecord[];
  /** Decisions that did not count (not on the allow-list, not the pending step, nothing pending, ...). */
  refusedDecisions: DecisionRecord[];
  /** The hand-off to people, once escalated. */
  escalation: (Escalation & { record: EscalationRecord | null }) | null;
  replacement: ReplacementRef | null;
  /** Once ended: why, in one line (who rejected, which replacement is Ready, what vanished, ...). */
  conclusion: string | null;
  /**
   * When Alertmanager said the alert about this VPSieNode resolved (its `endsAt`), from signal `alertResolved`;
   * null while it fires. Noted only: the run goes on, a remediation in progress included.
   */
  alertResolvedAt: string | null;
  /** The resolved alert (the latest, when several were). */
  alertResolved: ResolvedAlert | null;
}

/** An alert about the run's VPSieNode that stopped firing: the payload of signal `alertResolved`. */
export interface ResolvedAlert {
  alertName: string;
  /** Alertmanager's fingerprint and `startsAt`: which alert, and which firing of it. */
  fingerprint: string;
  startsAt: string;
  endsAt: string;
}

/** The `alertResolved` payload as the run keeps it, or null when it is not one (anyone may send a signal). */
export function readResolvedAlert(raw: unknown): ResolvedAlert | null {
  const r = (raw ?? {}) as Record<string, unknown>;
  const text = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
  if (!text(r.alertName) || !text(r.fingerprint) || !text(r.startsAt) || !text(r.endsAt)) return null;
  return { alertName: r.alertName, fingerprint: r.fingerprint, startsAt: r.startsAt, endsAt: r.endsAt };
}

/** The remediation fields of a status before anything is classified (and for runs that never get there). */
export function unclassified(): Pick<
  RunbookStatus,
  | 'dryRun'
  | 'approvers'
  | 'cause'
  | 'reasons'
  | 'also'
  | 'plan'
  | 'currentStep'
  | 'pendingApproval'
  | 'decisions'
  | 'refusedDecisions'
  | 'escalation'
  | 'replacement'
  | 'conclusion'
  | 'alertResolvedAt'
  | 'alertResolved'
> {
  return {
    dryRun: false,
    approvers: [],
    cause: null,
    reasons: [],
    also: [],
    plan: [],
    currentStep: null,
    pendingApproval: null,
    decisions: [],
    refusedDecisions: [],
    escalation: null,
    replacement: null,
    conclusion: null,
    alertResolvedAt: null,
    alertResolved: null,
  };
}

export interface DiagnosisReport {
  ref: VPSieNodeRef;
  outcome: RunbookOutcome | LegacyRunbookOutcome;
  /** The last observation; null only when the very first read failed (`read-failed`). */
  progress: Progress | null;
  /** The VPSieNode as last read; null when it does not exist or was never read. */
  vpsieNode: VPSieNodeSnapshot | null;
  /** Reads of the VPSieNode, over all runs of the chain. */
  checks: number;
  /** Runs in the chain: 1 plus the number of times it continued as new. */
  runs: number;
  /** What failed for good, when a step did; null otherwise. */
  error: RunbookError | null;
  /** The first run's start. */
  startedAt: string;
  finishedAt: string;
  /** Everything read for the diagnosis; absent for runs that ended before gathering it. */
  evidence?: Evidence | null;
  cause?: Cause | null;
  reasons?: Reason[];
  plan?: PlanStepStatus[];
  decisions?: DecisionRecord[];
  escalation?: (Escalation & { record: EscalationRecord | null }) | null;
  replacement?: ReplacementRef | null;
  conclusion?: string | null;
}

/** What the last observation meant for runs before the whole runbook. `null`: keep waiting for the controller. */
export function outcomeOf(progress: Progress): LegacyRunbookOutcome | null {
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
    case 'gathering-evidence':
      return `${node}: ${status.progress?.reason ?? 'past the controller limits'}; gathering evidence (VPSieNode, Events, controller logs, VPSie, Node, NodeGroup)`;
    case 'awaiting-approval': {
      const p = status.pendingApproval;
      if (!p) return `${node}: ${status.cause ?? 'cause unknown'}; waiting for approval`;
      const step = status.plan.find((s) => s.id === p.stepId);
      const who = status.approvers.length
        ? status.approvers.join(' or ')
        : 'anyone allowed to signal this workflow';
      return `${node}: ${status.cause}; waiting until ${p.expiresAt} for ${who} to approve ${p.stepId}: ${step ? describeTarget(step.target) : p.stepId}`;
    }
    case 'remediating': {
      const step = status.plan.find((s) => s.id === status.currentStep);
      if (!step) return `${node}: ${status.cause}; remediating`;
      return `${node}: ${status.cause}; ${step.id}: ${step.why}${step.wait ? ` (until ${step.wait.until})` : ''}`;
    }
    case 'escalating':
      return `${node}: ${status.cause ?? 'not classified'}; escalating: ${status.escalation?.reason ?? ''}`;
    case 'completed': {
      if (status.error) {
        return `${node}: ${status.outcome} (${status.error.step}: ${status.error.type}: ${status.error.message})`;
      }
      if (status.escalation) return `${node}: ${status.outcome} (${status.escalation.reason})`;
      if (status.conclusion) return `${node}: ${status.outcome} (${status.conclusion})`;
      if (status.cause) return `${node}: ${status.outcome} (cause ${status.cause})`;
      return `${node}: ${status.outcome} (${status.progress?.reason ?? 'no observation'})`;
    }
  }
}
