import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { resolveOrphanSweepInput, type OrphanSweepInput } from '../runbook/orphans';
import type { orphanedVmCleanup } from '../workflows/orphaned-vm-cleanup';

/** One Schedule per Temporal namespace: every worker start-up creates or updates this one. */
export const ORPHAN_SCHEDULE_ID = 'orphaned-vm-cleanup';
/** Runs started by the Schedule get this id with the start time appended (Temporal adds it). */
export const ORPHAN_SWEEP_WORKFLOW_ID = 'orphaned-vm-cleanup';

export interface OrphanScheduleOptions {
  taskQueue: string;
  /** How often the sweep starts (ORPHAN_SWEEP_INTERVAL), in milliseconds. */
  intervalMs: number;
  /** The sweep's input for every scheduled run; default: the workflow's defaults (grace 30m, mode `each`). */
  input?: OrphanSweepInput;
  /** Default {@link ORPHAN_SCHEDULE_ID}. */
  scheduleId?: string;
}

/**
 * Creates the sweep's Schedule, or brings an existing one to `options` (a second start-up updates, never
 * duplicates: the Schedule id is fixed). Overlap policy SKIP: while a sweep still waits for a person, the next
 * start is skipped rather than queued, so sweeps never run side by side. Paused state and the Schedule's
 * history of actions are left as they are. Answers what it did.
 */
export async function ensureOrphanSchedule(
  client: Client,
  options: OrphanScheduleOptions,
): Promise<'created' | 'updated'> {
  if (!(Number.isFinite(options.intervalMs) && options.intervalMs >= 60_000))
    throw new RangeError(`the sweep's interval must be at least 1 minute, got ${options.intervalMs} ms`);
  // A bad input would fail every scheduled run; refuse it here, naming the field.
  resolveOrphanSweepInput(options.input ?? {});
  const scheduleId = options.scheduleId ?? ORPHAN_SCHEDULE_ID;
  const spec = { intervals: [{ every: options.intervalMs }] };
  const action: ScheduleOptionsStartWorkflowAction<typeof orphanedVmCleanup> = {
    type: 'startWorkflow',
    workflowType: 'orphanedVmCleanup',
    taskQueue: options.taskQueue,
    workflowId: ORPHAN_SWEEP_WORKFLOW_ID,
    args: [options.input ?? {}],
  };
  // A start missed while the server was down is taken when it is back, if it is not more than one interval late.
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: options.intervalMs };
  try {
    await client.schedule.create({ scheduleId, spec, action, policies });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  await client.schedule.getHandle(scheduleId).update((previous) => ({
    spec,
    action,
    policies,
    state: {
      paused: previous.state.paused,
      ...(previous.state.note !== undefined ? { note: previous.state.note } : {}),
      ...(previous.state.remainingActions !== undefined
        ? { remainingActions: previous.state.remainingActions }
        : {}),
    },
    typedSearchAttributes: previous.typedSearchAttributes,
  }));
  return 'updated';
}
