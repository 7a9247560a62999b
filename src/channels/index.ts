/**
 * The escalation channels besides the Kubernetes Event (issue 8 item 3): a generic JSON webhook, a Slack
 * incoming webhook and PagerDuty Events v2, each optional and configured by environment (src/config.ts). The
 * secrets (webhook URLs, routing key) live here, in the worker: read at every use from their files, never
 * passed to or from a workflow, never in an error. Each call makes one attempt and throws a
 * {@link ChannelError} that says whether retrying can help; Temporal's retry policy is the only retry layer.
 */
import type { EvidenceBundle } from '../runbook/evidence-bundle';
import type { ChannelName, Routes } from '../runbook/routing';
import { ChannelError, channelUrlProblem, readSecret, secretPartsOf, type SecretSource } from './http';
import type { ApprovalNotice } from './notice';
import {
  DEFAULT_PAGERDUTY_EVENTS_URL,
  isRoutingKey,
  pagerDutyApprovalTrigger,
  pagerDutyResolve,
  pagerDutyTrigger,
  sendToPagerDuty,
} from './pagerduty';
import { postToSlack, slackApprovalMessage, slackEscalationMessage } from './slack';
import { approvalDocument, escalationDocument, idempotencyKey, postToWebhook } from './webhook';

export { ChannelError, type SecretSource } from './http';
export type { ApprovalNotice } from './notice';
export { DEFAULT_PAGERDUTY_EVENTS_URL };

export interface ChannelsConfig {
  /** The generic webhook's URL (ESCALATION_WEBHOOK_URL[_FILE]). */
  webhook?: SecretSource;
  /** The Slack incoming webhook's URL (SLACK_WEBHOOK_URL[_FILE]). */
  slack?: SecretSource;
  /** PAGERDUTY_ROUTING_KEY[_FILE] and PAGERDUTY_EVENTS_URL. */
  pagerduty?: { routingKey: SecretSource; eventsUrl: string };
  /** Which channels reach each audience (ESCALATION_ROUTES). */
  routes: Routes;
  /** Which channels announce a pending approval (APPROVAL_CHANNELS). */
  approvalChannels: ChannelName[];
  /** Deadline of one request, ms; default {@link DEFAULT_CHANNEL_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Ten seconds per request: the services answer in well under a second, and the escalate activity (one minute
 * per attempt) must still finish its other channels when one hangs.
 */
export const DEFAULT_CHANNEL_TIMEOUT_MS = 10_000;

/** The channels that have their secret configured. */
export function configuredChannels(c: ChannelsConfig | undefined): ChannelName[] {
  if (!c) return [];
  return (['pagerduty', 'slack', 'webhook'] as const).filter((n) => c[n] !== undefined);
}

/** What is sent: an escalation with its bundle, a pending approval, or the resolve of a run's incident. */
export type Delivery =
  | { kind: 'escalation'; bundle: EvidenceBundle; at: string }
  | { kind: 'approval'; notice: ApprovalNotice; at: string }
  | { kind: 'resolve'; workflowId: string };

async function urlOf(channel: 'slack' | 'webhook', source: SecretSource): Promise<string> {
  const url = await readSecret(channel, source);
  const problem = channelUrlProblem(url);
  // never quoted: the URL is the secret
  if (problem)
    throw new ChannelError(`${channel === 'slack' ? 'Slack' : 'webhook'}: ${source.variable} ${problem}`, {
      channel,
      kind: 'config',
    });
  return url;
}

/**
 * Sends one delivery on one channel, once. Answers a one-line, secret-free detail of what the service accepted;
 * throws a {@link ChannelError} (or the caller's abort reason).
 */
export async function deliver(
  channel: ChannelName,
  delivery: Delivery,
  config: ChannelsConfig,
  opts: { signal?: AbortSignal } = {},
): Promise<string> {
  const timeoutMs = config.timeoutMs ?? DEFAULT_CHANNEL_TIMEOUT_MS;
  const notConfigured = () => new ChannelError(`${channel} is not configured`, { channel, kind: 'config' });
  switch (channel) {
    case 'pagerduty': {
      const pd = config.pagerduty;
      if (!pd) throw notConfigured();
      const key = await readSecret('pagerduty', pd.routingKey);
      if (!isRoutingKey(key))
        throw new ChannelError(
          `PagerDuty: ${pd.routingKey.variable} does not hold a 32-character integration key`,
          { channel, kind: 'config' },
        );
      const event =
        delivery.kind === 'escalation'
          ? pagerDutyTrigger(delivery.bundle, key, delivery.at)
          : delivery.kind === 'approval'
            ? pagerDutyApprovalTrigger(delivery.notice, key, delivery.at)
            : pagerDutyResolve(delivery.workflowId, key);
      return sendToPagerDuty(pd.eventsUrl, event, { timeoutMs, secrets: [key], ...opts });
    }
    case 'slack': {
      if (!config.slack) throw notConfigured();
      if (delivery.kind === 'resolve')
        throw new ChannelError('Slack is not told of resolves', { channel, kind: 'config' });
      const url = await urlOf('slack', config.slack);
      const message =
        delivery.kind === 'escalation'
          ? slackEscalationMessage(delivery.bundle)
          : slackApprovalMessage(delivery.notice);
      return postToSlack(url, message, { timeoutMs, secrets: secretPartsOf(url), ...opts });
    }
    case 'webhook': {
      if (!config.webhook) throw notConfigured();
      if (delivery.kind === 'resolve')
        throw new ChannelError('the webhook is not told of resolves', { channel, kind: 'config' });
      const url = await urlOf('webhook', config.webhook);
      const post = { timeoutMs, secrets: secretPartsOf(url), ...opts };
      if (delivery.kind === 'escalation') {
        const b = delivery.bundle;
        return postToWebhook(
          url,
          escalationDocument(b, delivery.at),
          idempotencyKey(b.workflowId, b.runId, b.step, b.kind),
          post,
        );
      }
      const n = delivery.notice;
      return postToWebhook(
        url,
        approvalDocument(n, delivery.at),
        idempotencyKey(n.workflowId, n.stepId, n.expiresAt),
        post,
      );
    }
  }
}
