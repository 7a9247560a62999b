/**
 * Alertmanager's webhook payload, version 4 (`notify/webhook`: `{version, groupKey, truncatedAlerts, status,
 * receiver, groupLabels, commonLabels, commonAnnotations, externalURL, alerts}`), checked with zod. Only what
 * the receiver reads is required; the rest is typed when present, so a newer Alertmanager that adds fields is
 * still understood.
 */
import { z } from 'zod';

const labels = z.record(z.string(), z.string());
/** Go's RFC 3339 with nanoseconds (`2024-05-01T10:00:00.123456789Z`, or an offset). */
const timestamp = z.iso.datetime({ offset: true });
const alertStatus = z.enum(['firing', 'resolved']);

export const alertSchema = z.object({
  status: alertStatus,
  labels,
  annotations: labels.default({}),
  startsAt: timestamp,
  /** Set on resolved alerts; on firing ones Alertmanager sends its expected end, or Go's zero time. */
  endsAt: timestamp.optional(),
  generatorURL: z.string().optional(),
  /** Alertmanager's hash of the labels: the alert's identity, with startsAt the identity of one firing. */
  fingerprint: z.string().min(1).max(128),
});

export const webhookPayloadSchema = z.object({
  version: z.literal('4'),
  groupKey: z.string().optional(),
  /** Alerts left out because the receiver's `max_alerts` was reached. */
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: alertStatus,
  receiver: z.string().optional(),
  groupLabels: labels.optional(),
  commonLabels: labels.optional(),
  commonAnnotations: labels.optional(),
  externalURL: z.string().optional(),
  alerts: z.array(alertSchema),
});

export type WebhookAlert = z.infer<typeof alertSchema>;
export type WebhookPayload = z.infer<typeof webhookPayloadSchema>;

/** `alerts[0].labels.namespace`: the path to a field, as a person writes it. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_$][\w$]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(body)';
}

export type ParsedPayload = { ok: true; payload: WebhookPayload } | { ok: false; problems: string[] };

/** Checks a parsed JSON body; every problem names its field (`alerts[1].startsAt: ...`), at most 10 of them. */
export function parseWebhookPayload(body: unknown): ParsedPayload {
  const r = webhookPayloadSchema.safeParse(body);
  if (r.success) {
    const resolvedWithoutEnd = r.data.alerts.findIndex((a) => a.status === 'resolved' && !a.endsAt);
    if (resolvedWithoutEnd >= 0)
      return {
        ok: false,
        problems: [`alerts[${resolvedWithoutEnd}].endsAt: a resolved alert needs its end`],
      };
    return { ok: true, payload: r.data };
  }
  return {
    ok: false,
    problems: r.error.issues.slice(0, 10).map((i) => `${fieldPath(i.path)}: ${i.message}`),
  };
}
