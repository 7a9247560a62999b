/**
 * One Alertmanager notification, alert by alert: what each means (alerts.ts), what was done about it
 * (temporal.ts, and the NodeGroup's VPSieNodes read from Kubernetes for a fan-out), and the answer, whose status
 * follows Alertmanager's retry rules: 2xx when every alert was handled (or is not ours), 5xx when something it
 * needed could not be reached (Alertmanager retries; every step is idempotent), 400 when a label can never name
 * a Kubernetes object (nothing is done then).
 */
import { KubernetesApiError } from '../clients/kubernetes';
import { NODEGROUP_LABEL, type NodeGroupRef } from '../runbook/evidence';
import { resolveInput } from '../runbook/input';
import type { ProgressLimits } from '../runbook/progress';
import type { VPSieNodeSnapshot } from '../runbook/types';
import { toVPSieNodeSnapshot } from '../runbook/vpsienode';
import { interpretAlert, selectFanOut, type AlertIntent } from './alerts';
import type { WebhookPayload } from './payload';
import {
  ReceiverOverloadedError,
  TemporalUnavailableError,
  type RunAnswer,
  type RunbookDoor,
} from './temporal';

/**
 * How many alerts of one notification are worked on at once. Repeats are answered from memory and the door
 * bounds what reaches Temporal across all notifications, so this only keeps one large notification in order.
 */
const CONCURRENCY = 16;
export const DEFAULT_KUBERNETES_TIMEOUT_MS = 10_000;

/** The one read a fan-out needs: `kubectl get vpsienodes -n <ns> -l <selector>` (KubernetesClient has it). */
export interface VPSieNodeLister {
  listVPSieNodes(namespace?: string, labelSelector?: string): Promise<unknown[]>;
}

export interface AlertAnswer {
  index: number;
  alertname: string | null;
  status: 'firing' | 'resolved';
  fingerprint: string;
  /** `handled`: done (see runs); `ignored`: not an alert for the runbook (see reason); `failed`: retry. */
  result: 'handled' | 'ignored' | 'failed';
  reason?: string;
  runs?: RunAnswer[];
  /** A NodeGroup alert: the group's VPSieNodes it did not start a run for, and why. */
  skipped?: { vpsieNode: string; why: string }[];
}

export interface IntakeAnswer {
  httpStatus: number;
  /** `Retry-After` (seconds) when the receiver was overloaded. */
  retryAfterSeconds?: number;
  body: {
    status: 'ok' | 'retry' | 'refused';
    message: string;
    alerts: AlertAnswer[];
    /** Alerts Alertmanager left out (its `max_alerts`): not seen, so not handled. */
    truncatedAlerts?: number;
  };
}

export interface IntakeOptions {
  door: RunbookDoor;
  /** For NodeGroup alerts; null: they fail with a message saying so. */
  kubernetes: VPSieNodeLister | null;
  alertNames: ReadonlySet<string>;
  kubernetesTimeoutMs?: number;
  now?: () => number;
}

/** Why an alert could not be handled, and what HTTP status that makes (both 5xx: Alertmanager retries). */
class Unhandled extends Error {
  constructor(
    message: string,
    readonly httpStatus: 500 | 503,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

function failure(err: unknown): Unhandled {
  if (err instanceof Unhandled) return err;
  if (err instanceof ReceiverOverloadedError) return new Unhandled(err.message, 503, err.retryAfterSeconds);
  if (err instanceof TemporalUnavailableError) return new Unhandled(err.message, 503);
  if (err instanceof KubernetesApiError)
    return new Unhandled(`Kubernetes: ${err.message}`, err.permanent ? 500 : 503);
  return new Unhandled(`unexpected: ${err instanceof Error ? err.message : String(err)}`, 500);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Unhandled(`${what}: no answer within ${ms} ms`, 503)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The controller limits the runs use, so that the fan-out picks the nodes the runs would act on. */
export function limitsOf(door: RunbookDoor): ProgressLimits {
  const { options } = resolveInput({ namespace: 'x', name: 'x', options: door.options });
  return { provisioningLimitMs: options.provisioningLimitMs, joiningLimitMs: options.joiningLimitMs };
}

async function listNodeGroup(
  kubernetes: VPSieNodeLister | null,
  nodeGroup: NodeGroupRef,
  timeoutMs: number,
): Promise<VPSieNodeSnapshot[]> {
  if (!kubernetes)
    throw new Unhandled('no Kubernetes API configured: a NodeGroup alert cannot be fanned out', 500);
  const what = `list VPSieNodes of NodeGroup ${nodeGroup.namespace}/${nodeGroup.name}`;
  const raw = await withTimeout(
    kubernetes.listVPSieNodes(nodeGroup.namespace, `${NODEGROUP_LABEL}=${nodeGroup.name}`),
    timeoutMs,
    `Kubernetes: ${what}`,
  );
  return raw.map(toVPSieNodeSnapshot);
}

async function act(
  intent: Exclude<AlertIntent, { kind: 'ignored' | 'invalid' }>,
  o: IntakeOptions,
  answer: AlertAnswer,
): Promise<void> {
  const runs: RunAnswer[] = [];
  answer.runs = runs;
  const resolved = {
    ...intent.identity,
    endsAt: intent.endsAt ?? new Date((o.now ?? Date.now)()).toISOString(),
  };
  // a NodeGroup's VPSieNodes are decided together (the door bounds the calls); the first failure fails the alert
  const all = async (work: Promise<RunAnswer>[]): Promise<void> => {
    const settled = await Promise.allSettled(work);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const r of settled) if (r.status === 'fulfilled') runs.push(r.value);
  };
  if (intent.kind === 'vpsienode') {
    runs.push(
      intent.firing
        ? await o.door.fire(intent.ref, intent.origin, intent.severity, intent.identity)
        : await o.door.resolve(intent.ref, resolved),
    );
    return;
  }
  if (!intent.firing) {
    await all((await o.door.openRunsOf(intent.nodeGroup)).map((ref) => o.door.resolve(ref, resolved)));
    if (!runs.length)
      answer.reason = `no open run of NodeGroup ${intent.nodeGroup.namespace}/${intent.nodeGroup.name}`;
    return;
  }
  const nodes = await listNodeGroup(
    o.kubernetes,
    intent.nodeGroup,
    o.kubernetesTimeoutMs ?? DEFAULT_KUBERNETES_TIMEOUT_MS,
  );
  const { targets, skipped } = selectFanOut(nodes, (o.now ?? Date.now)(), limitsOf(o.door));
  answer.skipped = skipped.map((s) => ({ vpsieNode: `${s.ref.namespace}/${s.ref.name}`, why: s.why }));
  if (!targets.length)
    answer.reason = `no VPSieNode of NodeGroup ${intent.nodeGroup.namespace}/${intent.nodeGroup.name} is Failed or past the controller's limit (${nodes.length} listed)`;
  await all(targets.map((t) => o.door.fire(t.ref, { ...intent.origin }, intent.severity, intent.identity)));
}

/** Runs `fn` over `items`, at most `limit` at once, keeping the order of the results. */
async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function summary(alerts: AlertAnswer[]): string {
  const counts = new Map<string, number>();
  const add = (k: string) => counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const a of alerts) {
    if (a.result !== 'handled') add(a.result);
    for (const r of a.runs ?? []) add(r.action);
    if (a.result === 'handled' && !a.runs?.length) add('nothing to do');
  }
  const parts = [...counts].map(([k, n]) => `${n} ${k}`);
  return `${alerts.length} alert${alerts.length === 1 ? '' : 's'}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}

/** Handles a checked notification and answers it. */
export async function takeNotification(payload: WebhookPayload, o: IntakeOptions): Promise<IntakeAnswer> {
  const intents = payload.alerts.map((a, i) => interpretAlert(a, i, o.alertNames));
  const base = (i: number): AlertAnswer => {
    const a = payload.alerts[i];
    return {
      index: i,
      alertname: a.labels.alertname ?? null,
      status: a.status,
      fingerprint: a.fingerprint,
      result: 'handled',
    };
  };
  const truncated = payload.truncatedAlerts ? { truncatedAlerts: payload.truncatedAlerts } : {};

  const invalid = intents.flatMap((x) => (x.kind === 'invalid' ? [x.problem] : []));
  if (invalid.length)
    return {
      httpStatus: 400,
      body: {
        status: 'refused',
        message: `nothing done: ${invalid.join('; ')}`,
        alerts: intents.map((x, i) =>
          x.kind === 'invalid'
            ? { ...base(i), result: 'failed', reason: x.problem }
            : { ...base(i), result: 'ignored', reason: 'request refused' },
        ),
        ...truncated,
      },
    };

  let worst = 200;
  let retryAfter: number | undefined;
  const alerts = await pool(intents, CONCURRENCY, async (intent, i): Promise<AlertAnswer> => {
    const answer = base(i);
    if (intent.kind === 'ignored' || intent.kind === 'invalid')
      return {
        ...answer,
        result: 'ignored',
        reason: intent.kind === 'ignored' ? intent.reason : intent.problem,
      };
    try {
      await act(intent, o, answer);
      return answer;
    } catch (err) {
      const f = failure(err);
      worst = Math.max(worst, f.httpStatus);
      if (f.retryAfterSeconds !== undefined) retryAfter = Math.max(retryAfter ?? 0, f.retryAfterSeconds);
      return { ...answer, result: 'failed', reason: f.message };
    }
  });
  return {
    httpStatus: worst,
    ...(worst === 503 && retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    body: { status: worst === 200 ? 'ok' : 'retry', message: summary(alerts), alerts, ...truncated },
  };
}
