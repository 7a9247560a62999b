/**
 * The runbook's side of the NodeGroup lease (nodegroup-lease.ts): ask and wait for a grant, give it back, and
 * report a failing VPSieNode for the storm count. Workflow code: requests and reports go by activity (a workflow
 * cannot signal-with-start), answers arrive by signal, releases go by signal to the lease workflow.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunbookActivities } from '../activities';
import type { NodeGroupRef } from '../runbook/evidence';
import { InvalidInputError } from '../runbook/input';
import {
  leaseWorkflowId,
  MAX_LEASE_WAIT_MS,
  MIN_LEASE_MS,
  resolveLeasePolicy,
  validateFailureReport,
  validateLeaseRequest,
  validateNodeGroupRef,
  type FailingVPSieNode,
  type LeaseNotice,
  type LeasePolicyInput,
  type StormAnswer,
} from '../runbook/lease';
import { leaseNoticeSignal, leaseReleaseSignal } from './nodegroup-lease';
import { HEARTBEAT_TIMEOUT } from './reads';

/** One signal-with-start each: seconds; retried while the server is unreachable, never for bad input. */
const { requestNodeGroupLease, reportNodeGroupFailure } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['InvalidInput'],
  },
});

export interface AcquireLeaseOptions {
  nodeGroup: NodeGroupRef;
  /** The step that will hold the lease; workflowId and runId default to (and must be) this run's. */
  holder: { stepId: string; workflowId?: string; runId?: string };
  /** A lease not released within this is taken back and granted to the next (a crashed holder). */
  ttlMs: number;
  /** How long to wait for the grant before giving up with `why: 'timeout'`. */
  timeoutMs: number;
  /** Holders at once this step accepts, itself included; default the NodeGroup's budget (1 unless configured). */
  budget?: number;
  /** The NodeGroup's policy, used only if this request starts the lease workflow. */
  policy?: LeasePolicyInput;
}

export type AcquireLeaseResult =
  | { granted: true; leaseId: string; expiresAt: string }
  | { granted: false; why: 'storm'; storm: StormAnswer }
  | { granted: false; why: 'timeout' };

/** A lease this run asked for: waiting, held, taken back after its TTL, or given back. */
export type LeaseProgress = 'waiting' | 'held' | 'expired' | 'released';

/** How long a reporter waits for the lease to count its report before it goes on without knowing. */
export const REPORT_ANSWER_WAIT_MS = 60_000;

/**
 * Notices received by this run, by request (or report) id. Module state is per workflow run in Temporal's
 * sandbox.
 */
let notices: Map<string, LeaseNotice[]> | null = null;
const released = new Set<string>();
/** The NodeGroup storm this run has been told of; `first` once any notice said so. */
let storm: StormAnswer | null = null;

type Answer = Exclude<LeaseNotice, { kind: 'storm' }>;

function isStormAnswer(v: unknown): v is StormAnswer {
  const s = v as Partial<StormAnswer> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.count === 'number' &&
    typeof s.threshold === 'number' &&
    typeof s.window === 'string' &&
    typeof s.since === 'string' &&
    typeof s.first === 'boolean' &&
    Array.isArray(s.vpsieNodes)
  );
}

function listen(): Map<string, LeaseNotice[]> {
  if (notices) return notices;
  const received = new Map<string, LeaseNotice[]>();
  setHandler(leaseNoticeSignal, (notice: LeaseNotice) => {
    // Anyone may signal a run; only well-formed notices count.
    if (typeof notice !== 'object' || notice === null) return;
    if ('storm' in notice && isStormAnswer(notice.storm))
      storm = { ...notice.storm, first: notice.storm.first || (storm?.first ?? false) };
    if (notice.kind === 'storm') return;
    if (typeof notice.requestId !== 'string') return;
    if (!['granted', 'refused', 'expired', 'counted'].includes(notice.kind)) return;
    received.set(notice.requestId, [...(received.get(notice.requestId) ?? []), notice]);
  });
  notices = received;
  return received;
}

/**
 * The storm of this run's NodeGroup, if the lease has told this run of one (by refusing its request, answering
 * its failure report, or announcing it): the run stops remediating. Only a run told `first` pages for the group.
 */
export function stormNotice(): StormAnswer | null {
  return storm;
}

function invalid(err: unknown): never {
  if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
  throw err;
}

/** Sends `release` to the lease workflow; one that has already completed holds nothing, so that is fine too. */
async function sendRelease(nodeGroup: NodeGroupRef, requestId: string): Promise<void> {
  released.add(requestId);
  // Also when the run is being cancelled: a held lease must go back (a `finally` around the step calls this).
  await CancellationScope.nonCancellable(async () => {
    try {
      await getExternalWorkflowHandle(leaseWorkflowId(nodeGroup)).signal(leaseReleaseSignal, { requestId });
    } catch {
      // The lease workflow is gone (idled out after the TTL took the lease back): nothing is held.
    }
  });
}

/**
 * Asks for the NodeGroup's lease and waits for the answer: granted (hold it until `releaseLease`, at most
 * `ttlMs`), refused because the NodeGroup is in a storm (exactly one requester per storm gets `storm.first`), or
 * nothing within `timeoutMs` (the request is withdrawn). If the run is cancelled while waiting, the request is
 * withdrawn too.
 */
export async function acquireLease(options: AcquireLeaseOptions): Promise<AcquireLeaseResult> {
  const info = workflowInfo();
  const holder = {
    workflowId: options.holder?.workflowId ?? info.workflowId,
    runId: options.holder?.runId ?? info.runId,
    stepId: options.holder?.stepId,
  };
  let nodeGroup: NodeGroupRef;
  const requestId = uuid4();
  const request = {
    requestId,
    holder,
    ttlMs: options.ttlMs,
    waitMs: options.timeoutMs,
    ...(options.budget === undefined ? {} : { budget: options.budget }),
  };
  try {
    nodeGroup = validateNodeGroupRef(options.nodeGroup);
    const t = options.timeoutMs;
    if (typeof t !== 'number' || !(t >= MIN_LEASE_MS && t <= MAX_LEASE_WAIT_MS))
      throw new InvalidInputError(
        `timeoutMs must be milliseconds between ${MIN_LEASE_MS} and ${MAX_LEASE_WAIT_MS}, got ${JSON.stringify(t)}`,
      );
    validateLeaseRequest(request);
    if (holder.workflowId !== info.workflowId || holder.runId !== info.runId)
      throw new InvalidInputError(
        `holder must be this run (${info.workflowId} ${info.runId}): the answer is signalled to the holder, got ${holder.workflowId} ${holder.runId}`,
      );
    resolveLeasePolicy(options.policy);
  } catch (err) {
    invalid(err);
  }
  const received = listen();
  const answer = (): Extract<Answer, { kind: 'granted' | 'refused' }> | undefined =>
    received
      .get(requestId)
      ?.find(
        (n): n is Extract<Answer, { kind: 'granted' | 'refused' }> =>
          n.kind === 'granted' || n.kind === 'refused',
      );
  try {
    await requestNodeGroupLease.executeWithOptions(
      { summary: `ask for NodeGroup ${nodeGroup.namespace}/${nodeGroup.name}'s lease (${holder.stepId})` },
      [{ nodeGroup, request, ...(options.policy ? { policy: options.policy } : {}) }],
    );
    const answered = await condition(() => answer() !== undefined, options.timeoutMs);
    const a = answer();
    if (!answered || !a) {
      await sendRelease(nodeGroup, requestId);
      return { granted: false, why: 'timeout' };
    }
    if (a.kind === 'refused') return { granted: false, why: a.why, storm: a.storm };
    return { granted: true, leaseId: requestId, expiresAt: a.expiresAt };
  } catch (err) {
    // Cancelled, or the request could not be sent: whatever the lease made of it, it must not stay held.
    await sendRelease(nodeGroup, requestId);
    throw err;
  }
}

/** Gives a lease back (or withdraws the request). Safe to call twice, after expiry, or after a refusal. */
export async function releaseLease(options: { nodeGroup: NodeGroupRef; leaseId: string }): Promise<void> {
  let nodeGroup: NodeGroupRef;
  try {
    nodeGroup = validateNodeGroupRef(options.nodeGroup);
  } catch (err) {
    invalid(err);
  }
  if (released.has(options.leaseId)) return;
  await sendRelease(nodeGroup, options.leaseId);
}

/** Where a lease this run asked for stands, as far as this run has been told. */
export function leaseProgress(leaseId: string): LeaseProgress {
  if (released.has(leaseId)) return 'released';
  const seen = (notices?.get(leaseId) ?? []) as Answer[];
  if (seen.some((n) => n.kind === 'expired')) return 'expired';
  return seen.some((n) => n.kind === 'granted') ? 'held' : 'waiting';
}

/**
 * Tells the NodeGroup's lease that `vpsieNode` failed, at `at` (default now): the storm count. Reporting the same
 * VPSieNode again counts once. Waits (at most {@link REPORT_ANSWER_WAIT_MS}) for the lease to count it and
 * answers the storm the group is in, if any: a run whose report begins a storm learns it before it asks anyone.
 * A storm that begins later is announced to this run too ({@link stormNotice}).
 */
export async function reportFailure(options: {
  nodeGroup: NodeGroupRef;
  vpsieNode: FailingVPSieNode;
  at?: string;
  policy?: LeasePolicyInput;
}): Promise<StormAnswer | null> {
  let nodeGroup: NodeGroupRef;
  let report: ReturnType<typeof validateFailureReport>;
  const info = workflowInfo();
  try {
    nodeGroup = validateNodeGroupRef(options.nodeGroup);
    report = validateFailureReport({
      vpsieNode: options.vpsieNode,
      at: options.at ?? new Date().toISOString(),
      workflowId: info.workflowId,
      runId: info.runId,
      reportId: uuid4(),
    });
  } catch (err) {
    invalid(err);
  }
  const received = listen();
  await reportNodeGroupFailure.executeWithOptions(
    {
      summary: `report VPSieNode ${report.vpsieNode.namespace}/${report.vpsieNode.name} failing to NodeGroup ${nodeGroup.name}'s lease`,
    },
    [{ nodeGroup, report, ...(options.policy ? { policy: options.policy } : {}) }],
  );
  const reportId = report.reportId as string;
  await condition(() => received.has(reportId), REPORT_ANSWER_WAIT_MS);
  return storm;
}
