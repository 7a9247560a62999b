/**
 * `list`'s Temporal visibility queries over the project's search attributes (src/workflows/search-attributes.ts).
 * Every value is checked against what the workflows write (a cause, an outcome, a NodeGroup name) and then quoted,
 * so nothing typed can change the query's meaning.
 */
import { CAUSES } from '../runbook/classify';
import { RUNBOOK_OUTCOMES, RUNBOOK_STAGES } from '../runbook/report';
import {
  ApprovalPending,
  NodeGroup,
  RunbookCause,
  RunbookOutcome,
  RunbookStage,
} from '../workflows/search-attributes';
import { usageError } from './errors';

/** The workflow types a person looks at: the runbook's runs and the orphaned-VM sweeps (both ask for approvals). */
export const RUN_WORKFLOW_TYPES = ['provisioningFailedRunbook', 'orphanedVmCleanup'] as const;

const SWEEP_OUTCOMES = [
  'Removed',
  'NothingToRemove',
  'DryRun',
  'Rejected',
  'ApprovalExpired',
  'NothingRemoved',
  'ReadFailed',
] as const;
const SWEEP_STAGES = ['finding', 'awaiting-approval', 'removing', 'completed'] as const;

export const KNOWN_OUTCOMES: readonly string[] = [...new Set([...RUNBOOK_OUTCOMES, ...SWEEP_OUTCOMES])];
export const KNOWN_STAGES: readonly string[] = [...new Set([...RUNBOOK_STAGES, ...SWEEP_STAGES])];

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export interface ListFilters {
  /** Only runs waiting for a person now: `ApprovalPending = true` on a run that is still running. */
  pendingApproval?: boolean;
  cause?: string;
  nodeGroup?: string;
  outcome?: string;
  stage?: string;
  /** Only open runs. */
  open?: boolean;
  /** Only runs on this task queue (the deployment's); null: any. */
  taskQueue?: string | null;
}

/** A string literal of the visibility query language: single quotes, with quote and backslash escaped. */
export function quote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function oneOf(value: string, known: readonly string[], flag: string): string {
  if (!known.includes(value))
    throw usageError(`${flag} must be one of ${known.join(', ')}, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The query for `list`. With `pendingApproval`, the runs waiting for a person: `ApprovalPending = true` and still
 * running (a run terminated while it waited keeps the value it had; nothing waits there any more).
 */
export function listQuery(f: ListFilters): string {
  const clauses = [`WorkflowType IN (${RUN_WORKFLOW_TYPES.map(quote).join(', ')})`];
  if (f.taskQueue) clauses.push(`TaskQueue = ${quote(f.taskQueue)}`);
  if (f.pendingApproval) clauses.push(`${ApprovalPending.name} = true`);
  if (f.pendingApproval || f.open) clauses.push(`ExecutionStatus = 'Running'`);
  if (f.cause !== undefined)
    clauses.push(`${RunbookCause.name} = ${quote(oneOf(f.cause, CAUSES, '--cause'))}`);
  if (f.nodeGroup !== undefined) {
    if (f.nodeGroup.length > 253 || !DNS_SUBDOMAIN.test(f.nodeGroup))
      throw usageError(
        `--nodegroup must be a NodeGroup name (DNS subdomain), got ${JSON.stringify(f.nodeGroup)}`,
      );
    clauses.push(`${NodeGroup.name} = ${quote(f.nodeGroup)}`);
  }
  if (f.outcome !== undefined)
    clauses.push(`${RunbookOutcome.name} = ${quote(oneOf(f.outcome, KNOWN_OUTCOMES, '--outcome'))}`);
  if (f.stage !== undefined)
    clauses.push(`${RunbookStage.name} = ${quote(oneOf(f.stage, KNOWN_STAGES, '--stage'))}`);
  return clauses.join(' AND ');
}
