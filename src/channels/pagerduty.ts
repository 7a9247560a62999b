/**
 * PagerDuty Events API v2: `POST /v2/enqueue` with `{routing_key, event_action, dedup_key, payload}`. The
 * `dedup_key` is the workflow id (`provisioning-failed/<namespace>/<name>`, stable per VPSieNode), so a re-sent
 * trigger joins the open incident instead of paging again, and a later run of the same VPSieNode that recovers
 * resolves it with the same key. Limits (domain.md §5): routing key 32 characters, summary ≤ 1024, dedup_key
 * ≤ 255, the whole event ≤ 512 KB. Answers: 202 accepted; 400 never retried; 429 and 5xx retried.
 */
import { createHash } from 'node:crypto';
import {
  capBundle,
  MAX_SUMMARY_LENGTH,
  type EvidenceBundle,
  type Severity,
} from '../runbook/evidence-bundle';
import { utf8Length } from '../runbook/approval';
import { postJson, type PostOptions } from './http';
import { approvalCommands, describeNoticeTarget, SWEEP_SUBJECT, type ApprovalNotice } from './notice';

export const DEFAULT_PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** `payload.source` of the orphaned-VM sweep's approvals, which are about no VPSieNode. */
export const SWEEP_SOURCE = 'vpsie-runbook/orphaned-vm-cleanup';

export const PAGERDUTY_LIMITS = {
  routingKey: 32,
  summary: MAX_SUMMARY_LENGTH,
  dedupKey: 255,
  eventBytes: 512 * 1024,
} as const;

export type EventAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagerDutyEvent {
  routing_key: string;
  event_action: EventAction;
  dedup_key: string;
  client?: string;
  payload?: {
    summary: string;
    source: string;
    severity: Severity;
    timestamp?: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details?: unknown;
  };
}

/** An integration key: 32 letters and digits. */
export function isRoutingKey(key: string): boolean {
  return /^[A-Za-z0-9]{32}$/.test(key);
}

/**
 * The dedup key of a run's escalation: the workflow id, which is the same for every run of one VPSieNode. A
 * workflow id longer than 255 characters (possible with a 253-character name) keeps its start and ends with a
 * hash of the whole, so it stays unique and stable.
 */
export function pagerDutyDedupKey(workflowId: string): string {
  if (workflowId.length <= PAGERDUTY_LIMITS.dedupKey) return workflowId;
  const hash = createHash('sha256').update(workflowId).digest('hex').slice(0, 16);
  return `${workflowId.slice(0, PAGERDUTY_LIMITS.dedupKey - hash.length - 1)}#${hash}`;
}

/** A pending approval's own key, so it never merges with the escalation's incident. */
export function approvalDedupKey(workflowId: string, stepId: string): string {
  return pagerDutyDedupKey(`${workflowId}/approval/${stepId}`);
}

const eventBytes = (e: PagerDutyEvent) => utf8Length(JSON.stringify(e));
const fit = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/** The escalation as a trigger; the bundle is `custom_details`, re-capped if the event would pass 512 KB. */
export function pagerDutyTrigger(bundle: EvidenceBundle, routingKey: string, at: string): PagerDutyEvent {
  const event = (details: EvidenceBundle): PagerDutyEvent => ({
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: pagerDutyDedupKey(bundle.workflowId),
    client: 'vpsie-runbook',
    payload: {
      summary: fit(bundle.summary, PAGERDUTY_LIMITS.summary),
      source: fit(`vpsienode/${bundle.vpsieNode.namespace}/${bundle.vpsieNode.name}`, 1024),
      severity: bundle.severity,
      timestamp: at,
      component: fit(bundle.nodeGroup ? `nodegroup/${bundle.nodeGroup}` : 'vpsienode', 255),
      // The audience, so PagerDuty's event orchestration can route VPSie-side and cluster-side apart.
      group: bundle.audience,
      class: bundle.cause ?? bundle.kind,
      custom_details: details,
    },
  });
  let e = event(bundle);
  for (let room = 200 * 1024; eventBytes(e) > PAGERDUTY_LIMITS.eventBytes && room >= 8 * 1024; room /= 2)
    e = event(capBundle(bundle, room));
  return e;
}

/** Resolves the incident a run of this VPSieNode opened (a no-op in PagerDuty when none is open). */
export function pagerDutyResolve(workflowId: string, routingKey: string): PagerDutyEvent {
  return { routing_key: routingKey, event_action: 'resolve', dedup_key: pagerDutyDedupKey(workflowId) };
}

/**
 * A pending approval as a low-severity trigger (only when APPROVAL_CHANNELS names pagerduty). Its source is the
 * VPSieNode, or for the orphaned-VM sweep (`ref` null) {@link SWEEP_SOURCE}.
 */
export function pagerDutyApprovalTrigger(n: ApprovalNotice, routingKey: string, at: string): PagerDutyEvent {
  const { approve, reject } = approvalCommands(n.workflowId, n.stepId);
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: approvalDedupKey(n.workflowId, n.stepId),
    client: 'vpsie-runbook',
    payload: {
      summary: fit(
        `Approval needed before ${n.stepId} ${n.ref ? `on VPSieNode ${n.ref.namespace}/${n.ref.name}` : `in ${SWEEP_SUBJECT}`}: ${describeNoticeTarget(n.target)}; expires ${n.expiresAt}`,
        PAGERDUTY_LIMITS.summary,
      ),
      source: n.ref ? `vpsienode/${n.ref.namespace}/${n.ref.name}` : SWEEP_SOURCE,
      severity: 'warning',
      timestamp: at,
      class: 'approval',
      custom_details: {
        workflowId: n.workflowId,
        stepId: n.stepId,
        kind: n.kind,
        target: n.target,
        action: n.action,
        expiresAt: n.expiresAt,
        approvers: n.approvers,
        approveCommand: approve,
        rejectCommand: reject,
      },
    },
  };
}

/** One POST to the Events API; any 2xx (PagerDuty answers 202) is acceptance. */
export async function sendToPagerDuty(
  eventsUrl: string,
  event: PagerDutyEvent,
  opts: PostOptions,
): Promise<string> {
  const answer = await postJson('pagerduty', eventsUrl, event, opts);
  return `PagerDuty accepted the ${event.event_action} (HTTP ${answer.status}, dedup_key ${event.dedup_key})`;
}
