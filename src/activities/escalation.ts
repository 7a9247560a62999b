/**
 * The activity `escalate`: records that a run stopped and handed its VPSieNode to a person, as a Warning Event
 * about the VPSieNode (`kubectl describe vpsienode` shows it, beside the controller's own Events), and in the
 * worker's log. Issue 8 adds the hand-off to people (Slack, PagerDuty, webhooks) as further channels here.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { Context, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION, type KubernetesClient } from '../clients/kubernetes';
import {
  ESCALATION_EVENT_REASON,
  escalationMessage,
  InvalidInputError,
  validateEscalation,
  type Escalation,
  type EscalationRecord,
} from '../runbook';
import { asActivityFailure } from './kubernetes';

/** The component that writes the Event (`source.component`, `reportingComponent`). */
export const ESCALATION_COMPONENT = 'vpsie-runbook';

/** Annotations on the Event that lead back to the run, whatever the message had to leave out. */
export const ESCALATION_ANNOTATIONS = {
  workflowId: 'vpsie-runbook/workflow-id',
  runId: 'vpsie-runbook/run-id',
  step: 'vpsie-runbook/step',
  kind: 'vpsie-runbook/kind',
  cause: 'vpsie-runbook/cause',
} as const;

/** Hex digits of the hash that makes the Event's name; 64 bits, so two escalations never meet by chance. */
const HASH_LENGTH = 16;
const MAX_NAME_LENGTH = 253;

/**
 * The Event's name: the VPSieNode's name (cut so that the whole stays a DNS subdomain of at most 253 characters)
 * and a hash of workflow id, run id, step and kind. The same escalation always gets the same name, so a retried
 * attempt finds its Event already there instead of writing a second one.
 */
export function escalationEventName(e: Escalation): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([e.workflowId, e.runId, e.step, e.kind]))
    .digest('hex')
    .slice(0, HASH_LENGTH);
  // a cut may end on '.' or '-', which a DNS label may not
  const prefix = e.ref.name.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/[.-]+$/, '');
  return `${prefix}.${hash}`;
}

/**
 * The Event as client-go's recorder writes one (firstTimestamp, lastTimestamp, count; no eventTime), so it reads
 * the same in `kubectl get events`, `kubectl describe` and the events.k8s.io API.
 */
export function escalationEvent(e: Escalation, at: Date): CoreV1Event {
  const { namespace, name } = e.ref;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: {
      name: escalationEventName(e),
      namespace,
      annotations: {
        [ESCALATION_ANNOTATIONS.workflowId]: e.workflowId,
        [ESCALATION_ANNOTATIONS.runId]: e.runId,
        [ESCALATION_ANNOTATIONS.kind]: e.kind,
        ...(e.step ? { [ESCALATION_ANNOTATIONS.step]: e.step } : {}),
        ...(e.cause ? { [ESCALATION_ANNOTATIONS.cause]: e.cause } : {}),
      },
    },
    involvedObject: {
      apiVersion: `${AUTOSCALER_GROUP}/${AUTOSCALER_VERSION}`,
      kind: 'VPSieNode',
      namespace,
      name,
      ...(e.uid ? { uid: e.uid } : {}),
    },
    type: 'Warning',
    reason: ESCALATION_EVENT_REASON,
    action: 'Escalate',
    message: escalationMessage(e),
    source: { component: ESCALATION_COMPONENT },
    reportingComponent: ESCALATION_COMPONENT,
    reportingInstance: e.workflowId,
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

/** Logs with the activity's logger (which adds the workflow and attempt); outside an activity there is none. */
function activityLog(level: 'warn' | 'error', message: string, meta: Record<string, unknown>): void {
  try {
    Context.current();
  } catch {
    return; // called as a plain function (a script): nothing to log with
  }
  log[level](message, meta);
}

export function createEscalationActivities(kube: KubernetesClient) {
  return {
    /**
     * Records an escalation: a Warning Event `RunbookEscalated` about the VPSieNode, and a line in the worker's log.
     * Invalid input fails at once (non-retryable `InvalidInput`). A transient Kubernetes error is thrown, so
     * Temporal retries; the Event's name is fixed by the escalation, so a retry never writes a second one. A
     * permanent one (403: the role lacks `create` on events; 404: the namespace is gone) does not fail the run:
     * the channel comes back `ok: false` with the reason, and the run's own status and result still carry the
     * escalation. The apiserver keeps Events only for its --event-ttl (1 h by default): the run is the record.
     */
    async escalate(input: Escalation): Promise<EscalationRecord> {
      let e: Escalation;
      try {
        e = validateEscalation(input);
      } catch (err) {
        if (err instanceof InvalidInputError)
          throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
        throw err;
      }
      const at = new Date();
      const event = escalationEvent(e, at);
      const where = `${e.ref.namespace}/${event.metadata.name}`;
      const about = `VPSieNode ${e.ref.namespace}/${e.ref.name}`;
      activityLog('warn', 'Runbook escalated', {
        vpsieNode: `${e.ref.namespace}/${e.ref.name}`,
        uid: e.uid,
        cause: e.cause,
        kind: e.kind,
        step: e.step,
        event: where,
        // the Event's text: redacted and capped, unlike the raw evidence
        message: event.message,
      });
      let channel: EscalationRecord['channels'][number];
      try {
        const written = await kube.createEvent(e.ref.namespace, event);
        channel = {
          channel: 'kubernetes-event',
          ok: true,
          detail:
            written === 'created'
              ? `Warning Event ${ESCALATION_EVENT_REASON} ${where} about ${about}`
              : `Warning Event ${ESCALATION_EVENT_REASON} ${where} about ${about} was already written (an earlier attempt)`,
        };
      } catch (err) {
        const failure = asActivityFailure(err);
        if (!(failure instanceof ApplicationFailure && failure.nonRetryable)) throw failure;
        channel = {
          channel: 'kubernetes-event',
          ok: false,
          detail: `no Event about ${about}: ${failure.type}: ${failure.message}`,
        };
        activityLog('error', 'Runbook escalation not written as a Kubernetes Event', {
          vpsieNode: `${e.ref.namespace}/${e.ref.name}`,
          detail: channel.detail,
        });
      }
      return { recordedAt: at.toISOString(), channels: [channel] };
    },
  };
}
