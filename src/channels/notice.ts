/**
 * A pending approval as the channels announce it: the exact step, its target, the expiry, who may approve, and
 * the commands that approve or reject it. Pure.
 */
import { z } from 'zod';
import { utf8Length } from '../runbook/approval';
import { InvalidInputError, validateRef } from '../runbook/input';
import type { OrphanMachine } from '../runbook/orphans';
import { describeTarget, type StepTarget } from '../runbook/plan';
import type { VPSieNodeRef } from '../runbook/types';

/** What a notice with no VPSieNode (`ref: null`) is about. */
export const SWEEP_SUBJECT = 'the orphaned-VM sweep';

/**
 * The largest target, as UTF-8 JSON: a sweep in mode `all` shows up to 100 machines (about 1 KB each), and a
 * document carrying it stays far within PagerDuty's and the webhook's 512 KB.
 */
export const MAX_TARGET_BYTES = 256 * 1024;

export interface ApprovalNotice {
  workflowId: string;
  /** The VPSieNode the run is about; null: the orphaned-VM sweep, which is about no VPSieNode. */
  ref: VPSieNodeRef | null;
  /** The plan step waiting for a person, e.g. `delete-vpsienode`. */
  stepId: string;
  /** Its kind (what `autoApprove` lists). */
  kind: string;
  /** Exactly what the step touches, as `status.pendingApproval.target` shows it. */
  target: unknown;
  /** What approving does, in one sentence naming the target; null when the step has none. */
  action: string | null;
  /** When the wait gives up and the run escalates (ISO 8601). */
  expiresAt: string;
  /** Who may decide; empty: anyone who may signal the workflow. */
  approvers: string[];
}

const text = (max: number) => z.string().trim().min(1, 'must be a non-empty string').max(max);

const noticeSchema = z.object({
  workflowId: text(1000),
  // null: the orphaned-VM sweep; left out is an error, so a runbook that forgot its VPSieNode is not a sweep
  ref: z.record(z.string(), z.unknown(), { error: 'must be {namespace, name}' }).nullable(),
  stepId: text(253),
  kind: text(253),
  target: z.unknown().refine((t) => t !== undefined, 'is required'),
  action: z.string().max(4000).nullish(),
  expiresAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 time'),
  approvers: z.array(z.string().max(253)).max(100).default([]),
});

/** `approval.target[0].kind: message`: the field as a person writes its path, and what is wrong with it. */
export function fieldProblem(prefix: string, issue: z.core.$ZodIssue): string {
  const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  return `${prefix}${path}: ${issue.message}`;
}

/** Checks an approval notice from a workflow; throws an InvalidInputError naming the first bad field. */
export function validateApprovalNotice(input: unknown): ApprovalNotice {
  const parsed = noticeSchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(fieldProblem('approval', parsed.error.issues[0]));
  let ref: VPSieNodeRef | null = null;
  try {
    if (parsed.data.ref !== null) ref = validateRef(parsed.data.ref);
  } catch (err) {
    throw new InvalidInputError(`approval.ref.${(err as Error).message}`);
  }
  const bytes = utf8Length(JSON.stringify(parsed.data.target));
  if (bytes > MAX_TARGET_BYTES)
    throw new InvalidInputError(
      `approval.target must be at most ${MAX_TARGET_BYTES} bytes of JSON, got ${bytes}`,
    );
  return {
    workflowId: parsed.data.workflowId,
    ref,
    stepId: parsed.data.stepId,
    kind: parsed.data.kind,
    target: parsed.data.target,
    action: parsed.data.action ?? null,
    expiresAt: new Date(parsed.data.expiresAt).toISOString(),
    approvers: parsed.data.approvers,
  };
}

/** Quoted for a POSIX shell when it needs to be. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** How a person reads the whole run, the bundle included. */
export function statusCommand(workflowId: string): string {
  return `temporal workflow query --workflow-id ${shellQuote(workflowId)} --type status`;
}

/** The Temporal CLI commands that approve or reject the step (the `decide` update); `<you>` is the approver. */
export function approvalCommands(workflowId: string, stepId: string): { approve: string; reject: string } {
  const command = (decision: 'approve' | 'reject') =>
    `temporal workflow update execute --workflow-id ${shellQuote(workflowId)} --name decide --input ${shellQuote(
      `{"stepId": ${JSON.stringify(stepId)}, "decision": "${decision}", "approver": "<you>"}`,
    )}`;
  return { approve: command('approve'), reject: command('reject') };
}

/** A machine as the orphaned-VM sweep shows it in `pendingApproval.target`. */
function isSweepMachine(t: unknown): t is OrphanMachine {
  if (typeof t !== 'object' || t === null) return false;
  const m = t as Partial<Record<keyof OrphanMachine, unknown>>;
  return (m.kind === 'cluster-node' || m.kind === 'vm') && typeof m.identifier === 'string';
}

/** One machine of a sweep in words: `VM 4242 ng-a-0a1b2c3d`, `cluster node ng-a-… of VPSie cluster c-1`. */
export function describeSweepMachine(m: OrphanMachine): string {
  const name = m.hostname || m.identifier;
  return m.kind === 'cluster-node'
    ? `cluster node ${name} of VPSie cluster ${m.resourceIdentifier ?? 'unknown'}`
    : `VM ${m.id} ${name}`;
}

/** At most `max` characters of `parts` joined, then how many were left out. */
function listed(parts: string[], max: number): string {
  let text = '';
  for (const [i, part] of parts.entries()) {
    const next = text ? `${text}; ${part}` : part;
    if (next.length > max)
      return text
        ? `${text}; … and ${parts.length - i} more`
        : `${part.slice(0, max)}… and ${parts.length - i - 1} more`;
    text = next;
  }
  return text;
}

/** The target in one line when it is a plan target or a sweep's machine(s), else its JSON. */
export function describeNoticeTarget(target: unknown): string {
  if (isSweepMachine(target)) return `${describeSweepMachine(target)} (identifier ${target.identifier})`;
  if (Array.isArray(target) && target.length > 0 && target.every(isSweepMachine))
    return `${target.length} machine${target.length === 1 ? '' : 's'}: ${listed(target.map(describeSweepMachine), 1500)}`;
  const kinds = ['VPSieNode', 'VM', 'ClusterNode', 'NodeGroup', 'Replacement', 'Escalation'];
  if (
    typeof target === 'object' &&
    target !== null &&
    kinds.includes(String((target as { kind?: unknown }).kind))
  )
    try {
      return describeTarget(target as StepTarget);
    } catch {
      // an unexpected shape: shown as JSON
    }
  const json = JSON.stringify(target) ?? 'none';
  return json.length > 500 ? `${json.slice(0, 500)}…` : json;
}
