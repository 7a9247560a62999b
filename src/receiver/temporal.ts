/**
 * The receiver's side of Temporal: start or join a VPSieNode's run (`startRunbook`), recognise a repeat of a
 * firing whose run has closed, tell open runs that their alert resolved, and answer whether Temporal is there.
 * Every call has a deadline, so an unreachable server is an answer (503) within it, not a hang. A firing this
 * receiver has already answered is answered again from its record (handled.ts) without a call, and the work
 * that does reach Temporal is bounded (limiter.ts).
 */
import {
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import { runsStarted } from '../metrics';
import { workflowIdFor, WORKFLOW_ID_PREFIX, type RunbookOptions } from '../runbook/input';
import type { NodeGroupRef } from '../runbook/evidence';
import type { Severity } from '../runbook/evidence-bundle';
import type { ResolvedAlert } from '../runbook/report';
import type { VPSieNodeRef } from '../runbook/types';
import { ORIGIN_MEMO_KEY, startRunbook, type RunOrigin } from '../temporal/start-runbook';
import { alertResolvedSignal } from '../workflows/messages';
import { NodeGroup as NodeGroupAttribute } from '../workflows/search-attributes';
import { sameFiring, type AlertIdentity } from './alerts';
import { firingKey, HandledFirings, type HandledOptions } from './handled';
import { Limiter, LimiterFullError, type LimiterOptions } from './limiter';

/** Deadline of the Temporal calls for one VPSieNode (a few calls in a row); a bounded answer for Alertmanager. */
export const DEFAULT_TEMPORAL_TIMEOUT_MS = 10_000;
/** Prometheus and Temporal clocks may differ: older closed runs are looked for from this long before startsAt. */
const CLOCK_SLACK_MS = 3_600_000;
/** Closed runs looked at when deciding whether a firing already had its run. */
const MAX_CLOSED_RUNS = 200;

/**
 * What happened to one VPSieNode's run:
 * - `started`: a new run; `joined`: the run already open for the VPSieNode (repeats, or another alert); a repeat
 *   answered from the receiver's record names the run this firing started or joined, open when Temporal was asked;
 * - `repeat`: this firing's run has closed and the alert still fires: nothing started (a new firing would);
 * - `signalled`: the open run was told that the alert resolved; `no-open-run`: resolved, and no run is open.
 */
export type RunAction = 'started' | 'joined' | 'repeat' | 'signalled' | 'no-open-run';

export interface RunAnswer {
  vpsieNode: string;
  workflowId: string;
  action: RunAction;
  runId?: string;
  /** For `repeat`: which closed run answered this firing, and how it ended. */
  why?: string;
}

/** Temporal could not be reached or refused the call: the alert was not handled; Alertmanager should retry. */
export class TemporalUnavailableError extends Error {
  override name = 'TemporalUnavailableError';
}

/** Too much Temporal work in flight already: the alert was not handled; Alertmanager should retry a bit later. */
export class ReceiverOverloadedError extends TemporalUnavailableError {
  override name = 'ReceiverOverloadedError';
  /** Retry-After of the answer: about how long a full line takes to clear. */
  readonly retryAfterSeconds = 5;
}

/** gRPC status codes that mean the server was not there (in time): UNAVAILABLE, DEADLINE_EXCEEDED. */
const UNREACHABLE_CODES = new Set([14, 4]);

/** One line for the answer and the log: unreachable within the deadline, or the SDK's message with the server's. */
function describeTemporalError(err: unknown, timeoutMs: number): string {
  const cause = err instanceof ServiceError ? err.cause : err;
  const grpc = isGrpcServiceError(cause) ? cause : null;
  const detail = grpc ? grpc.details || grpc.message : cause instanceof Error ? cause.message : String(cause);
  if (grpc && UNREACHABLE_CODES.has(grpc.code))
    return `Temporal could not be reached within ${timeoutMs} ms (${detail})`;
  const message = err instanceof Error ? err.message : String(err);
  return `Temporal: ${message.includes(detail) ? message : `${message}: ${detail}`}`;
}

export interface RunbookDoorOptions {
  client: Client;
  /** The worker's task queue (TEMPORAL_TASK_QUEUE). */
  taskQueue: string;
  /** Deadline of the calls for one VPSieNode; default {@link DEFAULT_TEMPORAL_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Options every run started here gets (tests and the demo shorten the waits); the alert's severity is added. */
  runOptions?: RunbookOptions;
  /** Bounds of the record of answered firings (handled.ts); `maxEntries: 0` keeps none. */
  handled?: HandledOptions;
  /** Bounds of the Temporal work in flight (limiter.ts). */
  limits?: LimiterOptions;
}

/** What the record keeps of a firing's answer. */
type Recorded = Pick<RunAnswer, 'action' | 'runId' | 'why'>;

interface LatestRun {
  runId: string;
  open: boolean;
  status: string;
  origin: unknown;
}

/** The runbook's runs as the receiver sees them: started, joined, told, listed. */
export class RunbookDoor {
  private readonly client: Client;
  private readonly taskQueue: string;
  private readonly timeoutMs: number;
  private readonly runOptions: RunbookOptions;
  /**
   * One decision at a time per workflow id in this process, so "started" and "repeat" are decided in order, and
   * identical alerts that arrive together wait for the first one's answer and take it from the record.
   */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly handled: HandledFirings<Recorded>;
  private readonly limiter: Limiter;

  constructor(options: RunbookDoorOptions) {
    this.client = options.client;
    this.taskQueue = options.taskQueue;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TEMPORAL_TIMEOUT_MS;
    this.runOptions = options.runOptions ?? {};
    this.handled = new HandledFirings(options.handled);
    this.limiter = new Limiter(options.limits);
  }

  /** The options runs started here get (the fan-out uses their controller limits). */
  get options(): RunbookOptions {
    return this.runOptions;
  }

  /**
   * A firing alert for one VPSieNode: joins its open run, or starts one, unless a closed run already answered
   * this very firing (same fingerprint and startsAt in its memo `origin`). A firing answered here before (within
   * the record's bounds) gets that answer again without asking Temporal.
   */
  async fire(
    ref: VPSieNodeRef,
    origin: RunOrigin,
    severity: Severity | null,
    identity: AlertIdentity,
  ): Promise<RunAnswer> {
    const workflowId = workflowIdFor(ref);
    const base = { vpsieNode: `${ref.namespace}/${ref.name}`, workflowId };
    const key = firingKey(workflowId, identity.fingerprint, identity.startsAt);
    return (
      this.fromRecord(key, base) ??
      this.serialized(workflowId, async () => {
        // an identical alert that came together with this one may have been answered meanwhile
        const recorded = this.fromRecord(key, base);
        if (recorded) return recorded;
        const { answer, final } = await this.decideFiring(workflowId, base, ref, origin, severity, identity);
        if (final) this.handled.set(key, { action: answer.action, runId: answer.runId, why: answer.why });
        return answer;
      })
    );
  }

  /**
   * The record's answer to a repeat: a firing whose run this is joins it (as a start would have, the run being
   * open when Temporal was asked); one whose closed run answered it is that repeat again.
   */
  private fromRecord(key: string, base: { vpsieNode: string; workflowId: string }): RunAnswer | undefined {
    const e = this.handled.get(key);
    if (!e) return undefined;
    const { action, runId, why } = e.value;
    if (action === 'repeat') return { ...base, action, ...(runId ? { runId } : {}), ...(why ? { why } : {}) };
    runsStarted.inc({ source: 'alertmanager', result: 'joined' });
    return {
      ...base,
      action: 'joined',
      ...(runId ? { runId } : {}),
      why: `a repeat of this firing, which ${action} run ${runId} at ${new Date(e.at).toISOString()} (answered from this receiver's record)`,
    };
  }

  /**
   * Asks Temporal. `final`: the answer holds for every repeat of this firing, so the record may keep it: the run
   * carries this firing (started for it, or a closed run of it); a run it only joined does not when another
   * alert started it, since once that run closes a repeat of this firing starts a run of its own.
   */
  private decideFiring(
    workflowId: string,
    base: { vpsieNode: string; workflowId: string },
    ref: VPSieNodeRef,
    origin: RunOrigin,
    severity: Severity | null,
    identity: AlertIdentity,
  ): Promise<{ answer: RunAnswer; final: boolean }> {
    return this.call(async () => {
      const latest = await this.latestRun(workflowId);
      if (latest && !latest.open) {
        const earlier = sameFiring(latest.origin, identity)
          ? latest
          : await this.closedRunOfFiring(workflowId, identity);
        if (earlier)
          return {
            answer: {
              ...base,
              action: 'repeat' as const,
              runId: earlier.runId,
              why: `run ${earlier.runId} for this firing (startsAt ${identity.startsAt}) ended ${earlier.status}; a new firing starts a new run`,
            },
            final: true,
          };
      }
      const started = await startRunbook(
        this.client,
        { ...ref, options: { ...this.runOptions, ...(severity ? { severity } : {}) } },
        { taskQueue: this.taskQueue, origin },
      );
      // the server says whether this start made the run or found one open (another replica's, the CLI's)
      const action = started.started ? 'started' : 'joined';
      runsStarted.inc({ source: 'alertmanager', result: action });
      const ofThisFiring =
        started.started ||
        (latest?.open === true && latest.runId === started.runId && sameFiring(latest.origin, identity));
      return { answer: { ...base, action, runId: started.runId }, final: ofThisFiring };
    });
  }

  /** A resolved alert for one VPSieNode: its open run is told (signal `alertResolved`); none open, nothing to do. */
  async resolve(ref: VPSieNodeRef, resolved: ResolvedAlert): Promise<RunAnswer> {
    const workflowId = workflowIdFor(ref);
    const base = { vpsieNode: `${ref.namespace}/${ref.name}`, workflowId };
    return this.serialized(workflowId, () =>
      this.call(async () => {
        try {
          await this.client.workflow.getHandle(workflowId).signal(alertResolvedSignal, resolved);
          return { ...base, action: 'signalled' as const };
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return { ...base, action: 'no-open-run' as const };
          throw err;
        }
      }),
    );
  }

  /**
   * The VPSieNodes of a NodeGroup whose run is open: those started for the NodeGroup (memo `origin.nodeGroup`)
   * and those that found it (search attribute `NodeGroup`). A resolved NodeGroup alert is passed to each.
   */
  async openRunsOf(nodeGroup: NodeGroupRef): Promise<VPSieNodeRef[]> {
    const prefix = `${WORKFLOW_ID_PREFIX}/${nodeGroup.namespace}/`;
    return this.call(async () => {
      const refs: VPSieNodeRef[] = [];
      const query = `WorkflowId STARTS_WITH '${prefix}' AND ExecutionStatus = 'Running'`;
      for await (const run of this.client.workflow.list({ query })) {
        const origin = run.memo?.[ORIGIN_MEMO_KEY] as Partial<RunOrigin> | undefined;
        if (
          origin?.nodeGroup !== nodeGroup.name &&
          run.typedSearchAttributes.get(NodeGroupAttribute) !== nodeGroup.name
        )
          continue;
        refs.push({ namespace: nodeGroup.namespace, name: run.workflowId.slice(prefix.length) });
      }
      return refs;
    });
  }

  /** Ready means Temporal answers: the frontend's own health check, within the deadline (never queued). */
  async ready(): Promise<void> {
    await this.call(async () => {
      await this.client.workflowService.getSystemInfo({});
    }, false);
  }

  /**
   * Runs `fn` with the deadline, once the limiter gives it a place (`limited`); Temporal's failures become
   * TemporalUnavailableError, no place in time ReceiverOverloadedError.
   */
  private async call<T>(fn: () => Promise<T>, limited = true): Promise<T> {
    const withDeadline = () => this.client.withDeadline(Date.now() + this.timeoutMs, fn);
    try {
      return await (limited ? this.limiter.run(withDeadline) : withDeadline());
    } catch (err) {
      if (err instanceof TemporalUnavailableError) throw err;
      if (err instanceof LimiterFullError) throw new ReceiverOverloadedError(err.message);
      throw new TemporalUnavailableError(describeTemporalError(err, this.timeoutMs));
    }
  }

  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return next;
  }

  private async latestRun(workflowId: string): Promise<LatestRun | null> {
    try {
      const d = await this.client.workflow.getHandle(workflowId).describe();
      return {
        runId: d.runId,
        open: d.status.name === 'RUNNING',
        status: d.status.name,
        origin: d.memo?.[ORIGIN_MEMO_KEY],
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return null;
      throw err;
    }
  }

  /**
   * An older closed run of this VPSieNode started by this firing. Two alerts about one node (its own and its
   * NodeGroup's) each start a run in turn; without this, their repeats would take turns starting new ones.
   */
  private async closedRunOfFiring(
    workflowId: string,
    identity: AlertIdentity,
  ): Promise<{ runId: string; status: string } | null> {
    const since = new Date(Date.parse(identity.startsAt) - CLOCK_SLACK_MS).toISOString();
    const query = `WorkflowId = '${workflowId}' AND ExecutionStatus != 'Running' AND StartTime >= '${since}'`;
    let seen = 0;
    for await (const run of this.client.workflow.list({ query }) as AsyncIterable<WorkflowExecutionInfo>) {
      if (sameFiring(run.memo?.[ORIGIN_MEMO_KEY], identity))
        return { runId: run.runId, status: run.status.name };
      if (++seen >= MAX_CLOSED_RUNS) break;
    }
    return null;
  }
}
