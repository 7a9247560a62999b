/**
 * The blast-radius lease of one NodeGroup, as plain data and decisions: who holds it, who waits, which of the
 * group's VPSieNodes failed lately, and whether that is a storm (Cluster API's MachineHealthCheck `maxUnhealthy`:
 * when too much is broken at once, stop remediating and hand it to people).
 *
 * The workflow (src/workflows/nodegroup-lease.ts) feeds it the signals it receives and the workflow clock, and
 * sends the notices each step leaves in `outbox`. Pure: no Temporal, no I/O, no clock of its own; every function
 * returns a new state and leaves its argument as it was.
 */
import { formatDuration, parseDuration, type DurationInput } from './duration';
import type { NodeGroupRef } from './evidence';
import { InvalidInputError } from './input';

export const LEASE_WORKFLOW_ID_PREFIX = 'nodegroup-lease';

/** One lease workflow per NodeGroup: every request for the group's lease lands on it (signal-with-start). */
export function leaseWorkflowId(nodeGroup: NodeGroupRef): string {
  return `${LEASE_WORKFLOW_ID_PREFIX}/${nodeGroup.namespace}/${nodeGroup.name}`;
}

/** Who holds or asks: the run (workflow id and run id, where grants are signalled) and the plan step. */
export interface LeaseHolderRef {
  workflowId: string;
  runId: string;
  stepId: string;
}

/** How the lease of one NodeGroup behaves, as callers write it; unset fields take the defaults. */
export interface LeasePolicyInput {
  /** Holders at once, unless a request says otherwise; default 1. */
  budget?: number;
  /** A storm is more failing VPSieNodes than this inside the window; default 3. */
  stormThreshold?: number;
  /** Default 15m. */
  stormWindow?: DurationInput;
  /** With nothing held, queued or counted for this long, the lease workflow completes; default 10m. */
  idleAfter?: DurationInput;
  /** History events per run before it continues as new (earlier if the server suggests it); default 2000. */
  eventsPerRun?: number;
}

export interface LeasePolicy {
  budget: number;
  stormThreshold: number;
  stormWindowMs: number;
  idleAfterMs: number;
  eventsPerRun: number;
}

export const LEASE_DEFAULTS: LeasePolicy = {
  budget: 1,
  stormThreshold: 3,
  stormWindowMs: 15 * 60_000,
  idleAfterMs: 10 * 60_000,
  eventsPerRun: 2000,
};

/** A NodeGroup of a hundred nodes down at once is no longer a blast radius. */
export const MAX_LEASE_BUDGET = 100;
export const MAX_STORM_THRESHOLD = 1000;
const SECOND = 1000;
const DAY = 86_400_000;
/** The shortest TTL and wait: anything less is a unit slip (`60` meant as a minute). */
export const MIN_LEASE_MS = SECOND;
/** A destructive step and its verification take minutes to an hour; a day is a lease nobody gave back. */
export const MAX_LEASE_TTL_MS = DAY;
/** As long as an approval may wait. */
export const MAX_LEASE_WAIT_MS = 7 * DAY;
export const MAX_STORM_WINDOW_MS = DAY;
export const MAX_IDLE_AFTER_MS = DAY;
/** A run must be able to start, take a few signals and carry its state before it continues again. */
export const MIN_EVENTS_PER_RUN = 20;
/** Below the 10,240 events at which the server starts warning. */
export const MAX_EVENTS_PER_RUN = 10_000;
/** Ended leases kept (for `status`, and to drop a request delivered twice). */
export const MAX_ENDED_RECORDS = 50;
/** Refused signals kept, so a flood of bad payloads cannot grow `status`. */
export const MAX_REFUSED_SIGNALS = 20;
export const MAX_LEASE_ID_LENGTH = 1000;
export const MAX_LEASE_STEP_ID_LENGTH = 253;

/** The `request` signal: asks for the lease; the answer comes back as a {@link LeaseNotice} signal. */
export interface LeaseRequest {
  /** Chosen by the requester, unique; a granted lease's id is its request's id. */
  requestId: string;
  holder: LeaseHolderRef;
  /** A granted lease not released within this is taken back and the next request granted. */
  ttlMs: number;
  /** How long the requester waits; the lease drops the request after that (the requester gave up). */
  waitMs: number;
  /**
   * Holders at once this requester accepts, itself included; default the NodeGroup's budget. It is granted only
   * while the count stays within its budget and within the budget of every current holder.
   */
  budget?: number;
}

/** The `release` signal: gives a lease back, or withdraws a request still waiting. */
export interface LeaseRelease {
  /** The lease id (= the request id). */
  requestId: string;
}

/** A failing VPSieNode of the NodeGroup; uid tells a same-named replacement apart. */
export interface FailingVPSieNode {
  namespace: string;
  name: string;
  uid?: string;
}

/**
 * The `failure` signal: a run found this VPSieNode failed; the storm count. A reporter that gives its workflow id
 * is told when a storm begins (signal `lease-notice`, kind `storm`); with a `reportId` and `runId` too, it gets a
 * `counted` answer saying whether the group is in a storm now.
 */
export interface FailureReport {
  vpsieNode: FailingVPSieNode;
  /** When it was found failing (the reporter's workflow time), ISO 8601. */
  at: string;
  /** The reporting run's workflow id. */
  workflowId?: string;
  /** The reporting run's run id: where the answers go. */
  runId?: string;
  /** Chosen by the reporter; the `counted` answer carries it. */
  reportId?: string;
}

/** What a storm refusal says: enough for the runbook to escalate once for the group, with the common evidence. */
export interface StormAnswer {
  /** Failing VPSieNodes inside the window. */
  count: number;
  threshold: number;
  /** The window as text ("15m"), and in milliseconds. */
  window: string;
  windowMs: number;
  /** When the count first exceeded the threshold. */
  since: string;
  /** True for exactly one requester per storm: the one that escalates for the group. */
  first: boolean;
  /** `namespace/name` of each failing VPSieNode in the window, oldest first. */
  vpsieNodes: string[];
}

/** What the lease signals to a requester or reporter (signal `lease-notice`). */
export type LeaseNotice =
  | { kind: 'granted'; requestId: string; nodeGroup: NodeGroupRef; expiresAt: string }
  | { kind: 'refused'; requestId: string; nodeGroup: NodeGroupRef; why: 'storm'; storm: StormAnswer }
  /** The holder did not release within its TTL: the lease is no longer its. */
  | { kind: 'expired'; requestId: string; nodeGroup: NodeGroupRef; at: string }
  /** The answer to a failure report (`requestId` is its `reportId`): the storm, if the group is in one. */
  | { kind: 'counted'; requestId: string; nodeGroup: NodeGroupRef; storm: StormAnswer | null }
  /**
   * A storm began (or a reporter joined one): sent once per storm to every run that reported a failing VPSieNode
   * of the group, so that one waiting for a person stops asking for approval.
   */
  | { kind: 'storm'; nodeGroup: NodeGroupRef; storm: StormAnswer };

export interface OutgoingNotice {
  /** No runId: the latest run of the workflow (a reporter that gave none). */
  to: { workflowId: string; runId?: string };
  notice: LeaseNotice;
}

export interface LeaseHolding {
  leaseId: string;
  holder: LeaseHolderRef;
  requestedAt: string;
  since: string;
  expiresAt: string;
  budget: number;
}

export interface LeaseWaiting {
  requestId: string;
  holder: LeaseHolderRef;
  requestedAt: string;
  /** After this the requester has given up; the request is dropped. */
  waitUntil: string;
  ttlMs: number;
  budget: number;
}

export interface FailureRecord {
  vpsieNode: FailingVPSieNode;
  /** The latest report's time. */
  at: string;
  /** Reports of this VPSieNode received (retries and re-fired alerts count once in the storm count). */
  reports: number;
  workflowId: string | null;
  runId: string | null;
}

/**
 * How a lease or request ended: released by its holder, taken back after its TTL, withdrawn while waiting,
 * dropped because the holder's run is gone (the grant could not be delivered), refused in a storm, or dropped
 * because the requester stopped waiting.
 */
export type LeaseEnd =
  'released' | 'expired' | 'withdrawn' | 'holder-gone' | 'refused-storm' | 'wait-expired';

export interface LeaseEnded {
  requestId: string;
  holder: LeaseHolderRef;
  requestedAt: string;
  /** When it was granted; null if it never was. */
  since: string | null;
  endedAt: string;
  how: LeaseEnd;
}

export type LeaseSignalName = 'request' | 'release' | 'failure';

export interface RefusedSignal {
  signal: LeaseSignalName;
  at: string;
  error: string;
}

export interface StormState {
  active: boolean;
  /** When the current storm began; null when there is none. */
  since: string | null;
  /**
   * The run told `first: true` in the current storm (the one that escalates for the group): the reporter whose
   * failure began it, else the first requester refused, else the run that reported the oldest failure. The
   * request id when it was a requester. Null until there is one.
   */
  first: { requestId: string | null; workflowId: string } | null;
  /** Runs told of the current storm (workflow ids), and whether they were told `first`. */
  told: { workflowId: string; first: boolean }[];
  /** Runs that could not be told they were first (they had ended): never chosen again in this storm. */
  unreachable: string[];
  /** When the last storm ended (the failures aged out of the window). */
  lastEndedAt: string | null;
}

export interface LeaseCounters {
  requests: number;
  grants: number;
  releases: number;
  expirations: number;
  stormRefusals: number;
  failureReports: number;
}

/** Everything the lease knows; carried whole when the workflow continues as new. */
export interface LeaseState {
  nodeGroup: NodeGroupRef;
  policy: LeasePolicy;
  holders: LeaseHolding[];
  /** First come, first granted. */
  queue: LeaseWaiting[];
  /** Failing VPSieNodes inside the window, one record each, oldest report first. */
  failures: FailureRecord[];
  storm: StormState;
  /** Notices the workflow has yet to send. */
  outbox: OutgoingNotice[];
  /** The latest {@link MAX_ENDED_RECORDS} ended leases and requests, oldest first. */
  ended: LeaseEnded[];
  refusedSignals: RefusedSignal[];
  counters: LeaseCounters;
  /** Since when nothing has been held, queued or counted; null while something is. */
  idleSince: string | null;
  /** The run's number in the chain of continued runs, and when the chain started. */
  run: number;
  startedAt: string;
}

/** What the `status` query answers. */
export interface LeaseStatus {
  nodeGroup: NodeGroupRef;
  workflowId: string;
  run: number;
  startedAt: string;
  policy: LeasePolicy & { stormWindow: string; idleAfter: string };
  /** The NodeGroup's budget (a request may carry its own). */
  budget: number;
  holders: LeaseHolding[];
  queue: LeaseWaiting[];
  failures: FailureRecord[];
  storm: StormState & { count: number; threshold: number; window: string; escalated: boolean };
  ended: LeaseEnded[];
  refusedSignals: RefusedSignal[];
  counters: LeaseCounters;
  idleSince: string | null;
  /** When the workflow completes if nothing arrives; null while something is held, queued or counted. */
  idleUntil: string | null;
}

// ---------------------------------------------------------------------------------------------------------------
// Validation: every signal payload and input is checked; the error names the field and the value.

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownFields(v: Record<string, unknown>, known: readonly string[], what: string): string[] {
  const extra = Object.keys(v).filter((k) => !known.includes(k));
  return extra.length ? [`${what}: unknown field(s) ${extra.join(', ')}`] : [];
}

function idProblem(v: unknown, what: string, max = MAX_LEASE_ID_LENGTH): string | null {
  return typeof v === 'string' && v !== '' && v.length <= max && v.trim() === v
    ? null
    : `${what} must be a non-empty string of at most ${max} characters without surrounding spaces, got ${show(v)}`;
}

function wholeProblem(v: unknown, what: string, min: number, max: number): string | null {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
    ? null
    : `${what} must be a whole number between ${min} and ${max}, got ${show(v)}`;
}

function msProblem(v: unknown, what: string, min: number, max: number): string | null {
  return typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max
    ? null
    : `${what} must be milliseconds between ${min} (${formatDuration(min)}) and ${max} (${formatDuration(max)}), got ${show(v)}`;
}

function isTimestamp(v: unknown): v is string {
  return typeof v === 'string' && !Number.isNaN(Date.parse(v));
}

function fail(problems: (string | null)[]): void {
  const found = problems.filter((p): p is string => p !== null);
  if (found.length) throw new InvalidInputError(found.join('; '));
}

/** A NodeGroup reference as Kubernetes names it: namespace a DNS label, name a DNS subdomain. */
export function validateNodeGroupRef(raw: unknown, what = 'nodeGroup'): NodeGroupRef {
  if (!isRecord(raw)) throw new InvalidInputError(`${what} must be an object, got ${show(raw)}`);
  const { namespace, name } = raw;
  fail([
    typeof namespace === 'string' && namespace.length <= 63 && DNS_LABEL.test(namespace)
      ? null
      : `${what}.namespace must be a namespace name (DNS label), got ${show(namespace)}`,
    typeof name === 'string' && name.length <= 253 && DNS_SUBDOMAIN.test(name)
      ? null
      : `${what}.name must be a NodeGroup name (DNS subdomain), got ${show(name)}`,
    ...unknownFields(raw, ['namespace', 'name'], what),
  ]);
  return { namespace: namespace as string, name: name as string };
}

function validateHolder(raw: unknown, what: string): LeaseHolderRef {
  if (!isRecord(raw)) throw new InvalidInputError(`${what} must be an object, got ${show(raw)}`);
  fail([
    idProblem(raw.workflowId, `${what}.workflowId`),
    idProblem(raw.runId, `${what}.runId`),
    idProblem(raw.stepId, `${what}.stepId`, MAX_LEASE_STEP_ID_LENGTH),
    ...unknownFields(raw, ['workflowId', 'runId', 'stepId'], what),
  ]);
  return { workflowId: raw.workflowId as string, runId: raw.runId as string, stepId: raw.stepId as string };
}

/** The `request` signal's payload. */
export function validateLeaseRequest(raw: unknown): LeaseRequest {
  if (!isRecord(raw)) throw new InvalidInputError(`request must be an object, got ${show(raw)}`);
  let holder: LeaseHolderRef | null = null;
  const problems: (string | null)[] = [idProblem(raw.requestId, 'requestId')];
  try {
    holder = validateHolder(raw.holder, 'holder');
  } catch (err) {
    problems.push((err as Error).message);
  }
  problems.push(
    msProblem(raw.ttlMs, 'ttlMs', MIN_LEASE_MS, MAX_LEASE_TTL_MS),
    msProblem(raw.waitMs, 'waitMs', MIN_LEASE_MS, MAX_LEASE_WAIT_MS),
    raw.budget === undefined ? null : wholeProblem(raw.budget, 'budget', 1, MAX_LEASE_BUDGET),
    ...unknownFields(raw, ['requestId', 'holder', 'ttlMs', 'waitMs', 'budget'], 'request'),
  );
  fail(problems);
  return {
    requestId: raw.requestId as string,
    holder: holder as LeaseHolderRef,
    ttlMs: raw.ttlMs as number,
    waitMs: raw.waitMs as number,
    ...(raw.budget === undefined ? {} : { budget: raw.budget as number }),
  };
}

/** The `release` signal's payload. */
export function validateLeaseRelease(raw: unknown): LeaseRelease {
  if (!isRecord(raw)) throw new InvalidInputError(`release must be an object, got ${show(raw)}`);
  fail([idProblem(raw.requestId, 'requestId'), ...unknownFields(raw, ['requestId'], 'release')]);
  return { requestId: raw.requestId as string };
}

/** The `failure` signal's payload. */
export function validateFailureReport(raw: unknown): FailureReport {
  if (!isRecord(raw)) throw new InvalidInputError(`failure must be an object, got ${show(raw)}`);
  const n = raw.vpsieNode;
  const problems: (string | null)[] = [];
  if (!isRecord(n)) problems.push(`vpsieNode must be an object, got ${show(n)}`);
  else {
    problems.push(
      typeof n.namespace === 'string' && n.namespace.length <= 63 && DNS_LABEL.test(n.namespace)
        ? null
        : `vpsieNode.namespace must be a namespace name (DNS label), got ${show(n.namespace)}`,
      typeof n.name === 'string' && n.name.length <= 253 && DNS_SUBDOMAIN.test(n.name)
        ? null
        : `vpsieNode.name must be a VPSieNode name (DNS subdomain), got ${show(n.name)}`,
      n.uid === undefined ? null : idProblem(n.uid, 'vpsieNode.uid', 128),
      ...unknownFields(n, ['namespace', 'name', 'uid'], 'vpsieNode'),
    );
  }
  problems.push(
    isTimestamp(raw.at) ? null : `at must be an ISO 8601 timestamp, got ${show(raw.at)}`,
    raw.workflowId === undefined ? null : idProblem(raw.workflowId, 'workflowId'),
    raw.runId === undefined ? null : idProblem(raw.runId, 'runId'),
    raw.reportId === undefined ? null : idProblem(raw.reportId, 'reportId'),
    (raw.runId !== undefined || raw.reportId !== undefined) && raw.workflowId === undefined
      ? 'workflowId is required with runId or reportId (the answer goes to that run)'
      : null,
    ...unknownFields(raw, ['vpsieNode', 'at', 'workflowId', 'runId', 'reportId'], 'failure'),
  );
  fail(problems);
  const node = n as Record<string, unknown>;
  return {
    vpsieNode: {
      namespace: node.namespace as string,
      name: node.name as string,
      ...(node.uid === undefined ? {} : { uid: node.uid as string }),
    },
    at: new Date(Date.parse(raw.at as string)).toISOString(),
    ...(raw.workflowId === undefined ? {} : { workflowId: raw.workflowId as string }),
    ...(raw.runId === undefined ? {} : { runId: raw.runId as string }),
    ...(raw.reportId === undefined ? {} : { reportId: raw.reportId as string }),
  };
}

function durationWithin(
  v: DurationInput | undefined,
  what: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(v, what);
  } catch (err) {
    throw new InvalidInputError((err as Error).message);
  }
  if (ms < min || ms > max) {
    throw new InvalidInputError(
      `${what} must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${show(v)}`,
    );
  }
  return ms;
}

const POLICY_FIELDS = ['budget', 'stormThreshold', 'stormWindow', 'idleAfter', 'eventsPerRun'] as const;

/** Checks a policy and fills in the defaults. */
export function resolveLeasePolicy(raw: unknown, what = 'policy'): LeasePolicy {
  if (raw === undefined) return { ...LEASE_DEFAULTS };
  if (!isRecord(raw)) throw new InvalidInputError(`${what} must be an object, got ${show(raw)}`);
  const p = raw as LeasePolicyInput & Record<string, unknown>;
  fail([
    p.budget === undefined ? null : wholeProblem(p.budget, `${what}.budget`, 1, MAX_LEASE_BUDGET),
    p.stormThreshold === undefined
      ? null
      : wholeProblem(p.stormThreshold, `${what}.stormThreshold`, 1, MAX_STORM_THRESHOLD),
    p.eventsPerRun === undefined
      ? null
      : wholeProblem(p.eventsPerRun, `${what}.eventsPerRun`, MIN_EVENTS_PER_RUN, MAX_EVENTS_PER_RUN),
    ...unknownFields(p, POLICY_FIELDS, what),
  ]);
  return {
    budget: p.budget ?? LEASE_DEFAULTS.budget,
    stormThreshold: p.stormThreshold ?? LEASE_DEFAULTS.stormThreshold,
    stormWindowMs: durationWithin(
      p.stormWindow,
      `${what}.stormWindow`,
      LEASE_DEFAULTS.stormWindowMs,
      SECOND,
      MAX_STORM_WINDOW_MS,
    ),
    idleAfterMs: durationWithin(
      p.idleAfter,
      `${what}.idleAfter`,
      LEASE_DEFAULTS.idleAfterMs,
      SECOND,
      MAX_IDLE_AFTER_MS,
    ),
    eventsPerRun: p.eventsPerRun ?? LEASE_DEFAULTS.eventsPerRun,
  };
}

/** The lease workflow's input. `carried` is set only by the workflow itself when it continues as new. */
export interface NodeGroupLeaseInput {
  nodeGroup: NodeGroupRef;
  policy?: LeasePolicyInput;
  carried?: LeaseState;
}

/**
 * The state a new run starts from: fresh, or carried from the previous run (which wrote it; it is still checked
 * for shape and for belonging to this NodeGroup, as any input is).
 */
export function startLeaseState(raw: unknown, nowMs: number): LeaseState {
  if (!isRecord(raw)) throw new InvalidInputError(`input must be an object, got ${show(raw)}`);
  fail(unknownFields(raw, ['nodeGroup', 'policy', 'carried'], 'input'));
  const nodeGroup = validateNodeGroupRef(raw.nodeGroup);
  if (raw.carried === undefined) return initialLeaseState(nodeGroup, resolveLeasePolicy(raw.policy), nowMs);
  const c = raw.carried;
  if (!isRecord(c)) throw new InvalidInputError(`carried must be an object, got ${show(c)}`);
  const carriedGroup = validateNodeGroupRef(c.nodeGroup, 'carried.nodeGroup');
  const problems: (string | null)[] = [
    carriedGroup.namespace === nodeGroup.namespace && carriedGroup.name === nodeGroup.name
      ? null
      : `carried.nodeGroup ${carriedGroup.namespace}/${carriedGroup.name} is not ${nodeGroup.namespace}/${nodeGroup.name}`,
    wholeProblem(c.run, 'carried.run', 1, Number.MAX_SAFE_INTEGER),
    isTimestamp(c.startedAt) ? null : `carried.startedAt must be a timestamp, got ${show(c.startedAt)}`,
    c.idleSince === null || isTimestamp(c.idleSince)
      ? null
      : `carried.idleSince must be a timestamp or null, got ${show(c.idleSince)}`,
    isRecord(c.storm) ? null : `carried.storm must be an object, got ${show(c.storm)}`,
    isRecord(c.counters) ? null : `carried.counters must be an object, got ${show(c.counters)}`,
  ];
  for (const key of ['holders', 'queue', 'failures', 'outbox', 'ended', 'refusedSignals'] as const) {
    if (!Array.isArray(c[key])) problems.push(`carried.${key} must be a list, got ${show(c[key])}`);
  }
  fail(problems);
  // The policy travels with the state: the first start's policy holds until the workflow idles out.
  const policy = resolvePolicyFromState(c.policy);
  const state = c as unknown as LeaseState;
  return settle({ ...state, policy, nodeGroup, run: state.run + 1 }, nowMs);
}

function resolvePolicyFromState(raw: unknown): LeasePolicy {
  if (!isRecord(raw)) throw new InvalidInputError(`carried.policy must be an object, got ${show(raw)}`);
  fail([
    wholeProblem(raw.budget, 'carried.policy.budget', 1, MAX_LEASE_BUDGET),
    wholeProblem(raw.stormThreshold, 'carried.policy.stormThreshold', 1, MAX_STORM_THRESHOLD),
    msProblem(raw.stormWindowMs, 'carried.policy.stormWindowMs', SECOND, MAX_STORM_WINDOW_MS),
    msProblem(raw.idleAfterMs, 'carried.policy.idleAfterMs', SECOND, MAX_IDLE_AFTER_MS),
    wholeProblem(raw.eventsPerRun, 'carried.policy.eventsPerRun', MIN_EVENTS_PER_RUN, MAX_EVENTS_PER_RUN),
  ]);
  return {
    budget: raw.budget as number,
    stormThreshold: raw.stormThreshold as number,
    stormWindowMs: raw.stormWindowMs as number,
    idleAfterMs: raw.idleAfterMs as number,
    eventsPerRun: raw.eventsPerRun as number,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The state machine.

const iso = (ms: number): string => new Date(ms).toISOString();
const ms = (t: string): number => Date.parse(t);
const nodeKey = (n: FailingVPSieNode): string => `${n.namespace}/${n.name}/${n.uid ?? ''}`;

export function initialLeaseState(nodeGroup: NodeGroupRef, policy: LeasePolicy, nowMs: number): LeaseState {
  return {
    nodeGroup,
    policy,
    holders: [],
    queue: [],
    failures: [],
    storm: NO_STORM(null),
    outbox: [],
    ended: [],
    refusedSignals: [],
    counters: { requests: 0, grants: 0, releases: 0, expirations: 0, stormRefusals: 0, failureReports: 0 },
    idleSince: iso(nowMs),
    run: 1,
    startedAt: iso(nowMs),
  };
}

const NO_STORM = (lastEndedAt: string | null): StormState => ({
  active: false,
  since: null,
  first: null,
  told: [],
  unreachable: [],
  lastEndedAt,
});

function refuseSignal(state: LeaseState, signal: LeaseSignalName, err: unknown, nowMs: number): LeaseState {
  if (!(err instanceof InvalidInputError)) throw err;
  const refusedSignals = [...state.refusedSignals, { signal, at: iso(nowMs), error: err.message }];
  return { ...state, refusedSignals: refusedSignals.slice(-MAX_REFUSED_SIGNALS) };
}

function withEnded(state: LeaseState, records: LeaseEnded[]): LeaseEnded[] {
  return [...state.ended, ...records].slice(-MAX_ENDED_RECORDS);
}

/** A request: queued (first come, first granted), or refused at once in a storm. Payloads are checked first. */
export function receiveRequest(state: LeaseState, raw: unknown, nowMs: number): LeaseState {
  let req: LeaseRequest;
  try {
    req = validateLeaseRequest(raw);
  } catch (err) {
    return refuseSignal(state, 'request', err, nowMs);
  }
  const id = req.requestId;
  // The same request twice (a retried activity delivers its signal again): it is already being answered.
  const known =
    state.holders.some((h) => h.leaseId === id) ||
    state.queue.some((q) => q.requestId === id) ||
    state.ended.some((e) => e.requestId === id);
  if (known) return state;
  const waiting: LeaseWaiting = {
    requestId: id,
    holder: req.holder,
    requestedAt: iso(nowMs),
    waitUntil: iso(nowMs + req.waitMs),
    ttlMs: req.ttlMs,
    budget: req.budget ?? state.policy.budget,
  };
  return settle(
    {
      ...state,
      queue: [...state.queue, waiting],
      counters: { ...state.counters, requests: state.counters.requests + 1 },
    },
    nowMs,
  );
}

/** A release: of a held lease, or of a request still waiting. One that matches nothing changes nothing. */
export function receiveRelease(state: LeaseState, raw: unknown, nowMs: number): LeaseState {
  let rel: LeaseRelease;
  try {
    rel = validateLeaseRelease(raw);
  } catch (err) {
    return refuseSignal(state, 'release', err, nowMs);
  }
  const held = state.holders.find((h) => h.leaseId === rel.requestId);
  if (held) {
    return settle(
      {
        ...state,
        holders: state.holders.filter((h) => h !== held),
        ended: withEnded(state, [endOfHolding(held, nowMs, 'released')]),
        counters: { ...state.counters, releases: state.counters.releases + 1 },
      },
      nowMs,
    );
  }
  const waiting = state.queue.find((q) => q.requestId === rel.requestId);
  if (waiting) {
    return settle(
      {
        ...state,
        queue: state.queue.filter((q) => q !== waiting),
        ended: withEnded(state, [endOfWaiting(waiting, nowMs, 'withdrawn')]),
      },
      nowMs,
    );
  }
  return state;
}

/** A failing VPSieNode: counted once however often it is reported; its latest report's time counts. */
export function receiveFailure(state: LeaseState, raw: unknown, nowMs: number): LeaseState {
  let report: FailureReport;
  try {
    report = validateFailureReport(raw);
  } catch (err) {
    return refuseSignal(state, 'failure', err, nowMs);
  }
  // Reporters use their own workflow time; a report from the future counts as now.
  const at = Math.min(ms(report.at), nowMs);
  const key = nodeKey(report.vpsieNode);
  const before = state.failures.find((f) => nodeKey(f.vpsieNode) === key);
  const record: FailureRecord = {
    vpsieNode: report.vpsieNode,
    at: iso(before ? Math.max(at, ms(before.at)) : at),
    reports: (before?.reports ?? 0) + 1,
    workflowId: report.workflowId ?? before?.workflowId ?? null,
    runId: report.workflowId ? (report.runId ?? null) : (before?.runId ?? null),
  };
  const failures = [...state.failures.filter((f) => f !== before), record].sort(
    (a, b) => ms(a.at) - ms(b.at),
  );
  const next = settle(
    {
      ...state,
      failures,
      counters: { ...state.counters, failureReports: state.counters.failureReports + 1 },
    },
    nowMs,
    report.workflowId,
  );
  if (!report.reportId || !report.workflowId) return next;
  // The reporter waits for this answer before it plans: a run whose report began a storm never asks a person.
  const { storm } = next;
  return {
    ...next,
    outbox: [
      ...next.outbox,
      {
        to: { workflowId: report.workflowId, ...(report.runId ? { runId: report.runId } : {}) },
        notice: {
          kind: 'counted',
          requestId: report.reportId,
          nodeGroup: next.nodeGroup,
          storm: storm.active
            ? stormAnswer(
                next.failures,
                next.policy,
                storm.since as string,
                storm.first?.workflowId === report.workflowId,
              )
            : null,
        },
      },
    ],
  };
}

/**
 * A notice telling `workflowId` it was first in the storm could not be delivered (the run has ended): another run
 * is chosen (and told) so that the group is still escalated once. Anything else changes nothing.
 */
export function firstGone(state: LeaseState, workflowId: string, nowMs: number): LeaseState {
  const { storm } = state;
  if (!storm.active || storm.first?.workflowId !== workflowId) return state;
  return settle(
    {
      ...state,
      storm: { ...storm, first: null, unreachable: [...new Set([...storm.unreachable, workflowId])] },
    },
    nowMs,
  );
}

/**
 * The grant for `requestId` could not be delivered (its run has ended or moved on): the lease goes to the next.
 * For a request that is no longer held this changes nothing.
 */
export function holderGone(state: LeaseState, requestId: string, nowMs: number): LeaseState {
  const held = state.holders.find((h) => h.leaseId === requestId);
  if (!held) return state;
  return settle(
    {
      ...state,
      holders: state.holders.filter((h) => h !== held),
      ended: withEnded(state, [endOfHolding(held, nowMs, 'holder-gone')]),
    },
    nowMs,
  );
}

function endOfHolding(h: LeaseHolding, nowMs: number, how: LeaseEnd): LeaseEnded {
  return {
    requestId: h.leaseId,
    holder: h.holder,
    requestedAt: h.requestedAt,
    since: h.since,
    endedAt: iso(nowMs),
    how,
  };
}

function endOfWaiting(w: LeaseWaiting, nowMs: number, how: LeaseEnd): LeaseEnded {
  return {
    requestId: w.requestId,
    holder: w.holder,
    requestedAt: w.requestedAt,
    since: null,
    endedAt: iso(nowMs),
    how,
  };
}

function stormAnswer(
  failures: FailureRecord[],
  policy: LeasePolicy,
  since: string,
  first: boolean,
): StormAnswer {
  return {
    count: failures.length,
    threshold: policy.stormThreshold,
    window: formatDuration(policy.stormWindowMs),
    windowMs: policy.stormWindowMs,
    since,
    first,
    vpsieNodes: failures.map((f) => `${f.vpsieNode.namespace}/${f.vpsieNode.name}`),
  };
}

/**
 * Brings the state up to `nowMs`, in this order: leases past their TTL are taken back (their holders told);
 * requests whose requester gave up are dropped; failures older than the window stop counting; the storm begins
 * or ends; then, in a storm, one run is chosen `first` (`reporter`, the run whose report is being counted, if it
 * began the storm), every waiting request is refused and every run that reported a failure is told once; and
 * otherwise waiting requests are granted in order while the head of the queue fits its own budget and every
 * holder's.
 */
export function settle(state: LeaseState, nowMs: number, reporter?: string): LeaseState {
  const ended: LeaseEnded[] = [];
  const outbox = [...state.outbox];
  const counters = { ...state.counters };
  const { nodeGroup, policy } = state;

  const holders: LeaseHolding[] = [];
  for (const h of state.holders) {
    if (ms(h.expiresAt) > nowMs) {
      holders.push(h);
      continue;
    }
    ended.push(endOfHolding(h, nowMs, 'expired'));
    counters.expirations += 1;
    outbox.push({
      to: { workflowId: h.holder.workflowId, runId: h.holder.runId },
      notice: { kind: 'expired', requestId: h.leaseId, nodeGroup, at: iso(nowMs) },
    });
  }

  let queue: LeaseWaiting[] = [];
  for (const q of state.queue) {
    if (ms(q.waitUntil) > nowMs) queue.push(q);
    else ended.push(endOfWaiting(q, nowMs, 'wait-expired'));
  }

  const failures = state.failures.filter((f) => ms(f.at) > nowMs - policy.stormWindowMs);
  const stormNow = failures.length > policy.stormThreshold;
  // Carried from a run that kept no `told`/`unreachable` yet.
  let storm: StormState = { ...NO_STORM(null), ...state.storm };
  if (stormNow && !storm.active) storm = { ...NO_STORM(storm.lastEndedAt), active: true, since: iso(nowMs) };
  if (!stormNow && storm.active) storm = NO_STORM(iso(nowMs));

  if (storm.active && storm.first === null) {
    // One run per storm is told `first`: it escalates for the group; the others only record theirs.
    const reachable = (w: string | null | undefined): w is string => !!w && !storm.unreachable.includes(w);
    const head = queue.find((q) => reachable(q.holder.workflowId));
    const oldest = failures.find((f) => reachable(f.workflowId))?.workflowId;
    const first = reachable(reporter)
      ? { requestId: null, workflowId: reporter }
      : head
        ? { requestId: head.requestId, workflowId: head.holder.workflowId }
        : reachable(oldest)
          ? { requestId: null, workflowId: oldest }
          : null;
    storm = { ...storm, first };
  }
  const isFirst = (workflowId: string): boolean => storm.first?.workflowId === workflowId;

  if (storm.active && queue.length > 0) {
    for (const q of queue) {
      outbox.push({
        to: { workflowId: q.holder.workflowId, runId: q.holder.runId },
        notice: {
          kind: 'refused',
          requestId: q.requestId,
          nodeGroup,
          why: 'storm',
          storm: stormAnswer(failures, policy, storm.since as string, isFirst(q.holder.workflowId)),
        },
      });
      ended.push(endOfWaiting(q, nowMs, 'refused-storm'));
      counters.stormRefusals += 1;
    }
    queue = [];
  }
  if (storm.active) {
    // Every reporter hears of the storm once (again only if it has since become `first`).
    let told = storm.told;
    for (const f of failures) {
      if (!f.workflowId) continue;
      const first = isFirst(f.workflowId);
      const before = told.find((x) => x.workflowId === f.workflowId);
      if (before && (before.first || !first)) continue;
      told = [...told.filter((x) => x !== before), { workflowId: f.workflowId, first }];
      outbox.push({
        to: { workflowId: f.workflowId, ...(f.runId ? { runId: f.runId } : {}) },
        notice: {
          kind: 'storm',
          nodeGroup,
          storm: stormAnswer(failures, policy, storm.since as string, first),
        },
      });
    }
    storm = { ...storm, told };
  }
  // A grant must fit the budget of the request and of everyone already holding (each said how many it accepts).
  const fits = (q: LeaseWaiting): boolean =>
    holders.length < Math.min(q.budget, ...holders.map((h) => h.budget));
  while (!storm.active && queue.length > 0 && fits(queue[0])) {
    const q = queue.shift() as LeaseWaiting;
    const expiresAt = iso(nowMs + q.ttlMs);
    holders.push({
      leaseId: q.requestId,
      holder: q.holder,
      requestedAt: q.requestedAt,
      since: iso(nowMs),
      expiresAt,
      budget: q.budget,
    });
    counters.grants += 1;
    outbox.push({
      to: { workflowId: q.holder.workflowId, runId: q.holder.runId },
      notice: { kind: 'granted', requestId: q.requestId, nodeGroup, expiresAt },
    });
  }

  const busy = holders.length > 0 || queue.length > 0 || failures.length > 0;
  return {
    ...state,
    holders,
    failures,
    queue,
    storm,
    counters,
    outbox,
    ended: ended.length ? withEnded(state, ended) : state.ended,
    idleSince: busy ? null : (state.idleSince ?? iso(nowMs)),
  };
}

/** The next moment at which {@link settle} would change something by itself; null if only a signal can. */
export function nextWakeAt(state: LeaseState): number | null {
  const times = [
    ...state.holders.map((h) => ms(h.expiresAt)),
    ...state.queue.map((q) => ms(q.waitUntil)),
    ...state.failures.map((f) => ms(f.at) + state.policy.stormWindowMs),
  ];
  if (state.idleSince !== null) times.push(ms(state.idleSince) + state.policy.idleAfterMs);
  return times.length ? Math.min(...times) : null;
}

/** Nothing held, queued, counted or left to send for the idle time: the workflow may complete. */
export function idledOut(state: LeaseState, nowMs: number): boolean {
  return (
    state.idleSince !== null &&
    state.outbox.length === 0 &&
    nowMs >= ms(state.idleSince) + state.policy.idleAfterMs
  );
}

/** The `status` query's answer. */
export function leaseStatus(state: LeaseState): LeaseStatus {
  const { policy } = state;
  return {
    nodeGroup: { ...state.nodeGroup },
    workflowId: leaseWorkflowId(state.nodeGroup),
    run: state.run,
    startedAt: state.startedAt,
    policy: {
      ...policy,
      stormWindow: formatDuration(policy.stormWindowMs),
      idleAfter: formatDuration(policy.idleAfterMs),
    },
    budget: policy.budget,
    holders: state.holders.map((h) => ({ ...h })),
    queue: state.queue.map((q) => ({ ...q })),
    failures: state.failures.map((f) => ({ ...f })),
    storm: {
      ...state.storm,
      count: state.failures.length,
      threshold: policy.stormThreshold,
      window: formatDuration(policy.stormWindowMs),
      escalated: state.storm.first !== null,
    },
    ended: state.ended.map((e) => ({ ...e })),
    refusedSignals: state.refusedSignals.map((r) => ({ ...r })),
    counters: { ...state.counters },
    idleSince: state.idleSince,
    idleUntil: state.idleSince === null ? null : iso(ms(state.idleSince) + policy.idleAfterMs),
  };
}

/** One line for the Temporal UI's current details. */
export function describeLease(state: LeaseState): string {
  const ng = `${state.nodeGroup.namespace}/${state.nodeGroup.name}`;
  const held = state.holders.map((h) => `${h.holder.workflowId} (${h.holder.stepId})`).join(', ') || 'nobody';
  const storm = state.storm.active
    ? `STORM since ${state.storm.since}: ${state.failures.length} failing VPSieNodes in ${formatDuration(state.policy.stormWindowMs)}, no grants`
    : `${state.failures.length} failing VPSieNode(s) in the last ${formatDuration(state.policy.stormWindowMs)} (storm above ${state.policy.stormThreshold})`;
  return `NodeGroup ${ng} lease: held by ${held}; ${state.queue.length} waiting; budget ${state.policy.budget}; ${storm}`;
}
