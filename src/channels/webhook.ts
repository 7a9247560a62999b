/**
 * The generic JSON webhook: the project's own documents, POSTed as JSON to ESCALATION_WEBHOOK_URL.
 *
 * - `vpsie-runbook.escalation` (version 1): `type`, `version`, `sentAt`, then the evidence bundle's fields
 *   (`workflowId`, `runId`, `vpsieNode`, `nodeGroup`, `audience`, `routedBecause`, `severity`, `cause`, `kind`,
 *   `reason`, `step`, `summary`, `observedAt`, `evidence`, `reasons`, `also`, `error`, `vpsieNodeYaml`, `events`,
 *   `controllerLogs`, `machine`, `node`, `plan`, `decisions`, `truncated`), at most 256 KiB.
 * - `vpsie-runbook.approval-pending` (version 1): `type`, `version`, `sentAt`, `workflowId`, `vpsieNode`
 *   ({namespace, name}, or null for the orphaned-VM sweep), `approval` {stepId, kind, target, targetDescription,
 *   action, expiresAt, approvers, approveCommand, rejectCommand}.
 *
 * Each request carries `Idempotency-Key`, the same for every attempt at one document, so a receiver can drop
 * the copy a lost answer made us send again.
 */
import { createHash } from 'node:crypto';
import type { EvidenceBundle } from '../runbook/evidence-bundle';
import { postJson, type PostOptions } from './http';
import { approvalCommands, describeNoticeTarget, type ApprovalNotice } from './notice';

export const WEBHOOK_DOCUMENT_VERSION = 1;

export type EscalationDocument = {
  type: 'vpsie-runbook.escalation';
  version: typeof WEBHOOK_DOCUMENT_VERSION;
  sentAt: string;
} & EvidenceBundle;

export interface ApprovalDocument {
  type: 'vpsie-runbook.approval-pending';
  version: typeof WEBHOOK_DOCUMENT_VERSION;
  sentAt: string;
  workflowId: string;
  /** The VPSieNode the run is about; null: the orphaned-VM sweep, whose target is machines in VPSie. */
  vpsieNode: { namespace: string; name: string } | null;
  approval: {
    stepId: string;
    kind: string;
    target: unknown;
    targetDescription: string;
    action: string | null;
    expiresAt: string;
    approvers: string[];
    approveCommand: string;
    rejectCommand: string;
  };
}

export function escalationDocument(bundle: EvidenceBundle, sentAt: string): EscalationDocument {
  return { type: 'vpsie-runbook.escalation', version: WEBHOOK_DOCUMENT_VERSION, sentAt, ...bundle };
}

export function approvalDocument(n: ApprovalNotice, sentAt: string): ApprovalDocument {
  const { approve, reject } = approvalCommands(n.workflowId, n.stepId);
  return {
    type: 'vpsie-runbook.approval-pending',
    version: WEBHOOK_DOCUMENT_VERSION,
    sentAt,
    workflowId: n.workflowId,
    vpsieNode: n.ref,
    approval: {
      stepId: n.stepId,
      kind: n.kind,
      target: n.target,
      targetDescription: describeNoticeTarget(n.target),
      action: n.action,
      expiresAt: n.expiresAt,
      approvers: n.approvers,
      approveCommand: approve,
      rejectCommand: reject,
    },
  };
}

/** The same parts give the same key: every attempt at one document shares it. */
export function idempotencyKey(...parts: (string | null)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}

/** One POST of a document. */
export async function postToWebhook(
  url: string,
  document: EscalationDocument | ApprovalDocument,
  key: string,
  opts: PostOptions,
): Promise<string> {
  const answer = await postJson('webhook', url, document, {
    ...opts,
    headers: { ...opts.headers, 'Idempotency-Key': key },
  });
  return `delivered to the webhook (HTTP ${answer.status})`;
}
