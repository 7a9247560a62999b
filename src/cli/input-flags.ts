/**
 * The workflow inputs as flags: which flag sets which field, and the input checks' messages told in flags
 * (`options.approvalTtl must be …` reads `--approval-ttl must be …`). The values are checked by the product's
 * own validators (resolveInput, resolveOrphanSweepInput), so the CLI accepts exactly what a run accepts.
 */
import type { OrphanSweepInput } from '../runbook/orphans';
import type { RunbookOptions } from '../runbook/input';
import { parseWholeNumber } from './args';

type Kind = 'duration' | 'list' | 'flag' | 'count' | 'text';

export interface InputFlag {
  /** The workflow input's field. */
  field: string;
  /** Commander's flag syntax. */
  flags: string;
  kind: Kind;
  description: string;
}

/** The runbook's options (README "Workflow input"), all but the lease policy, which is a deployment concern. */
/** The runbook's and the sweep's `approvers`: the same flag for both. */
const APPROVERS_FLAG: InputFlag = {
  field: 'approvers',
  flags: '--approver <name>',
  kind: 'list',
  description: 'who may decide (repeat for several); default anyone who may signal the workflow',
};

export const RUNBOOK_FLAGS: readonly InputFlag[] = [
  {
    field: 'dryRun',
    flags: '--dry-run',
    kind: 'flag',
    description: 'diagnose and plan only; act on nothing',
  },
  APPROVERS_FLAG,
  {
    field: 'approvalTtl',
    flags: '--approval-ttl <duration>',
    kind: 'duration',
    description: 'how long a step waits for a decision (10s to 7d; default 1h)',
  },
  {
    field: 'autoApprove',
    flags: '--auto-approve <kind>',
    kind: 'list',
    description:
      'a destructive step kind that needs no person (repeatable): patch-nodegroup-version, delete-vpsienode, terminate-machine',
  },
  {
    field: 'severity',
    flags: '--severity <severity>',
    kind: 'text',
    description: 'the escalation severity: critical, error, warning or info (default from the phase)',
  },
  {
    field: 'provisioningLimit',
    flags: '--provisioning-limit <duration>',
    kind: 'duration',
    description: "the controller's limit to provision (default 10m)",
  },
  {
    field: 'joiningLimit',
    flags: '--joining-limit <duration>',
    kind: 'duration',
    description: "the controller's limit to join (default 15m)",
  },
  {
    field: 'recheckInterval',
    flags: '--recheck-interval <duration>',
    kind: 'duration',
    description: 'how often to look again while waiting (10s to 1h; default 1m)',
  },
  {
    field: 'approvalRecheckInterval',
    flags: '--approval-recheck-interval <duration>',
    kind: 'duration',
    description:
      'while waiting for approval, how often to look whether the target is still there (10s to 1h; default 5m)',
  },
  {
    field: 'checksPerRun',
    flags: '--checks-per-run <n>',
    kind: 'count',
    description: 'looks per run before continuing as new (1 to 1000; default 200)',
  },
  {
    field: 'registrationWait',
    flags: '--registration-wait <duration>',
    kind: 'duration',
    description: 'how long a Node may take to register (default 15m)',
  },
  {
    field: 'goneWait',
    flags: '--gone-wait <duration>',
    kind: 'duration',
    description: 'how long a deleted node and its machine may take (default 15m)',
  },
  {
    field: 'replacementWait',
    flags: '--replacement-wait <duration>',
    kind: 'duration',
    description: 'how long the NodeGroup may take to create a replacement (default 5m)',
  },
  {
    field: 'readyWait',
    flags: '--ready-wait <duration>',
    kind: 'duration',
    description: 'how long the replacement may take to become Ready (default 25m)',
  },
  {
    field: 'leaseWait',
    flags: '--lease-wait <duration>',
    kind: 'duration',
    description: "how long a destructive step waits for its NodeGroup's lease (default 1h)",
  },
];

/** The orphaned-VM sweep's input (README "Orphaned-VM sweep"). */
export const SWEEP_FLAGS: readonly InputFlag[] = [
  {
    field: 'dryRun',
    flags: '--dry-run',
    kind: 'flag',
    description: 'find and list the orphans; ask nobody, remove nothing',
  },
  {
    field: 'grace',
    flags: '--grace <duration>',
    kind: 'duration',
    description: 'only machines older than this (15m to 30d; default 30m)',
  },
  {
    field: 'mode',
    flags: '--mode <mode>',
    kind: 'text',
    description: 'each: one approval per machine (default); all: one approval for all',
  },
  APPROVERS_FLAG,
  {
    field: 'approvalTtl',
    flags: '--approval-ttl <duration>',
    kind: 'duration',
    description: 'how long each approval waits (10s to 7d; default 1h)',
  },
];

/** `--approval-ttl <duration>` → `--approval-ttl`. */
export const flagName = (f: InputFlag): string => f.flags.split(' ')[0];

/** Commander's key for a flag: `--approval-ttl` → `approvalTtl`, `--approver` → `approver`. */
export const optionKey = (f: InputFlag): string =>
  flagName(f)
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Collects a repeatable flag's values. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** The input fields set by the flags given; fields whose flag was not given are left out (the defaults apply). */
export function inputFromFlags(
  flags: readonly InputFlag[],
  given: Record<string, unknown>,
): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const f of flags) {
    const v = given[optionKey(f)];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    if (f.kind === 'flag') {
      if (v === true) input[f.field] = true;
    } else if (f.kind === 'count') input[f.field] = parseWholeNumber(String(v), flagName(f), 1, 1000);
    else input[f.field] = v;
  }
  return input;
}

export const runbookOptionsFromFlags = (given: Record<string, unknown>): RunbookOptions =>
  inputFromFlags(RUNBOOK_FLAGS, given) as RunbookOptions;

export const sweepInputFromFlags = (given: Record<string, unknown>): OrphanSweepInput =>
  inputFromFlags(SWEEP_FLAGS, given) as OrphanSweepInput;

/**
 * An input check's message with each field named by its flag: `options.approvalTtl` → `--approval-ttl`,
 * `input.grace` → `--grace`, `options.approvers[1]` → `--approver #2`.
 */
export function inFlagTerms(
  message: string,
  flags: readonly InputFlag[],
  prefix: 'options' | 'input',
): string {
  return message.replace(
    new RegExp(`\\b${prefix}\\.([A-Za-z]+)(?:\\[(\\d+)\\])?`, 'g'),
    (whole, field, index) => {
      const f = flags.find((x) => x.field === field);
      if (!f) return whole;
      return index === undefined ? flagName(f) : `${flagName(f)} #${Number(index) + 1}`;
    },
  );
}
