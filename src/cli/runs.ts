/** Finding the run a person names, and what the CLI needs to know about it. */
import {
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import { PENDING_APPROVAL_MEMO_KEY, type PendingApproval } from '../runbook/approval';
import {
  ApprovalPending,
  NodeGroup,
  RunbookCause,
  RunbookOutcome,
  RunbookStage,
  VPSieNodeName,
  VPSieNodeNamespace,
} from '../workflows/search-attributes';
import type { RunArg } from './args';
import { failure } from './errors';
import type { TemporalSession } from './temporal';

export const RUNBOOK_TYPE = 'provisioningFailedRunbook';
export const SWEEP_TYPE = 'orphanedVmCleanup';

/** How long a query or update may wait for a worker to answer before the CLI says none did. */
export const ANSWER_TIMEOUT_MS = 15_000;

export interface FoundRun {
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

/**
 * The latest run under the first workflow id the argument names (the VPSieNode's runbook, then the text as a
 * workflow id); refused (exit 1) when there is none, or when it is not a runbook run or a sweep.
 */
export async function findRun(t: TemporalSession, arg: RunArg): Promise<FoundRun> {
  for (const id of arg.workflowIds) {
    const handle = t.client.workflow.getHandle(id);
    try {
      const description = await handle.describe();
      if (description.type !== RUNBOOK_TYPE && description.type !== SWEEP_TYPE)
        throw failure(
          `${id} is a ${description.type} workflow, not a runbook run (${RUNBOOK_TYPE}) or an orphaned-VM sweep (${SWEEP_TYPE})`,
        );
      return { handle, description };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  throw failure(
    `no run found for ${arg.text} (workflow id ${arg.workflowIds.join(' or ')}) in Temporal namespace ${t.settings.namespace} at ${t.settings.address}`,
  );
}

/** A run as `list` shows it, from its visibility record: what the search attributes say. */
export interface RunRow {
  workflowId: string;
  runId: string;
  type: string;
  /** Temporal's execution status: Running, Completed, Failed, Terminated, … */
  status: string;
  taskQueue: string;
  startTime: string;
  closeTime: string | null;
  vpsieNode: string | null;
  nodeGroup: string | null;
  stage: string | null;
  cause: string | null;
  outcome: string | null;
  approvalPending: boolean;
  /**
   * With `--pending-approval`: the step waiting, from the run's memo (runs since the `approval-memo` patch) or
   * else its `status` query; null when neither answered.
   */
  pendingApproval?: PendingApproval | null;
}

const titleCase = (s: string): string =>
  s
    .toLowerCase()
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');

/** `RUNNING` → `Running`, `TIMED_OUT` → `TimedOut`: as the Temporal UI and the `ExecutionStatus` attribute name it. */
export const executionStatus = (info: Pick<WorkflowExecutionInfo, 'status'>): string =>
  titleCase(info.status.name);

export function rowOf(info: WorkflowExecutionInfo | WorkflowExecutionDescription): RunRow {
  const sa = info.typedSearchAttributes;
  const ns = sa.get(VPSieNodeNamespace);
  const name = sa.get(VPSieNodeName);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    type: info.type,
    status: executionStatus(info),
    taskQueue: info.taskQueue,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime ? info.closeTime.toISOString() : null,
    vpsieNode: ns && name ? `${ns}/${name}` : null,
    nodeGroup: sa.get(NodeGroup) ?? null,
    stage: sa.get(RunbookStage) ?? null,
    cause: sa.get(RunbookCause) ?? null,
    outcome: sa.get(RunbookOutcome) ?? null,
    approvalPending: sa.get(ApprovalPending) ?? false,
  };
}

const pendingApprovalMemo = z.object({
  stepId: z.string(),
  kind: z.string(),
  target: z.unknown(),
  action: z.string().optional(),
  requestedAt: z.string(),
  expiresAt: z.string(),
});

/**
 * The pending approval a run keeps in its memo (src/workflows/search-attribute-writes.ts); undefined when the
 * memo has none in that shape (a run started before the memo was kept): ask the run itself then.
 */
export function pendingApprovalFromMemo(
  info: Pick<WorkflowExecutionInfo, 'memo'>,
): PendingApproval | undefined {
  const parsed = pendingApprovalMemo.safeParse(info.memo?.[PENDING_APPROVAL_MEMO_KEY]);
  return parsed.success ? (parsed.data as PendingApproval) : undefined;
}
