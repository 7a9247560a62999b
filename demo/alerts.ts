/**
 * What Alertmanager posts to the receiver for a staged failure: the webhook payload (version 4) with one alert,
 * labelled and annotated as deploy/prometheus/vpsie-runbook-rules.yaml renders it, one notification per
 * VPSieNode as the shipped route groups them (deploy/alertmanager/alertmanager.yml: group_by alertname,
 * namespace, vpsienode, nodegroup). Delivery follows Alertmanager's rule: 5xx and network errors are retried.
 */
import { createHash } from 'node:crypto';
import type { StagedFailure } from './causes';

const RUNBOOK_URL =
  'https://github.com/vpsieinc/vpsie-k8s-autoscaler/blob/main/docs/runbooks/provisioning-failed.md';

export interface AlertmanagerAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's fingerprint is a hash of the label set (FNV-64 there; any stable 16 hex digits do here). */
function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** The firing alert for a staged failure, as the shipped rule would raise it. */
export function alertFor(f: StagedFailure, startsAt: Date): AlertmanagerAlert {
  const failed = f.alertName === 'VPSieNodeProvisioningFailed';
  // An empty label does not exist in Prometheus: a VPSieNode without a NodeGroup has no `nodegroup` label.
  const labels: Record<string, string> = {
    alertname: f.alertName,
    namespace: f.namespace,
    vpsienode: f.vpsieNode,
    ...(f.nodeGroup ? { nodegroup: f.nodeGroup } : {}),
    severity: failed ? 'critical' : 'warning',
  };
  const ref = `${f.namespace}/${f.vpsieNode}`;
  const group = f.nodeGroup ?? '';
  const describe = `kubectl -n ${f.namespace} describe vpsienode ${f.vpsieNode}`;
  const annotations: Record<string, string> = failed
    ? {
        summary: `VPSieNode ${ref} failed to provision (NodeGroup ${group})`,
        description: `The autoscaler set phase Failed on VPSieNode ${ref} of NodeGroup ${group}. The reason is in its status.conditions and status.lastError (${describe}); the controller deletes Failed VPSieNodes 30 minutes after they fail, taking that evidence with them.`,
        runbook_url: RUNBOOK_URL,
      }
    : {
        summary: `VPSieNode ${ref} still not Ready after 10m 0s (NodeGroup ${group})`,
        description: `VPSieNode ${ref} of NodeGroup ${group} was created 10m 0s ago and is still without a phase, past the autoscaler's limits (10 minutes to provision, 15 to join) and the controller has not failed it. Check that the vpsie-autoscaler controller is running and what its status.conditions and the VM in VPSie say (${describe}).`,
        runbook_url: RUNBOOK_URL,
      };
  return {
    status: 'firing',
    labels,
    annotations,
    startsAt: startsAt.toISOString(),
    endsAt: '0001-01-01T00:00:00Z',
    generatorURL: `http://prometheus.sandbox:9090/graph?g0.expr=${encodeURIComponent(`ALERTS{alertname="${f.alertName}"}`)}`,
    fingerprint: fingerprintOf(labels),
  };
}

/** The notification Alertmanager's webhook sends for one group: here, one alert. */
export function notification(alert: AlertmanagerAlert) {
  const groupLabels = Object.fromEntries(
    ['alertname', 'namespace', 'vpsienode', 'nodegroup']
      .filter((k) => alert.labels[k] !== undefined)
      .map((k) => [k, alert.labels[k]]),
  );
  return {
    version: '4',
    groupKey: `{}/{alertname=~"VPSieNodeProvisioningFailed|VPSieNodeProvisioningTimeout|NodeProvisioningFailed"}:{${Object.entries(
      groupLabels,
    )
      .map(([k, v]) => `${k}="${v}"`)
      .join(', ')}}`,
    truncatedAlerts: 0,
    status: alert.status,
    receiver: 'vpsie-runbook',
    groupLabels,
    commonLabels: alert.labels,
    commonAnnotations: alert.annotations,
    externalURL: 'http://alertmanager.sandbox:9093',
    alerts: [alert],
  };
}

/** One run the receiver started or joined for an alert (its answer's `alerts[].runs[]`). */
export interface PostedRun {
  vpsieNode: string;
  workflowId: string;
  action: string;
  runId?: string;
}

export interface PostResult {
  status: number;
  message: string;
  runs: PostedRun[];
}

/**
 * POSTs a notification as Alertmanager does, retrying 5xx answers and network errors (up to `attempts` times,
 * 1 s apart); a 4xx is final. Answers the receiver's last answer; throws when it never answered.
 */
export async function postNotification(
  url: string,
  body: unknown,
  opts: { attempts?: number; stopping?: () => boolean } = {},
): Promise<PostResult> {
  const attempts = opts.attempts ?? 5;
  let lastError = '';
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'User-Agent': 'Alertmanager/0.27.0 (vpsie-runbook demo)',
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const answer = (await res.json().catch(() => ({}))) as {
        message?: string;
        alerts?: { runs?: PostedRun[] }[];
      };
      const result = {
        status: res.status,
        message: answer.message ?? res.statusText,
        runs: (answer.alerts ?? []).flatMap((a) => a.runs ?? []),
      };
      if (res.status < 500 || attempt >= attempts) return result;
      lastError = `HTTP ${res.status}: ${result.message}`;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
      if (attempt >= attempts) throw new Error(`POST ${url}: ${lastError}`);
    }
    if (opts.stopping?.()) throw new Error(`POST ${url}: stopped (${lastError})`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}
