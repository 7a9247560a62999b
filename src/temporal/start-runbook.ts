import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowIdConflictPolicy, WorkflowIdReusePolicy } from '@temporalio/common';
import { DEFAULT_TASK_QUEUE } from '../config';
import { InvalidInputError, resolveInput, workflowIdFor, type RunbookInput } from '../runbook';
import type { provisioningFailedRunbook } from '../workflows';

/**
 * One run per VPSieNode, whoever starts it:
 * - while a run for the VPSieNode is open (waiting for the controller, or continued as new), a second start
 *   starts nothing and answers with that run (USE_EXISTING): a re-sent alert joins the run in progress;
 * - once it closed, however it ended, a start begins a new run (ALLOW_DUPLICATE): the node is in trouble again,
 *   which is a new incident.
 */
export const RUNBOOK_START_POLICIES = {
  workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
} as const;

export interface StartRunbookOptions {
  /** Default `vpsie-runbook`, the worker's default. */
  taskQueue?: string;
}

export interface StartedRunbook {
  workflowId: string;
  /** The run that handles this VPSieNode now: the one just started, or the open one a repeated start joined. */
  runId: string;
  /**
   * Follows the VPSieNode's runs by workflow id: `status` asks the current run, `result()` waits for the end of
   * the chain (continue-as-new included).
   */
  handle: WorkflowHandle<typeof provisioningFailedRunbook>;
}

/**
 * Starts the "Provisioning Failed" runbook for one VPSieNode, or joins the run already open for it. The input is
 * checked before anything is sent, so bad input never becomes a run: InvalidInputError names the field.
 */
export async function startRunbook(
  client: Client,
  input: RunbookInput,
  opts: StartRunbookOptions = {},
): Promise<StartedRunbook> {
  if ((input as unknown as Record<string, unknown> | null)?.continuation !== undefined) {
    throw new InvalidInputError('continuation is set only by the workflow itself when it continues as new');
  }
  const { ref } = resolveInput(input);
  const workflowId = workflowIdFor(ref);
  const started = await client.workflow.start<typeof provisioningFailedRunbook>('provisioningFailedRunbook', {
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId,
    args: [input],
    ...RUNBOOK_START_POLICIES,
  });
  // The start's own handle is tied to the first run it names, which for a joined chain may not be the first
  // run; a handle by id alone follows whatever run is current.
  return { workflowId, runId: started.firstExecutionRunId, handle: client.workflow.getHandle(workflowId) };
}
