import { resolveApprovalOptions, type ApprovalOptions, type ResolvedApprovalOptions } from './approval';
import { formatDuration, parseDuration, type DurationInput } from './duration';
import { SEVERITIES, type Severity } from './evidence-bundle';
import { resolveLeasePolicy, type LeasePolicyInput } from './lease';
import { DESTRUCTIVE_STEP_KINDS, PLAN_DEFAULTS } from './plan';
import { CONTROLLER_JOINING_LIMIT_MS, CONTROLLER_PROVISIONING_LIMIT_MS, type Progress } from './progress';
import type { VPSieNodeRef, VPSieNodeSnapshot } from './types';

export const WORKFLOW_ID_PREFIX = 'provisioning-failed';

/**
 * How the runbook waits and who decides. Every duration has the production default next to it and may be
 * shortened by tests. The approval fields (`approvers`, `approvalTtl`, `autoApprove`) are in ApprovalOptions.
 */
export interface RunbookOptions extends ApprovalOptions {
  /** The controller's limit for provisioning a VM; default 10m, as the controller's own. At most 6h. */
  provisioningLimit?: DurationInput;
  /** The controller's limit for the node to join; default 15m, as the controller's own. At most 6h. */
  joiningLimit?: DurationInput;
  /** While the controller still has time, how often to look again; default 1m, between 10s and 1h. */
  recheckInterval?: DurationInput;
  /**
   * While a destructive step waits for a person, how often to look whether its target is still there (the
   * controller deletes Failed VPSieNodes after 30 minutes); default 5m, between 10s and 1h.
   */
  approvalRecheckInterval?: DurationInput;
  /** Reads of the VPSieNode per run before the run continues as new; default 200, between 1 and 1000. */
  checksPerRun?: number;
  /** Diagnose, classify and plan, then end with outcome `DryRun`, acting on nothing. Default false. */
  dryRun?: boolean;
  /** VMNotRegistering: how long after provisioning started the Node may still register; default 15m. */
  registrationWait?: DurationInput;
  /** How long a deleted VPSieNode and its machine may take to go (drain, VM delete); default 15m. */
  goneWait?: DurationInput;
  /** How long the NodeGroup may take to create a replacement, before and after forcing reconciliation; 5m. */
  replacementWait?: DurationInput;
  /** How long the replacement may take to become Ready (the controller allows 10m + 15m); default 25m. */
  readyWait?: DurationInput;
  /** How long a destructive step waits for its NodeGroup's lease (another node of it being replaced); 1h. */
  leaseWait?: DurationInput;
  /**
   * The NodeGroup lease's policy (`budget` default 1, `stormThreshold` 3, `stormWindow` 15m): it counts when this
   * run's report or request starts the group's lease workflow; an open one keeps its own.
   */
  nodeGroupLease?: LeasePolicyInput;
  /**
   * The severity of the alert that started the run (PagerDuty's: critical, error, warning, info), carried to the
   * escalation. Unset: derived from the VPSieNode's phase (Failed is critical, anything else a warning).
   */
  severity?: Severity;
}

/**
 * What a run hands to the next when it continues as new, so that `status` and the final report read as one run.
 * Internal: the workflow writes it; callers never do (startRunbook refuses it).
 */
export interface RunbookContinuation {
  /** When the first run of the chain started. */
  startedAt: string;
  /** This run's number in the chain: 2 for the first continuation. */
  run: number;
  /** Reads of the VPSieNode made by the earlier runs. */
  checks: number;
  /** Since when the chain has been waiting for the controller. */
  stageSince: string;
  /** The last observation: the controller still had time. */
  progress: Extract<Progress, { kind: 'in-progress' }>;
  /** The VPSieNode as last read. */
  vpsieNode: VPSieNodeSnapshot;
  /** When the previous run meant to look again; the new run waits until then. */
  nextCheckAt: string;
}

export interface RunbookInput extends VPSieNodeRef {
  options?: RunbookOptions;
  /** Internal, set only by the workflow when it continues as new. */
  continuation?: RunbookContinuation;
}

export interface ResolvedWaits {
  registrationWaitMs: number;
  goneWaitMs: number;
  replacementWaitMs: number;
  readyWaitMs: number;
  leaseWaitMs: number;
}

export interface ResolvedOptions {
  provisioningLimitMs: number;
  joiningLimitMs: number;
  recheckIntervalMs: number;
  approvalRecheckIntervalMs: number;
  checksPerRun: number;
  dryRun: boolean;
  approval: ResolvedApprovalOptions;
  waits: ResolvedWaits;
  /** As given (checked): the lease workflow resolves it when this run starts one. */
  nodeGroupLease: LeasePolicyInput | null;
  severity: Severity | null;
}

export interface ResolvedInput {
  ref: VPSieNodeRef;
  options: ResolvedOptions;
  continuation: RunbookContinuation | null;
}

export const DEFAULT_RECHECK_INTERVAL_MS = 60_000;
/**
 * A run waiting for a person only looks whether its target vanished, which nothing is done about sooner than
 * the approval (its delete re-reads the target anyway): every 5 minutes, not every minute, so that a thousand
 * waiting runs wake a fifth as often (measured with `npm run bench -- --only waiting`, README "Benchmark").
 */
export const DEFAULT_APPROVAL_RECHECK_INTERVAL_MS = 5 * 60_000;
/** Long enough for another node of the group to be replaced (its waits add up to about 50 min at most). */
export const DEFAULT_LEASE_WAIT_MS = 60 * 60_000;
/**
 * Every look is an activity and a timer in the run's history, and the controller itself requeues every few
 * seconds: looking more often than every 10 s only grows history and loads the apiserver.
 */
export const MIN_RECHECK_INTERVAL_MS = 10_000;
/** Longer than an hour between looks and an on-call engineer would have looked by hand. */
export const MAX_RECHECK_INTERVAL_MS = 60 * 60_000;
/**
 * The controller's own limits are 10 and 15 minutes. A limit of hours means the run waits that long before it
 * calls the node stuck; past 6 h (an on-call shift) the alert is someone else's, and 6 h at the 10 s minimum
 * recheck is at most 2,160 reads, a handful of runs (see checksPerRun).
 */
export const MAX_CONTROLLER_LIMIT_MS = 6 * 3_600_000;
/**
 * A read and a wait add about 11 events to history; 200 of them (about 2,200 events) stay well below the
 * 4,096 events at which the server suggests continuing as new, and 10K at which it starts warning.
 */
export const DEFAULT_CHECKS_PER_RUN = 200;
export const MAX_CHECKS_PER_RUN = 1000;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Thrown for input that can never succeed; workflows turn it into a non-retryable failure. */
export class InvalidInputError extends Error {
  override name = 'InvalidInputError';
}

/** Checks a VPSieNode reference as Kubernetes would: namespace a DNS label, name a DNS subdomain. */
export function validateRef(ref: unknown): VPSieNodeRef {
  const r = (ref ?? {}) as Partial<Record<'namespace' | 'name', unknown>>;
  const problems: string[] = [];
  const { namespace, name } = r;
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    problems.push(
      `namespace must be a Kubernetes namespace name (DNS label), got ${JSON.stringify(namespace)}`,
    );
  }
  if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    problems.push(`name must be a VPSieNode name (DNS subdomain), got ${JSON.stringify(name)}`);
  }
  if (problems.length) throw new InvalidInputError(problems.join('; '));
  return { namespace: namespace as string, name: name as string };
}

interface Bounds {
  min: number;
  max: number;
  /** The range in words, for the error. */
  text: string;
}

function duration(
  value: DurationInput | undefined,
  what: string,
  fallback: number,
  bounds: Bounds | null,
): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value, what);
  } catch (err) {
    throw new InvalidInputError((err as Error).message);
  }
  if (bounds && (ms < bounds.min || ms > bounds.max)) {
    throw new InvalidInputError(`${what} must be ${bounds.text}, got ${JSON.stringify(value)}`);
  }
  return ms;
}

function checksPerRun(value: unknown): number {
  if (value === undefined) return DEFAULT_CHECKS_PER_RUN;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_CHECKS_PER_RUN) {
    throw new InvalidInputError(
      `options.checksPerRun must be a whole number between 1 and ${MAX_CHECKS_PER_RUN}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function isTimestamp(v: unknown): v is string {
  return typeof v === 'string' && !Number.isNaN(Date.parse(v));
}

function isCount(v: unknown, min: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min;
}

/**
 * The carried-over state of a run that continued as new. Only the workflow writes it, but it arrives as input
 * like anything else, so it is checked like anything else.
 */
export function validateContinuation(raw: unknown, ref: VPSieNodeRef): RunbookContinuation {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidInputError('continuation must be an object');
  }
  const c = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of ['startedAt', 'stageSince', 'nextCheckAt'] as const) {
    if (!isTimestamp(c[key]))
      problems.push(`continuation.${key} must be a timestamp, got ${JSON.stringify(c[key])}`);
  }
  if (!isCount(c.run, 2))
    problems.push(`continuation.run must be a whole number ≥ 2, got ${JSON.stringify(c.run)}`);
  if (!isCount(c.checks, 1)) {
    problems.push(`continuation.checks must be a whole number ≥ 1, got ${JSON.stringify(c.checks)}`);
  }
  const p = c.progress as Record<string, unknown> | null | undefined;
  if (!p || p.kind !== 'in-progress' || typeof p.reason !== 'string' || !isTimestamp(p.deadline)) {
    problems.push('continuation.progress must be an in-progress observation (kind, reason, deadline)');
  }
  const n = c.vpsieNode as Record<string, unknown> | null | undefined;
  if (!n || typeof n !== 'object' || n.namespace !== ref.namespace || n.name !== ref.name) {
    problems.push(`continuation.vpsieNode must be a snapshot of ${ref.namespace}/${ref.name}`);
  }
  const unknown = Object.keys(c).filter((k) => !CONTINUATION_FIELDS.has(k));
  if (unknown.length) problems.push(`continuation: unknown field(s) ${unknown.join(', ')}`);
  if (problems.length) throw new InvalidInputError(problems.join('; '));
  return c as unknown as RunbookContinuation;
}

const CONTINUATION_FIELDS = new Set([
  'startedAt',
  'run',
  'checks',
  'stageSince',
  'progress',
  'vpsieNode',
  'nextCheckAt',
]);
const INPUT_FIELDS = new Set(['namespace', 'name', 'options', 'continuation']);
const OPTION_FIELDS = new Set([
  'provisioningLimit',
  'joiningLimit',
  'recheckInterval',
  'approvalRecheckInterval',
  'checksPerRun',
  'dryRun',
  'approvers',
  'approvalTtl',
  'autoApprove',
  'registrationWait',
  'goneWait',
  'replacementWait',
  'readyWait',
  'leaseWait',
  'nodeGroupLease',
  'severity',
]);

const RECHECK_BOUNDS: Bounds = {
  min: MIN_RECHECK_INTERVAL_MS,
  max: MAX_RECHECK_INTERVAL_MS,
  text: `between ${formatDuration(MIN_RECHECK_INTERVAL_MS)} and ${formatDuration(MAX_RECHECK_INTERVAL_MS)}`,
};

/** A remediation wait shorter than the shortest look is no wait; longer than the controller limit, no help. */
const WAIT_BOUNDS: Bounds = {
  min: MIN_RECHECK_INTERVAL_MS,
  max: MAX_CONTROLLER_LIMIT_MS,
  text: `between ${formatDuration(MIN_RECHECK_INTERVAL_MS)} and ${formatDuration(MAX_CONTROLLER_LIMIT_MS)}`,
};

function dryRun(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean')
    throw new InvalidInputError(`options.dryRun must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function waits(raw: RunbookOptions, bounded: boolean): ResolvedWaits {
  const b = bounded ? WAIT_BOUNDS : null;
  return {
    registrationWaitMs: duration(
      raw.registrationWait,
      'options.registrationWait',
      PLAN_DEFAULTS.registrationWaitMs,
      b,
    ),
    goneWaitMs: duration(raw.goneWait, 'options.goneWait', PLAN_DEFAULTS.goneWaitMs, b),
    replacementWaitMs: duration(
      raw.replacementWait,
      'options.replacementWait',
      PLAN_DEFAULTS.replacementWaitMs,
      b,
    ),
    readyWaitMs: duration(raw.readyWait, 'options.readyWait', PLAN_DEFAULTS.readyWaitMs, b),
    leaseWaitMs: duration(raw.leaseWait, 'options.leaseWait', DEFAULT_LEASE_WAIT_MS, b),
  };
}

export interface ResolveInputOptions {
  /**
   * false only for runs started before the bounds existed (the workflow's `patched()` says which), so that they
   * replay as they ran; every new run is held to them.
   */
  bounded?: boolean;
}

/** Validates the workflow input and fills in the production defaults. */
export function resolveInput(input: unknown, { bounded = true }: ResolveInputOptions = {}): ResolvedInput {
  const ref = validateRef(input);
  const given = input as RunbookInput;
  if (bounded) {
    const unknown = Object.keys(given).filter((k) => !INPUT_FIELDS.has(k));
    if (unknown.length) throw new InvalidInputError(`unknown field(s) ${unknown.join(', ')}`);
  }
  const raw = given.options ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInputError('options must be an object');
  const unknown = Object.keys(raw).filter((k) => !OPTION_FIELDS.has(k));
  if (unknown.length) throw new InvalidInputError(`options: unknown field(s) ${unknown.join(', ')}`);
  const limit: Bounds | null = bounded
    ? {
        min: 1,
        max: MAX_CONTROLLER_LIMIT_MS,
        text: `more than 0 and at most ${formatDuration(MAX_CONTROLLER_LIMIT_MS)}`,
      }
    : null;
  return {
    ref,
    options: {
      provisioningLimitMs: duration(
        raw.provisioningLimit,
        'options.provisioningLimit',
        CONTROLLER_PROVISIONING_LIMIT_MS,
        limit,
      ),
      joiningLimitMs: duration(raw.joiningLimit, 'options.joiningLimit', CONTROLLER_JOINING_LIMIT_MS, limit),
      recheckIntervalMs: duration(
        raw.recheckInterval,
        'options.recheckInterval',
        DEFAULT_RECHECK_INTERVAL_MS,
        bounded ? RECHECK_BOUNDS : null,
      ),
      approvalRecheckIntervalMs: duration(
        raw.approvalRecheckInterval,
        'options.approvalRecheckInterval',
        DEFAULT_APPROVAL_RECHECK_INTERVAL_MS,
        bounded ? RECHECK_BOUNDS : null,
      ),
      checksPerRun: checksPerRun(raw.checksPerRun),
      dryRun: dryRun(raw.dryRun),
      approval: resolveApprovalOptions(raw, DESTRUCTIVE_STEP_KINDS, 'options'),
      waits: waits(raw, bounded),
      nodeGroupLease: leasePolicy(raw.nodeGroupLease),
      severity: severity(raw.severity),
    },
    continuation: given.continuation === undefined ? null : validateContinuation(given.continuation, ref),
  };
}

function severity(raw: unknown): Severity | null {
  if (raw === undefined) return null;
  if (typeof raw === 'string' && (SEVERITIES as readonly string[]).includes(raw)) return raw as Severity;
  throw new InvalidInputError(
    `options.severity must be one of ${SEVERITIES.join(', ')}, got ${JSON.stringify(raw)}`,
  );
}

function leasePolicy(raw: unknown): LeasePolicyInput | null {
  if (raw === undefined) return null;
  resolveLeasePolicy(raw, 'options.nodeGroupLease');
  return raw as LeasePolicyInput;
}

/** One runbook run per VPSieNode: re-sent alerts land on the same workflow instead of starting another. */
export function workflowIdFor(ref: VPSieNodeRef): string {
  return `${WORKFLOW_ID_PREFIX}/${ref.namespace}/${ref.name}`;
}
