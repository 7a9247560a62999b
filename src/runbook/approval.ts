/**
 * Approval of destructive steps: what a decision looks like, when one is accepted, and the approval inputs.
 * Pure and deterministic: the workflow's update validator calls {@link checkDecision}, which must be synchronous.
 */
import { formatDuration, parseDuration, type DurationInput } from './duration';
import { InvalidInputError } from './input';

export type DecisionKind = 'approve' | 'reject';

/** What a person sends: the `decide` update's argument, and what the `approve`/`reject` signals amount to. */
export interface Decision {
  stepId: string;
  decision: DecisionKind;
  /** Who the sender says they are. A claim: anyone who may signal the workflow can send any name. */
  approver: string;
  reason?: string;
}

/** The `approve` and `reject` signals' argument: a {@link Decision} whose kind is the signal's name. */
export type ApprovalSignal = Omit<Decision, 'decision'>;

/** The step that waits for a person. */
export interface PendingApproval {
  stepId: string;
  /** The plan step's kind, e.g. "delete-vpsienode"; `autoApprove` lists kinds. */
  kind: string;
  /** Exactly what the step will touch (namespace/name/UID, VM id, field before → after): JSON, shown as is. */
  target: unknown;
  /** What approving does, in one sentence naming the target (the plan step's `why`); absent for bare steps. */
  action?: string;
  /** Workflow time, ISO 8601. */
  requestedAt: string;
  /** When the wait gives up and the run escalates; workflow time, ISO 8601. */
  expiresAt: string;
}

/** The memo key of a run's (or sweep's) pending approval, as {@link PendingApproval}; absent when none waits. */
export const PENDING_APPROVAL_MEMO_KEY = 'pendingApproval';

/** How a decision arrived: the `decide` update, an `approve`/`reject` signal, or `autoApprove`. */
export type DecisionChannel = 'update' | 'signal' | 'auto';

/** One decision as the run recorded it: who, what, when, and whether it counted (and if not, why). */
export interface DecisionRecord {
  /** As sent (cut to {@link MAX_STEP_ID_LENGTH}); null when the sender sent no string. */
  stepId: string | null;
  decision: DecisionKind | null;
  /** As sent (cut to {@link MAX_APPROVER_LENGTH}); null for `autoApprove` or when no string was sent. */
  approver: string | null;
  /** As sent, cut to {@link MAX_REASON_BYTES}; for `autoApprove`, which input allowed it. */
  reason: string | null;
  via: DecisionChannel;
  /** Workflow time, ISO 8601. */
  at: string;
  accepted: boolean;
  /** Why it was refused; null when accepted. */
  refusal: string | null;
}

/** The `decide` update's result: the accepted decision as recorded. */
export type DecisionResult = DecisionRecord;

export type DecisionCheck =
  | { accepted: true; decision: Decision }
  | {
      accepted: false;
      /** The field at fault: a payload field, or `pending` when the run awaits nothing. */
      field: 'payload' | 'stepId' | 'decision' | 'approver' | 'reason' | 'pending';
      message: string;
    };

/** A DNS subdomain, an e-mail address or a Kubernetes user name all fit. */
export const MAX_APPROVER_LENGTH = 253;
/** Plan step ids are short; the bound keeps a refused payload from bloating `status`. */
export const MAX_STEP_ID_LENGTH = 253;
/** 1 KiB of UTF-8: a sentence or three for the audit trail, not a document. */
export const MAX_REASON_BYTES = 1024;
/** An allow-list is a team, not a directory. */
export const MAX_APPROVERS = 100;

export const DEFAULT_APPROVAL_TTL_MS = 3_600_000;
/**
 * Expiry never acts (the run escalates), so a short TTL is safe; the floor only catches a unit slip such as
 * `60` (milliseconds) meant as a minute, which no person could meet.
 */
export const MIN_APPROVAL_TTL_MS = 10_000;
/**
 * A week covers a long weekend with margin; past that the diagnosis is stale and the alert should be raised
 * afresh (the target is re-checked by each step's precondition anyway).
 */
export const MAX_APPROVAL_TTL_MS = 7 * 86_400_000;

// C0, DEL and C1 controls: they make a name that reads like another in logs and the UI.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** UTF-8 length without TextEncoder, which the workflow sandbox need not offer. */
export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The longest prefix of `s` that fits in `max` UTF-8 bytes, never splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  let n = 0;
  let out = '';
  for (const ch of s) {
    const len = utf8Length(ch);
    if (n + len > max) break;
    n += len;
    out += ch;
  }
  return out;
}

/** Why `name` cannot be an approver, or null. Shared by decisions and the allow-list input. */
function approverProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name === '') return `must be a non-empty string, got ${show(name)}`;
  if (name.length > MAX_APPROVER_LENGTH) {
    return `must be at most ${MAX_APPROVER_LENGTH} characters, got ${name.length}`;
  }
  if (name.trim() !== name) return `must not start or end with white space, got ${show(name)}`;
  if (CONTROL.test(name)) return `must not contain control characters, got ${show(name)}`;
  return null;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Whether a decision counts. Checks, in order: the payload's shape (each field named), the approver against the
 * allow-list, that a step is pending, and that the decision is for that step.
 *
 * The allow-list matches exactly, case included: the approver is an unauthenticated claim and the list is the
 * only narrowing the run applies, so it must never admit a name nobody wrote down (case folding is
 * locale-dependent and "Alice" may be another account than "alice" in the identity provider). Names with
 * surrounding white space or control characters are refused rather than trimmed, for the same reason.
 * An empty allow-list admits anyone.
 */
export function checkDecision(
  input: unknown,
  pending: PendingApproval | null,
  allowList: readonly string[],
): DecisionCheck {
  if (!isRecord(input)) {
    return { accepted: false, field: 'payload', message: `decision must be an object, got ${show(input)}` };
  }
  const { stepId, decision, approver, reason } = input;
  if (typeof stepId !== 'string' || stepId === '' || stepId.length > MAX_STEP_ID_LENGTH) {
    return {
      accepted: false,
      field: 'stepId',
      message: `stepId must be a non-empty string of at most ${MAX_STEP_ID_LENGTH} characters, got ${show(stepId)}`,
    };
  }
  if (decision !== 'approve' && decision !== 'reject') {
    return {
      accepted: false,
      field: 'decision',
      message: `decision must be "approve" or "reject", got ${show(decision)}`,
    };
  }
  const problem = approverProblem(approver);
  if (problem) return { accepted: false, field: 'approver', message: `approver ${problem}` };
  if (reason !== undefined && reason !== null) {
    if (typeof reason !== 'string') {
      return { accepted: false, field: 'reason', message: `reason must be a string, got ${show(reason)}` };
    }
    const bytes = utf8Length(reason);
    if (bytes > MAX_REASON_BYTES) {
      return {
        accepted: false,
        field: 'reason',
        message: `reason must be at most ${MAX_REASON_BYTES} bytes of UTF-8 (1 KiB), got ${bytes}`,
      };
    }
  }
  const name = approver as string;
  if (allowList.length > 0 && !allowList.includes(name)) {
    const listed =
      allowList.length <= 10 ? allowList.join(', ') : `${allowList.slice(0, 10).join(', ')}, ...`;
    return {
      accepted: false,
      field: 'approver',
      message: `approver ${show(name)} is not on the allow-list (${listed}); names match exactly, case included`,
    };
  }
  if (!pending) {
    return {
      accepted: false,
      field: 'pending',
      message: `no approval is pending: nothing to ${decision} (stepId ${show(stepId)})`,
    };
  }
  if (stepId !== pending.stepId) {
    return {
      accepted: false,
      field: 'stepId',
      message: `stepId ${show(stepId)} is not the pending step: ${show(pending.stepId)} (${pending.kind}) awaits approval`,
    };
  }
  const accepted: Decision = { stepId, decision, approver: name };
  if (typeof reason === 'string' && reason !== '') accepted.reason = reason;
  return { accepted: true, decision: accepted };
}

/**
 * The record of a decision the run received, accepted or not. A refused payload may be anything, so only its
 * strings are kept, each cut to its bound: a flood of oversized signals must not bloat `status`.
 */
export function recordDecision(
  input: unknown,
  check: DecisionCheck,
  via: DecisionChannel,
  at: string,
): DecisionRecord {
  const r = isRecord(input) ? input : {};
  const text = (v: unknown, max: number): string | null => (typeof v === 'string' ? v.slice(0, max) : null);
  return {
    stepId: text(r.stepId, MAX_STEP_ID_LENGTH),
    decision: r.decision === 'approve' || r.decision === 'reject' ? r.decision : null,
    approver: text(r.approver, MAX_APPROVER_LENGTH),
    reason: typeof r.reason === 'string' && r.reason !== '' ? truncateUtf8(r.reason, MAX_REASON_BYTES) : null,
    via,
    at,
    accepted: check.accepted,
    refusal: check.accepted ? null : check.message,
  };
}

/** The approval inputs, as callers write them. */
export interface ApprovalOptions {
  /** Who may decide (exact names, case included); empty or absent: anyone who may signal the workflow. */
  approvers?: string[];
  /** How long a step waits for a decision before the run escalates; default 1h, between 10s and 7 days. */
  approvalTtl?: DurationInput;
  /** Step kinds that need no person; default none. */
  autoApprove?: string[];
}

export interface ResolvedApprovalOptions {
  allowList: string[];
  ttlMs: number;
  autoApprove: string[];
}

/**
 * Validates the approval inputs. `knownKinds` are the plan's step kinds (the plan module owns them); `path` is
 * where the options sit in the input, for the errors. Throws {@link InvalidInputError} naming every bad field.
 */
export function resolveApprovalOptions(
  options: ApprovalOptions | undefined,
  knownKinds: readonly string[],
  path = 'options',
): ResolvedApprovalOptions {
  const o = (options ?? {}) as Record<string, unknown>;
  const problems: string[] = [];

  let allowList: string[] = [];
  if (o.approvers !== undefined) {
    if (!Array.isArray(o.approvers)) {
      problems.push(`${path}.approvers must be a list of names, got ${show(o.approvers)}`);
    } else if (o.approvers.length > MAX_APPROVERS) {
      problems.push(`${path}.approvers must list at most ${MAX_APPROVERS} names, got ${o.approvers.length}`);
    } else {
      o.approvers.forEach((name, i) => {
        const problem = approverProblem(name);
        if (problem) problems.push(`${path}.approvers[${i}] ${problem}`);
      });
      allowList = [...new Set(o.approvers as string[])];
    }
  }

  let ttlMs = DEFAULT_APPROVAL_TTL_MS;
  if (o.approvalTtl !== undefined) {
    const what = `${path}.approvalTtl`;
    try {
      ttlMs = parseDuration(o.approvalTtl, what);
      if (ttlMs < MIN_APPROVAL_TTL_MS || ttlMs > MAX_APPROVAL_TTL_MS) {
        problems.push(
          `${what} must be between ${formatDuration(MIN_APPROVAL_TTL_MS)} and 7 days, got ${show(o.approvalTtl)}`,
        );
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
  }

  let autoApprove: string[] = [];
  if (o.autoApprove !== undefined) {
    if (!Array.isArray(o.autoApprove)) {
      problems.push(`${path}.autoApprove must be a list of step kinds, got ${show(o.autoApprove)}`);
    } else {
      const unknown = o.autoApprove.filter((k) => typeof k !== 'string' || !knownKinds.includes(k));
      if (unknown.length) {
        problems.push(
          `${path}.autoApprove: unknown step kind(s) ${unknown.map(show).join(', ')}; known: ${knownKinds.join(', ')}`,
        );
      }
      autoApprove = [...new Set(o.autoApprove as string[])];
    }
  }

  if (problems.length) throw new InvalidInputError(problems.join('; '));
  return { allowList, ttlMs, autoApprove };
}
