/**
 * The hand-off to people. The activity `escalate` records that a run stopped, as a Warning Event about the
 * VPSieNode (`kubectl describe vpsienode` shows it, beside the controller's own Events) and in the worker's log,
 * then (issue 8) sends the evidence bundle to the audience its cause routes to, through that audience's channels
 * (PagerDuty, Slack, a webhook). `announceApproval` posts a pending approval to the approval channels;
 * `resolveEscalation` resolves a VPSieNode's PagerDuty incident once a later run fixed it.
 *
 * Retries: each channel makes one attempt per activity attempt; transient failures (429, 5xx, timeouts) fail the
 * attempt so Temporal retries it, permanent ones (400, 401, 403, 404) are recorded as undelivered. What was
 * delivered is kept in the attempt's heartbeat details, so a retry sends only what is still missing, and
 * PagerDuty's dedup_key (the workflow id) keeps even a lost answer from paging twice. On the retry policy's last
 * attempt, what still fails is recorded as undelivered instead, so the run always ends with a record. The
 * secrets stay in the worker's configuration: the workflow passes only the escalation.
 */
import { createHash } from 'node:crypto';
import { dumpYaml, type CoreV1Event } from '@kubernetes/client-node';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { ChannelError, configuredChannels, deliver, type ChannelsConfig, type Delivery } from '../channels';
import { fieldProblem, validateApprovalNotice, type ApprovalNotice } from '../channels/notice';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION, type KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import {
  ESCALATION_EVENT_REASON,
  escalationMessage,
  InvalidInputError,
  validateEscalation,
  validateRef,
  type ControllerSelector,
  type Escalation,
  type EscalationRecord,
  type Evidence,
  type SourceResult,
  type VPSieNodeRef,
} from '../runbook';
import {
  buildEvidenceBundle,
  SEVERITIES,
  severityOf,
  withoutManagedFields,
  type EscalationContext,
  type EvidenceBundle,
} from '../runbook/evidence-bundle';
import { CHANNEL_NAMES, routeEscalation, type ChannelName, type Route } from '../runbook/routing';
import { escalationDeliveries } from '../metrics';
import { createEvidenceActivities } from './evidence';
import { inActivity } from './keep-alive';
import { asActivityFailure } from './kubernetes';
import { cancellation } from './vpsie';

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

/** The object as YAML, the way `kubectl get -o yaml` prints it (client-node's `dumpYaml`), minus managedFields. */
export function vpsieNodeYaml(raw: unknown): string {
  return dumpYaml(withoutManagedFields(raw));
}

/** The VPSieNode as read, as the bundle's YAML source: null when it does not exist, or the read's error. */
function yamlOf(raw: SourceResult<unknown>): SourceResult<string | null> {
  if (raw.status !== 'ok') return raw;
  if (raw.value === null || raw.value === undefined) return { status: 'ok', value: null };
  try {
    return { status: 'ok', value: vpsieNodeYaml(raw.value) };
  } catch (err) {
    // an object the YAML writer chokes on is still worth showing
    return {
      status: 'ok',
      value: `# not written as YAML (${(err as Error).message})\n${JSON.stringify(withoutManagedFields(raw.value), null, 2)}`,
    };
  }
}

/** Logs with the activity's logger (which adds the workflow and attempt); outside an activity there is none. */
function activityLog(level: 'info' | 'warn' | 'error', message: string, meta: Record<string, unknown>): void {
  if (!inActivity()) return; // called as a plain function (a script): nothing to log with
  log[level](message, meta);
}

export type ChannelEntry = EscalationRecord['channels'][number];
type EntryChannel = ChannelEntry['channel'];
const ENTRY_CHANNELS: readonly EntryChannel[] = ['kubernetes-event', ...CHANNEL_NAMES];

/** What an attempt leaves for the next one in its heartbeat details: what is done, and the route it chose. */
interface DeliveryProgress {
  done: ChannelEntry[];
  route?: Route;
}

const progressSchema = z.object({
  done: z.array(
    z.object({
      channel: z.enum(ENTRY_CHANNELS as [EntryChannel, ...EntryChannel[]]),
      ok: z.boolean(),
      detail: z.string(),
    }),
  ),
  route: z.object({ audience: z.enum(['vpsie-support', 'platform-team']), why: z.string() }).optional(),
});

/** The progress an earlier attempt of this activity recorded; nothing on a first attempt or outside one. */
function earlierProgress(): DeliveryProgress {
  const details: unknown = inActivity()?.info.heartbeatDetails;
  const parsed = progressSchema.safeParse(details);
  return parsed.success ? parsed.data : { done: [] };
}

function recordProgress(p: DeliveryProgress): void {
  inActivity()?.heartbeat(p);
}

/** The retry policy's last attempt: what still fails is then recorded as undelivered, not retried. */
function lastAttempt(): { last: boolean; attempt: number } {
  const info = inActivity()?.info;
  if (!info) return { last: true, attempt: 1 };
  const max = info.retryPolicy?.maximumAttempts ?? 0;
  return { last: max > 0 && info.attempt >= max, attempt: info.attempt };
}

/** A delivery that failed in a way a retry can fix. */
class Transient {
  constructor(
    readonly channel: EntryChannel,
    readonly message: string,
    readonly retryAfterMs?: number,
    /** The failure to throw when it is the only one (keeps the Kubernetes Event's failure as it was). */
    readonly failure?: unknown,
  ) {}
}

interface Task {
  channel: EntryChannel;
  /** `repeat`: found done by an earlier attempt whose heartbeat was lost (not counted again, not in the record). */
  attempt: () => Promise<ChannelEntry & { repeat?: boolean }>;
}

/** The metric's `kind`: which activity delivered. */
type DeliveryKind = 'escalation' | 'approval' | 'resolve';

/**
 * Runs the tasks not done by an earlier attempt, in parallel. Records each one done (delivered, or refused for
 * good) in the heartbeat as it ends; when any failed transiently, throws so Temporal retries (unless this is the
 * last attempt). Answers the entries in the tasks' order.
 */
async function runTasks(
  tasks: Task[],
  progress: DeliveryProgress,
  what: string,
  kind: DeliveryKind,
): Promise<ChannelEntry[]> {
  const done = new Map(progress.done.map((c) => [c.channel, c]));
  const results = await Promise.all(
    tasks.map(async (t): Promise<ChannelEntry | Transient> => {
      const earlier = done.get(t.channel);
      if (earlier) return earlier;
      let entry: ChannelEntry;
      try {
        const { repeat, ...made } = await t.attempt();
        entry = made;
        // counted when final, by the attempt that made it so: a retry skips (and never recounts) what is done
        if (!repeat)
          escalationDeliveries.inc({ kind, channel: t.channel, result: entry.ok ? 'delivered' : 'refused' });
      } catch (err) {
        if (err instanceof Transient) return err;
        throw err;
      }
      done.set(t.channel, entry);
      recordProgress({ ...progress, done: [...done.values()] });
      return entry;
    }),
  );
  const pending = results.filter((r): r is Transient => r instanceof Transient);
  if (pending.length === 0) return results as ChannelEntry[];
  const { last, attempt } = lastAttempt();
  if (!last) {
    if (pending.length === 1 && pending[0].failure !== undefined && done.size === 0) throw pending[0].failure;
    // in the tasks' order, whatever order they finished in
    const delivered = results.flatMap((r) => (r instanceof Transient || !r.ok ? [] : [r.channel]));
    const waits = pending.flatMap((p) => (p.retryAfterMs !== undefined ? [p.retryAfterMs] : []));
    throw ApplicationFailure.create({
      type: 'EscalationNotDelivered',
      message: `${what} not yet delivered: ${pending.map((p) => p.message).join('; ')}${
        delivered.length ? ` (delivered: ${delivered.join(', ')})` : ''
      }`,
      nonRetryable: false,
      ...(waits.length ? { nextRetryDelay: Math.max(...waits) } : {}),
    });
  }
  return results.map((r) => {
    if (!(r instanceof Transient)) return r;
    escalationDeliveries.inc({ kind, channel: r.channel, result: 'gave-up' });
    return { channel: r.channel, ok: false, detail: `not delivered after ${attempt} attempts: ${r.message}` };
  });
}

/** One channel's delivery as a task: a permanent refusal is an entry with ok false, a transient one is retried. */
function channelTask(
  channel: ChannelName,
  config: ChannelsConfig,
  delivery: () => Promise<Delivery>,
  forWhom: string,
): Task {
  return {
    channel,
    attempt: async () => {
      let entry: ChannelEntry;
      try {
        const detail = await deliver(channel, await delivery(), config, cancellation());
        entry = { channel, ok: true, detail: `${detail}${forWhom}` };
      } catch (err) {
        if (inActivity()?.cancellationSignal.aborted) throw err;
        if (!(err instanceof ChannelError)) {
          // Not the channel's answer (a bug, or reading evidence failed oddly): retried, named without details.
          activityLog('warn', 'escalation channel failed unexpectedly', { channel, error: String(err) });
          throw new Transient(channel, `${channel}: ${err instanceof Error ? err.name : 'error'}`);
        }
        if (!err.permanent) throw new Transient(channel, err.message, err.retryAfterMs);
        entry = { channel, ok: false, detail: `not delivered: ${err.message}` };
      }
      activityLog(
        entry.ok ? 'info' : 'error',
        entry.ok ? 'escalation channel delivered' : 'escalation channel refused',
        {
          channel,
          detail: entry.detail,
        },
      );
      return entry;
    },
  };
}

const reasonSchema = z
  .object({ finding: z.string(), source: z.string(), field: z.string(), value: z.string(), says: z.string() })
  .loose();
const contextSchema = z
  .object({
    reasons: z.array(reasonSchema).optional(),
    also: z.array(z.string()).optional(),
    plan: z
      .array(
        z
          .object({
            id: z.string(),
            kind: z.string(),
            destructive: z.boolean(),
            state: z.string(),
            target: z.unknown(),
            why: z.string(),
            result: z.string().nullable(),
            startedAt: z.string().nullable(),
            endedAt: z.string().nullable(),
          })
          .loose(),
      )
      .optional(),
    decisions: z
      .array(
        z
          .object({
            stepId: z.string().nullable(),
            decision: z.enum(['approve', 'reject']).nullable(),
            approver: z.string().nullable(),
            reason: z.string().nullable(),
            via: z.string(),
            at: z.string(),
            accepted: z.boolean(),
            refusal: z.string().nullable(),
          })
          .loose(),
      )
      .optional(),
    error: z
      .object({ step: z.string(), type: z.string(), message: z.string(), retryState: z.string() })
      .nullish(),
    lastSeen: z.object({ namespace: z.string(), name: z.string(), uid: z.string() }).loose().nullish(),
    severity: z.enum(SEVERITIES).nullish(),
    notify: z.boolean().optional(),
  })
  .loose();

/** Checks the workflow's context (its state so far); throws an InvalidInputError naming the first bad field. */
export function validateEscalationContext(input: unknown): EscalationContext {
  if (input === undefined || input === null) return {};
  const parsed = contextSchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError(fieldProblem('context', parsed.error.issues[0]));
  return parsed.data as unknown as EscalationContext;
}

function invalidInput(err: unknown): never {
  if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
  throw err;
}

/** The failure's type and secret-free message. */
function failureText(err: unknown): { type: string; message: string } {
  const f = asActivityFailure(err);
  if (f instanceof ApplicationFailure) return { type: f.type ?? 'Error', message: f.message };
  return {
    type: err instanceof Error ? err.name : 'Error',
    message: err instanceof Error ? err.message : String(err),
  };
}

/** Resolves with the promise's value, or `late` when it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface EscalationDeps {
  /** The channels and routes (config ESCALATION_*, SLACK_*, PAGERDUTY_*); unset: the Kubernetes Event only. */
  channels?: ChannelsConfig;
  /** For the bundle's machine in VPSie; null or unset: that source is marked unavailable. */
  vpsie?: VPSieClient | null;
  controller?: Partial<ControllerSelector>;
  /**
   * How long the bundle's evidence may take to read (default 20 s): past it, the escalation goes out with what
   * the run already had, within the activity's one minute.
   */
  evidenceTimeoutMs?: number;
}

export const DEFAULT_EVIDENCE_TIMEOUT_MS = 20_000;

/** What `announceApproval` answers: where the pending approval was posted. */
export interface ApprovalAnnouncement {
  announcedAt: string;
  channels: ChannelEntry[];
}

/** What `resolveEscalation` answers: PagerDuty's entry, or none when PagerDuty is in no route. */
export interface EscalationResolution {
  resolvedAt: string;
  channels: ChannelEntry[];
}

export interface ResolveEscalationInput {
  workflowId: string;
  ref: VPSieNodeRef;
  /** How the later run ended (`Recovered`, `Remediated`), for the log. */
  outcome?: string;
}

const AUDIENCE_LABEL: Record<Route['audience'], string> = {
  'vpsie-support': 'VPSie support',
  'platform-team': 'the platform team',
};

export function createEscalationActivities(kube: KubernetesClient, deps: EscalationDeps = {}) {
  const channels = deps.channels;
  const configured = configuredChannels(channels);
  const evidence = createEvidenceActivities({
    kubernetes: kube,
    vpsie: deps.vpsie ?? null,
    ...(deps.controller ? { controller: deps.controller } : {}),
  });
  const evidenceTimeoutMs = deps.evidenceTimeoutMs ?? DEFAULT_EVIDENCE_TIMEOUT_MS;

  /** The VPSieNode as it is now (for its YAML) and the evidence, each bounded in time and failing on its own. */
  const readNow = async (
    e: Escalation,
    context: EscalationContext,
  ): Promise<{ raw: SourceResult<unknown>; evidence: SourceResult<Evidence> }> => {
    const late = { status: 'unavailable' as const, why: `not read within ${evidenceTimeoutMs} ms` };
    const raw = within<SourceResult<unknown>>(
      kube.getVPSieNode(e.ref).then(
        (value) => ({ status: 'ok', value }),
        (err) => ({ status: 'error', ...failureText(err) }),
      ),
      evidenceTimeoutMs,
      late,
    );
    const gathered = within<SourceResult<Evidence>>(
      evidence.gatherEvidence({ ref: e.ref, lastSeen: context.lastSeen ?? null }).then(
        (value) => ({ status: 'ok', value }),
        (err) => ({ status: 'error', ...failureText(err) }),
      ),
      evidenceTimeoutMs,
      late,
    );
    return { raw: await raw, evidence: await gathered };
  };

  /** Writes the Event; a permanent refusal is an entry with ok false, a transient one is retried. */
  const eventTask = (e: Escalation, event: CoreV1Event): Task => ({
    channel: 'kubernetes-event',
    attempt: async () => {
      const where = `${e.ref.namespace}/${event.metadata.name}`;
      const about = `VPSieNode ${e.ref.namespace}/${e.ref.name}`;
      try {
        const written = await kube.createEvent(e.ref.namespace, event);
        return {
          ...(written === 'created' ? {} : { repeat: true }),
          channel: 'kubernetes-event',
          ok: true,
          detail:
            written === 'created'
              ? `Warning Event ${ESCALATION_EVENT_REASON} ${where} about ${about}`
              : `Warning Event ${ESCALATION_EVENT_REASON} ${where} about ${about} was already written (an earlier attempt)`,
        };
      } catch (err) {
        const failure = asActivityFailure(err);
        if (!(failure instanceof ApplicationFailure && failure.nonRetryable)) {
          const { type, message } = failureText(err);
          throw new Transient(
            'kubernetes-event',
            `kubernetes-event: ${type}: ${message}`,
            undefined,
            failure,
          );
        }
        const entry: ChannelEntry = {
          channel: 'kubernetes-event',
          ok: false,
          detail: `no Event about ${about}: ${failure.type}: ${failure.message}`,
        };
        activityLog('error', 'Runbook escalation not written as a Kubernetes Event', {
          vpsieNode: `${e.ref.namespace}/${e.ref.name}`,
          detail: entry.detail,
        });
        return entry;
      }
    },
  });

  return {
    /**
     * Records an escalation: a Warning Event `RunbookEscalated` about the VPSieNode, a line in the worker's log,
     * and, when channels are configured, the evidence bundle to each channel of the route its cause chooses.
     * `context` is the run's state so far (reasons, plan, decisions, the failed step's error, the last snapshot of
     * the VPSieNode, the alert's severity), all optional. Invalid input fails at once (non-retryable
     * `InvalidInput`). A transient failure (Kubernetes or a channel) fails the attempt so Temporal retries, and
     * the retry sends only what is missing; a permanent one (403 on events, a 400 from a channel) comes back as
     * `ok: false` with the reason: the run still ends, and its status and result carry the escalation. The
     * apiserver keeps Events only for its --event-ttl (1 h by default): the run is the record.
     */
    async escalate(input: Escalation, context?: EscalationContext): Promise<EscalationRecord> {
      let e: Escalation;
      let ctx: EscalationContext;
      try {
        e = validateEscalation(input);
        ctx = validateEscalationContext(context);
      } catch (err) {
        invalidInput(err);
      }
      const at = new Date();
      const event = escalationEvent(e, at);
      const progress = earlierProgress();
      if (progress.done.length === 0)
        activityLog('warn', 'Runbook escalated', {
          vpsieNode: `${e.ref.namespace}/${e.ref.name}`,
          uid: e.uid,
          cause: e.cause,
          kind: e.kind,
          step: e.step,
          event: `${e.ref.namespace}/${event.metadata.name}`,
          // the Event's text: redacted and capped, unlike the raw evidence
          message: event.message,
        });
      const tasks: Task[] = [eventTask(e, event)];
      let route: Route | undefined = progress.route;
      // notify false: another run already handed this to people (a NodeGroup storm pages once for the group).
      if (channels && configured.length > 0 && ctx.notify !== false) {
        // Read once per attempt, and only when something still needs the bundle or the route.
        let read: ReturnType<typeof readNow> | undefined;
        const readOnce = () => (read ??= readNow(e, ctx));
        if (!route) {
          const { evidence: ev } = await readOnce();
          const machine =
            ev.status === 'ok' && ev.value.machine.status === 'ok' ? ev.value.machine.value : null;
          route = routeEscalation({
            cause: e.cause,
            kind: e.kind,
            step: e.step,
            errorType: ctx.error?.type ?? null,
            machineStatus: machine?.vm?.status ?? machine?.node?.status ?? null,
          });
          progress.route = route;
          recordProgress(progress);
        }
        const r = route;
        let bundle: Promise<EvidenceBundle> | undefined;
        const bundleOnce = () =>
          (bundle ??= readOnce().then(({ raw, evidence: ev }) => {
            const phase =
              raw.status === 'ok' && raw.value
                ? ((raw.value as { status?: { phase?: unknown } }).status?.phase as string | undefined)
                : ev.status === 'ok'
                  ? (ev.value.vpsieNode ?? ev.value.lastSeen)?.phase
                  : ctx.lastSeen?.phase;
            return buildEvidenceBundle({
              escalation: e,
              route: r,
              severity: severityOf(phase ?? null, ctx.severity),
              vpsieNodeYaml: yamlOf(raw),
              evidence: ev,
              context: ctx,
              now: at.toISOString(),
            });
          }));
        for (const channel of channels.routes[r.audience])
          tasks.push(
            channelTask(
              channel,
              channels,
              async () => ({ kind: 'escalation', bundle: await bundleOnce(), at: at.toISOString() }),
              ` for ${AUDIENCE_LABEL[r.audience]}`,
            ),
          );
      }
      const entries = await runTasks(tasks, progress, 'escalation', 'escalation');
      return {
        recordedAt: at.toISOString(),
        channels: entries,
        ...(route && channels
          ? { route: { audience: route.audience, why: route.why, channels: channels.routes[route.audience] } }
          : {}),
      };
    },

    /**
     * Posts a pending approval (the step, its exact target, the expiry, who may approve, and the commands that
     * approve or reject it) to the approval channels (APPROVAL_CHANNELS: Slack and the webhook by default,
     * PagerDuty only when named). Nothing configured: answers no entries. Retries like `escalate`.
     */
    async announceApproval(input: ApprovalNotice): Promise<ApprovalAnnouncement> {
      let notice: ReturnType<typeof validateApprovalNotice>;
      try {
        notice = validateApprovalNotice(input);
      } catch (err) {
        invalidInput(err);
      }
      const at = new Date().toISOString();
      const tasks = channels
        ? channels.approvalChannels.map((c) =>
            channelTask(c, channels, async () => ({ kind: 'approval', notice, at }), ''),
          )
        : [];
      const entries = await runTasks(tasks, earlierProgress(), 'approval announcement', 'approval');
      return { announcedAt: at, channels: entries };
    },

    /**
     * Resolves the PagerDuty incident of a VPSieNode (dedup_key = its workflow id) after a later run ended
     * `Recovered` or `Remediated`. A no-op in PagerDuty when no incident is open, so the workflow may call it at
     * every such end. Only when PagerDuty is in some route; otherwise answers no entries.
     */
    async resolveEscalation(input: ResolveEscalationInput): Promise<EscalationResolution> {
      const workflowId = input?.workflowId;
      if (typeof workflowId !== 'string' || workflowId.trim() === '' || workflowId.length > 1000)
        throw ApplicationFailure.nonRetryable(
          `resolve.workflowId must be a non-empty string of at most 1000 characters, got ${JSON.stringify(workflowId)}`,
          'InvalidInput',
        );
      try {
        validateRef(input.ref);
      } catch (err) {
        if (err instanceof InvalidInputError)
          throw ApplicationFailure.nonRetryable(`resolve.ref.${err.message}`, 'InvalidInput');
        throw err;
      }
      const at = new Date().toISOString();
      const routed =
        channels?.pagerduty !== undefined &&
        Object.values(channels.routes).some((list) => list.includes('pagerduty'));
      const tasks = routed
        ? [channelTask('pagerduty', channels, async () => ({ kind: 'resolve', workflowId }), '')]
        : [];
      const entries = await runTasks(tasks, earlierProgress(), 'resolve', 'resolve');
      if (entries.length)
        activityLog('info', 'Runbook escalation resolved', { workflowId, outcome: input.outcome, entries });
      return { resolvedAt: at, channels: entries };
    },
  };
}
