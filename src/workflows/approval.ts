/**
 * The approval gate: a destructive step waits here for a person's decision, sent by the `decide` update or the
 * `approve`/`reject` signals, until the TTL runs out. Workflow code: deterministic, no I/O.
 */
import { ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
import {
  checkDecision,
  recordDecision,
  type DecisionChannel,
  type DecisionKind,
  type DecisionRecord,
  type PendingApproval,
} from '../runbook';
import { approveSignal, decideUpdate, rejectSignal } from './messages';

/** Refused decisions kept in state; older ones are dropped, so a flood of bad signals cannot grow `status`. */
export const MAX_REFUSED_RECORDS = 50;

export interface ApprovalGateOptions {
  /** Exact approver names; empty: anyone who may signal the workflow. */
  allowList: readonly string[];
  /** How long a step waits. The input parser bounds it (resolveApprovalOptions); here any positive wait goes. */
  ttlMs: number;
  /** Step kinds that need no person. */
  autoApprove: readonly string[];
  /** Called whenever the pending approval changes (set, decided, expired): search attributes, current details. */
  onPendingChange?: (pending: PendingApproval | null) => void;
}

export interface ApprovalStep {
  stepId: string;
  kind: string;
  /** Exactly what the step will touch; shown to the approver as is. */
  target: unknown;
  /** One sentence: what approving does. */
  action?: string;
}

/** `abandoned`: the caller's `abandon` said the step no longer makes sense (its target vanished). */
export type ApprovalResult = 'approved' | 'rejected' | 'expired' | 'abandoned';

export interface ApprovalRequestOptions {
  /** Checked whenever the workflow wakes; true ends the wait with `abandoned`. */
  abandon?: () => boolean;
  /** The timer's summary in the UI. */
  summary?: string;
}

export interface ApprovalState {
  pendingApproval: PendingApproval | null;
  /** Every decision received, in order: accepted ones, and refused signals (see refusedDecisions). */
  decisions: DecisionRecord[];
  /** Decisions that did not count, by signal or update, with why (the latest MAX_REFUSED_RECORDS). */
  refusedDecisions: DecisionRecord[];
}

export interface ApprovalGate {
  /** Waits for a decision on `step` (or approves it at once if its kind is auto-approved). One at a time. */
  request(step: ApprovalStep, options?: ApprovalRequestOptions): Promise<ApprovalResult>;
  /** A copy, for the `status` query. */
  state(): ApprovalState;
}

/** Registers the handlers for the approval messages; call once, at the start of the workflow. */
export function createApprovalGate(options: ApprovalGateOptions): ApprovalGate {
  if (!(options.ttlMs > 0)) throw new Error(`approval TTL must be positive, got ${options.ttlMs}`);
  const allowList = [...options.allowList];
  const now = (): string => new Date().toISOString();

  let pending: PendingApproval | null = null;
  let outcome: DecisionKind | null = null;
  const decisions: DecisionRecord[] = [];

  const setPending = (p: PendingApproval | null): void => {
    pending = p;
    options.onPendingChange?.(p);
  };

  /** Checks and records a decision; the accepted one ends the wait. */
  const receive = (input: unknown, via: DecisionChannel): DecisionRecord => {
    const check = checkDecision(input, pending, allowList);
    const record = recordDecision(input, check, via, now());
    decisions.push(record);
    if (check.accepted) {
      outcome = check.decision.decision;
      setPending(null);
    } else {
      const refused = decisions.filter((d) => !d.accepted);
      if (refused.length > MAX_REFUSED_RECORDS) decisions.splice(decisions.indexOf(refused[0]), 1);
    }
    return record;
  };

  const fromSignal = (decision: DecisionKind) => (payload: unknown) => {
    // The signal's name is the decision, whatever the payload says.
    const input =
      typeof payload === 'object' && payload !== null && !Array.isArray(payload)
        ? { ...payload, decision }
        : payload;
    receive(input, 'signal');
  };
  setHandler(approveSignal, fromSignal('approve'));
  setHandler(rejectSignal, fromSignal('reject'));

  // No validator: a refusal by a validator leaves no trace in the run, and every refused decision (someone off
  // the list, the wrong step, a second approval) must be recorded. The handler checks, records, and fails the
  // update with the reason; `decisions` keeps at most MAX_REFUSED_RECORDS refusals.
  setHandler(decideUpdate, (input) => {
    const record = receive(input, 'update');
    if (!record.accepted) {
      return Promise.reject(ApplicationFailure.nonRetryable(record.refusal ?? 'refused', 'DecisionRefused'));
    }
    return Promise.resolve(record);
  });

  return {
    async request(step, requestOptions = {}) {
      if (pending)
        throw new Error(`approval for ${step.stepId} requested while ${pending.stepId} is pending`);
      const at = Date.now();
      if (options.autoApprove.includes(step.kind)) {
        decisions.push({
          stepId: step.stepId,
          decision: 'approve',
          approver: null,
          reason: `step kind "${step.kind}" is in autoApprove`,
          via: 'auto',
          at: new Date(at).toISOString(),
          accepted: true,
          refusal: null,
        });
        return 'approved';
      }
      outcome = null;
      setPending({
        stepId: step.stepId,
        kind: step.kind,
        target: step.target,
        ...(step.action ? { action: step.action } : {}),
        requestedAt: new Date(at).toISOString(),
        expiresAt: new Date(at + options.ttlMs).toISOString(),
      });
      // A getter: TypeScript would otherwise keep `outcome` narrowed to null across the await.
      const decision = (): DecisionKind | null => outcome;
      const abandon = requestOptions.abandon ?? (() => false);
      const decided = await condition(
        () => decision() !== null || abandon(),
        options.ttlMs,
        requestOptions.summary ? { summary: requestOptions.summary } : {},
      );
      if (decision() === null) {
        setPending(null);
        return decided ? 'abandoned' : 'expired';
      }
      return decision() === 'approve' ? 'approved' : 'rejected';
    },
    state() {
      return {
        pendingApproval: pending ? { ...pending } : null,
        decisions: decisions.map((d) => ({ ...d })),
        refusedDecisions: decisions.filter((d) => !d.accepted).map((d) => ({ ...d })),
      };
    },
  };
}
