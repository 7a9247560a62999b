/**
 * Escalation (issue 7 item 5): the run stops and hands the VPSieNode to a person, saying why and on what evidence.
 * Here only the record and its message; the activity `escalate` writes it where people look (a Kubernetes Event
 * now; Slack / PagerDuty / webhooks in issue 8). Pure, so the workflow can build and check an escalation itself.
 */
import { truncateUtf8, utf8Length } from './approval';
import { CAUSES } from './classify';
import { sanitizeLogLine } from './evidence';
import { InvalidInputError, validateRef } from './input';

export const ESCALATION_KINDS = [
  'cause',
  'wait-expired',
  'approval-expired',
  'precondition-failed',
  'step-failed',
  'read-failed',
  'storm',
  'lease-timeout',
] as const;

export type EscalationKind =
  | 'cause' // the cause itself needs a person (SSHKeyInvalid, blocking VMCreationFailed, Unknown, no NodeGroup…)
  | 'wait-expired' // a remediation wait ran out (machine not gone, no replacement, replacement not Ready)
  | 'approval-expired' // nobody decided within the approval TTL
  | 'precondition-failed' // the target changed after diagnosis (stale UID, NodeGroup version changed, VM claimed)
  | 'step-failed' // an activity failed for good
  | 'read-failed' // the VPSieNode itself could not be read
  | 'storm' // too many VPSieNodes of its NodeGroup failed at once: remediation stopped for the group
  | 'lease-timeout'; // the NodeGroup's lease was not granted in time (other nodes of the group are being replaced)

export interface Escalation {
  workflowId: string;
  runId: string;
  ref: { namespace: string; name: string };
  /** UID of the VPSieNode as diagnosed, when known (the Event's involvedObject.uid). */
  uid: string | null;
  /** The Cause name from ./classify, or null before classification. */
  cause: string | null;
  kind: EscalationKind;
  /** One or two sentences for a person: why the run stopped and what a person must do. */
  reason: string;
  /** The plan step that escalated, if any (e.g. 'wait-replacement-ready'). */
  step: string | null;
  /** One line per piece of evidence (the classifier's reasons, unread sources, …). */
  evidence: string[];
}

export interface EscalationRecord {
  /** ISO 8601. */
  recordedAt: string;
  /**
   * Where it was recorded: the Kubernetes Event first, then each channel of the route (issue 8), one entry each;
   * `ok: false` with the reason when a channel refused it for good or kept failing through every attempt.
   */
  channels: {
    channel: 'kubernetes-event' | 'webhook' | 'slack' | 'pagerduty';
    ok: boolean;
    detail: string;
  }[];
  /** Who it was for and why (./routing), when escalation channels are configured. */
  route?: { audience: 'vpsie-support' | 'platform-team'; why: string; channels: string[] };
}

/** The Event reason, as `kubectl get events --field-selector reason=RunbookEscalated` finds them. */
export const ESCALATION_EVENT_REASON = 'RunbookEscalated';

/**
 * Longest Event message, in UTF-8 bytes. The apiserver refuses a longer note through events.k8s.io/v1, and a
 * longer message on a core/v1 Event that carries eventTime (`NoteLengthLimit`, pkg/apis/core/validation/events.go);
 * keeping every message within it lets the Event read whole through either API and in `kubectl describe`.
 */
export const MAX_EVENT_MESSAGE_BYTES = 1024;

/** Most bytes of the workflow id in the message's last line. */
const MAX_TRAILER_ID_BYTES = 400;

function fail(field: string, must: string, value: unknown): never {
  throw new InvalidInputError(`escalation${field ? `.${field}` : ''} ${must}, got ${shown(value)}`);
}

function shown(value: unknown): string {
  const text = value === undefined ? 'undefined' : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}

function text(input: Record<string, unknown>, field: string): string {
  const v = input[field];
  if (typeof v !== 'string' || v.trim() === '') fail(field, 'must be a non-empty string', v);
  return v;
}

/** A field that may be unknown: null (an absent field is read as null, as JSON drops undefined). */
function optionalText(input: Record<string, unknown>, field: string): string | null {
  const v = input[field];
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.trim() === '') fail(field, 'must be null or a non-empty string', v);
  return v;
}

/**
 * Checks an escalation as it arrives from a workflow and returns a clean copy (unknown fields dropped). Throws an
 * InvalidInputError naming the first bad field (`escalation.ref.name …`, `escalation.evidence[2] …`).
 */
export function validateEscalation(input: unknown): Escalation {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    fail('', 'must be an object', input);
  const e = input as Record<string, unknown>;
  const workflowId = text(e, 'workflowId');
  const runId = text(e, 'runId');
  if (typeof e.ref !== 'object' || e.ref === null) fail('ref', 'must be {namespace, name}', e.ref);
  let ref: Escalation['ref'];
  try {
    ref = validateRef(e.ref);
  } catch (err) {
    throw new InvalidInputError(`escalation.ref.${(err as Error).message}`);
  }
  const uid = optionalText(e, 'uid');
  const cause = optionalText(e, 'cause');
  if (cause !== null && !(CAUSES as readonly string[]).includes(cause))
    fail('cause', `must be null or one of ${CAUSES.join(', ')}`, cause);
  const kind = e.kind;
  if (typeof kind !== 'string' || !(ESCALATION_KINDS as readonly string[]).includes(kind))
    fail('kind', `must be one of ${ESCALATION_KINDS.join(', ')}`, kind);
  const reason = text(e, 'reason');
  const step = optionalText(e, 'step');
  if (!Array.isArray(e.evidence)) fail('evidence', 'must be an array of strings', e.evidence);
  const evidence = e.evidence.map((line: unknown, i) => {
    if (typeof line !== 'string') fail(`evidence[${i}]`, 'must be a string', line);
    return line;
  });
  return {
    workflowId,
    runId,
    ref,
    uid,
    cause,
    kind: kind as EscalationKind,
    reason,
    step,
    evidence,
  };
}

/** Single line, credentials redacted: evidence may quote the controller's log. */
const oneLine = (s: string) => sanitizeLogLine(s.replace(/\s*[\r\n]+\s*/g, ' ').trim());

/**
 * The Event message: why the run stopped, then cause / step / kind, then one line per piece of evidence, in
 * order. Within MAX_EVENT_MESSAGE_BYTES: when it does not fit, whole lines are dropped from the end and the
 * message ends with "… (N more lines in workflow <id>)", where the whole escalation is (its status and result).
 */
export function escalationMessage(e: Escalation): string {
  const lines = [
    oneLine(e.reason),
    `Cause: ${e.cause ?? 'not classified'}; step: ${e.step ?? 'none'}; kind: ${e.kind}.`,
    ...(e.evidence.length > 0 ? ['Evidence:', ...e.evidence.map((l) => `- ${oneLine(l)}`)] : []),
  ];
  const full = lines.join('\n');
  if (utf8Length(full) <= MAX_EVENT_MESSAGE_BYTES) return full;

  // Temporal allows workflow ids of 1000 bytes; the project's are under 340. A longer one is cut, so that the
  // reason always keeps room.
  const id =
    utf8Length(e.workflowId) > MAX_TRAILER_ID_BYTES
      ? `${truncateUtf8(e.workflowId, MAX_TRAILER_ID_BYTES - 3)}…`
      : e.workflowId;
  const trailer = (more: number) => `… (${more} more lines in workflow ${id})`;
  // Keep the most whole lines that fit beside the trailer; the first line (the reason) is always kept in part.
  let kept = lines.length - 1;
  let size = utf8Length(lines.slice(0, kept).join('\n'));
  while (kept > 1 && size + 1 + utf8Length(trailer(lines.length - kept)) > MAX_EVENT_MESSAGE_BYTES) {
    kept -= 1;
    size = utf8Length(lines.slice(0, kept).join('\n'));
  }
  const tail = trailer(lines.length - kept);
  let head = lines.slice(0, kept).join('\n');
  if (utf8Length(head) + 1 + utf8Length(tail) > MAX_EVENT_MESSAGE_BYTES) {
    // only the reason is left and even it is too long: cut it, marked with an ellipsis
    const room = MAX_EVENT_MESSAGE_BYTES - 1 - utf8Length(tail) - utf8Length('…');
    head = `${truncateUtf8(head, Math.max(0, room))}…`;
  }
  return `${head}\n${tail}`;
}
