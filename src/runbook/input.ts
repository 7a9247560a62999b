import { parseDuration, type DurationInput } from './duration';
import { CONTROLLER_JOINING_LIMIT_MS, CONTROLLER_PROVISIONING_LIMIT_MS } from './progress';
import type { VPSieNodeRef } from './types';

export const WORKFLOW_ID_PREFIX = 'provisioning-failed';

/** How the runbook waits. Every duration has the production default next to it and may be shortened by tests. */
export interface RunbookOptions {
  /** The controller's limit for provisioning a VM; default 10m, as the controller's own. */
  provisioningLimit?: DurationInput;
  /** The controller's limit for the node to join; default 15m, as the controller's own. */
  joiningLimit?: DurationInput;
  /** While the controller still has time, how often to look again; default 1m. */
  recheckInterval?: DurationInput;
}

export interface RunbookInput extends VPSieNodeRef {
  options?: RunbookOptions;
}

export interface ResolvedOptions {
  provisioningLimitMs: number;
  joiningLimitMs: number;
  recheckIntervalMs: number;
}

export const DEFAULT_RECHECK_INTERVAL_MS = 60_000;

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

function duration(value: DurationInput | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  try {
    return parseDuration(value, what);
  } catch (err) {
    throw new InvalidInputError((err as Error).message);
  }
}

/** Validates the workflow input and fills in the production defaults. */
export function resolveInput(input: unknown): { ref: VPSieNodeRef; options: ResolvedOptions } {
  const ref = validateRef(input);
  const raw = (input as RunbookInput).options ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidInputError('options must be an object');
  const known = new Set(['provisioningLimit', 'joiningLimit', 'recheckInterval']);
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length) throw new InvalidInputError(`options: unknown field(s) ${unknown.join(', ')}`);
  return {
    ref,
    options: {
      provisioningLimitMs: duration(
        raw.provisioningLimit,
        'options.provisioningLimit',
        CONTROLLER_PROVISIONING_LIMIT_MS,
      ),
      joiningLimitMs: duration(raw.joiningLimit, 'options.joiningLimit', CONTROLLER_JOINING_LIMIT_MS),
      recheckIntervalMs: duration(
        raw.recheckInterval,
        'options.recheckInterval',
        DEFAULT_RECHECK_INTERVAL_MS,
      ),
    },
  };
}

/** One runbook run per VPSieNode: re-sent alerts land on the same workflow instead of starting another. */
export function workflowIdFor(ref: VPSieNodeRef): string {
  return `${WORKFLOW_ID_PREFIX}/${ref.namespace}/${ref.name}`;
}
