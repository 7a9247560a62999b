/**
 * What each alert of a notification means for the runbook, decided without I/O: which VPSieNode it names (or
 * which NodeGroup), who started it (the run's origin), whether a closed run already answered this firing, and
 * which VPSieNodes of a NodeGroup a per-NodeGroup alert reaches.
 */
import { assessProgress, type ProgressLimits } from '../runbook/progress';
import { SEVERITIES, type Severity } from '../runbook/evidence-bundle';
import type { NodeGroupRef } from '../runbook/evidence';
import type { VPSieNodeRef, VPSieNodeSnapshot } from '../runbook/types';
import type { RunOrigin } from '../temporal/start-runbook';
import type { WebhookAlert } from './payload';

/**
 * The alerts the receiver acts on: the runbook's two per-VPSieNode alerts (shipped in deploy/prometheus) and the
 * autoscaler's own per-NodeGroup `NodeProvisioningFailed`, whose runbook_url is this runbook.
 */
export const DEFAULT_ALERT_NAMES: readonly string[] = [
  'VPSieNodeProvisioningFailed',
  'VPSieNodeProvisioningTimeout',
  'NodeProvisioningFailed',
];

/** Labels read: `namespace` with `vpsienode` (or kube-state-metrics' `name`), or with `nodegroup` only. */
export const LABELS = {
  namespace: 'namespace',
  vpsieNode: 'vpsienode',
  name: 'name',
  nodeGroup: 'nodegroup',
  severity: 'severity',
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The alert's identity as the runs keep it: Alertmanager's fingerprint and `startsAt` name one firing. */
export interface AlertIdentity {
  alertName: string;
  fingerprint: string;
  startsAt: string;
}

export type AlertIntent =
  /** Start (or join) the run of one VPSieNode; when resolved, tell its open run. */
  | {
      kind: 'vpsienode';
      firing: boolean;
      ref: VPSieNodeRef;
      origin: RunOrigin;
      severity: Severity | null;
      identity: AlertIdentity;
      endsAt: string | null;
    }
  /** Fan out to the VPSieNodes of a NodeGroup that are Failed or past the controller's limit. */
  | {
      kind: 'nodegroup';
      firing: boolean;
      nodeGroup: NodeGroupRef;
      origin: RunOrigin;
      severity: Severity | null;
      identity: AlertIdentity;
      endsAt: string | null;
    }
  /** Not for the runbook: acknowledged, and the answer says why. */
  | { kind: 'ignored'; reason: string }
  /** A label that can never name a Kubernetes object: the whole request is refused (400). */
  | { kind: 'invalid'; problem: string };

/** Only PagerDuty's four severities are passed on; anything else leaves the run to derive its own. */
export function severityOf(labels: Record<string, string>): Severity | null {
  const s = labels[LABELS.severity];
  return (SEVERITIES as readonly string[]).includes(s) ? (s as Severity) : null;
}

function labelProblem(index: number, label: string, value: string, what: string): string {
  return `alerts[${index}].labels.${label} must be ${what}, got ${JSON.stringify(value)}`;
}

/** A label value, or null when absent or empty (Prometheus drops empty labels anyway). */
function label(labels: Record<string, string>, name: string): string | null {
  const v = labels[name];
  return v === undefined || v === '' ? null : v;
}

/**
 * What alert `index` of a notification asks for. `alertNames`: the names the receiver acts on. Labels of a
 * handled alert that are not Kubernetes names make it `invalid`, naming the label.
 */
export function interpretAlert(
  alert: WebhookAlert,
  index: number,
  alertNames: ReadonlySet<string>,
): AlertIntent {
  const alertName = label(alert.labels, 'alertname');
  if (alertName === null) return { kind: 'ignored', reason: 'no alertname label' };
  if (!alertNames.has(alertName))
    return {
      kind: 'ignored',
      reason: `alert ${alertName} is not one the runbook handles (${[...alertNames].join(', ')})`,
    };
  const namespace = label(alert.labels, LABELS.namespace);
  const [nameLabel, name] = label(alert.labels, LABELS.vpsieNode)
    ? [LABELS.vpsieNode, label(alert.labels, LABELS.vpsieNode)]
    : [LABELS.name, label(alert.labels, LABELS.name)];
  const nodeGroup = label(alert.labels, LABELS.nodeGroup);

  const problems: string[] = [];
  if (namespace !== null && (namespace.length > 63 || !DNS_LABEL.test(namespace)))
    problems.push(
      labelProblem(index, LABELS.namespace, namespace, 'a Kubernetes namespace name (DNS label)'),
    );
  if (name !== null && (name.length > 253 || !DNS_SUBDOMAIN.test(name)))
    problems.push(labelProblem(index, nameLabel, name, 'a VPSieNode name (DNS subdomain)'));
  // The autoscaler selects a NodeGroup's VPSieNodes by a label with its name, so it is a label value too.
  if (nodeGroup !== null && (nodeGroup.length > 63 || !DNS_SUBDOMAIN.test(nodeGroup)))
    problems.push(
      labelProblem(
        index,
        LABELS.nodeGroup,
        nodeGroup,
        'a NodeGroup name (DNS subdomain, at most 63 characters)',
      ),
    );
  if (problems.length) return { kind: 'invalid', problem: problems.join('; ') };

  if (namespace === null)
    return { kind: 'ignored', reason: `alert ${alertName} has no ${LABELS.namespace} label` };
  if (name === null && nodeGroup === null)
    return {
      kind: 'ignored',
      reason: `alert ${alertName} names no VPSieNode (label ${LABELS.vpsieNode} or ${LABELS.name}) and no NodeGroup (label ${LABELS.nodeGroup})`,
    };

  const origin: RunOrigin = {
    source: 'alertmanager',
    alertName,
    ...(nodeGroup !== null ? { nodeGroup } : {}),
    labels: alert.labels,
    annotations: alert.annotations,
    fingerprint: alert.fingerprint,
    startsAt: alert.startsAt,
  };
  const common = {
    firing: alert.status === 'firing',
    origin,
    severity: severityOf(alert.labels),
    identity: { alertName, fingerprint: alert.fingerprint, startsAt: alert.startsAt },
    endsAt: alert.endsAt ?? null,
  };
  if (name !== null) return { kind: 'vpsienode', ref: { namespace, name }, ...common };
  return { kind: 'nodegroup', nodeGroup: { namespace, name: nodeGroup as string }, ...common };
}

/**
 * Whether a run's origin (its memo) is this very firing: same fingerprint and same `startsAt`. Alertmanager
 * re-sends a firing alert unchanged on every repeat; a new firing of the same alert has a new `startsAt`.
 */
export function sameFiring(
  runOrigin: unknown,
  identity: Pick<AlertIdentity, 'fingerprint' | 'startsAt'>,
): boolean {
  const o = runOrigin as Partial<RunOrigin> | null | undefined;
  return (
    !!o &&
    typeof o === 'object' &&
    o.fingerprint === identity.fingerprint &&
    typeof o.startsAt === 'string' &&
    (o.startsAt === identity.startsAt || Date.parse(o.startsAt) === Date.parse(identity.startsAt))
  );
}

export interface FanOut {
  /** VPSieNodes the NodeGroup alert starts (or joins) a run for, with why. */
  targets: { ref: VPSieNodeRef; why: string }[];
  /** The others, with why not: a person reading the answer sees that the alert reached them. */
  skipped: { ref: VPSieNodeRef; why: string }[];
}

/**
 * A per-NodeGroup alert reaches the NodeGroup's VPSieNodes that the runbook would act on now: phase Failed, or
 * past the controller's limit (`assessProgress`, with the limits the runs use). Sorted by name, so an answer
 * reads the same on every repeat.
 */
export function selectFanOut(nodes: VPSieNodeSnapshot[], nowMs: number, limits: ProgressLimits): FanOut {
  const out: FanOut = { targets: [], skipped: [] };
  for (const node of [...nodes].sort((a, b) => a.name.localeCompare(b.name))) {
    const progress = assessProgress(node, nowMs, limits);
    const ref = { namespace: node.namespace, name: node.name };
    if (progress.kind === 'failed' || progress.kind === 'stuck')
      out.targets.push({ ref, why: progress.reason });
    else out.skipped.push({ ref, why: progress.reason });
  }
  return out;
}
