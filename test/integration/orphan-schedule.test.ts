/**
 * The sweep's Temporal Schedule against the real dev server: what worker start-up does when ORPHAN_SWEEP_INTERVAL
 * is set (src/main.ts calls ensureOrphanSchedule). No worker polls these task queues, so a started sweep stays
 * open: that is what lets the overlap policy be seen at work.
 */
import { ScheduleOverlapPolicy, type ScheduleHandle } from '@temporalio/client';
import { InvalidInputError } from '../../src/runbook';
import {
  ensureOrphanSchedule,
  ORPHAN_SCHEDULE_ID,
  ORPHAN_SWEEP_WORKFLOW_ID,
} from '../../src/temporal/orphan-schedule';
import { uniq } from '../support/cluster/test-helpers';
import { connectTemporal, uniqueTaskQueue, type TemporalTestContext } from '../support/temporal';

let ctx: TemporalTestContext;
const schedules: ScheduleHandle[] = [];
beforeAll(async () => {
  ctx = await connectTemporal();
});
afterAll(async () => {
  for (const s of schedules) {
    const d = await s.describe().catch(() => undefined);
    for (const a of d?.info.runningActions ?? [])
      await ctx.client.workflow.getHandle(a.workflow.workflowId).terminate('test over');
    await s.delete().catch(() => undefined);
  }
  await ctx?.close();
});

const HOUR = 3_600_000;

describe('ensureOrphanSchedule', () => {
  it('creates the Schedule once, then updates it in place on the next start-up, keeping it paused if paused', async () => {
    const taskQueue = uniqueTaskQueue('sched');
    const handle = ctx.client.schedule.getHandle(ORPHAN_SCHEDULE_ID);
    schedules.push(handle);

    expect(await ensureOrphanSchedule(ctx.client, { taskQueue, intervalMs: HOUR })).toBe('created');
    const first = await handle.describe();
    expect(first.spec.intervals).toEqual([expect.objectContaining({ every: HOUR })]);
    expect(first.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(first.policies.catchupWindow).toBe(HOUR);
    expect(first.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'orphanedVmCleanup',
      taskQueue,
      workflowId: ORPHAN_SWEEP_WORKFLOW_ID,
      args: [{}],
    });
    expect(first.state.paused).toBe(false);

    // An operator paused it; the next start-up changes the interval and input but neither unpauses nor duplicates.
    await handle.pause('maintenance');
    expect(
      await ensureOrphanSchedule(ctx.client, {
        taskQueue,
        intervalMs: 2 * HOUR,
        input: { mode: 'all', grace: '1h' },
      }),
    ).toBe('updated');
    const second = await handle.describe();
    expect(second.info.createdAt).toEqual(first.info.createdAt);
    expect(second.info.lastUpdatedAt).toBeDefined();
    expect(second.spec.intervals).toEqual([expect.objectContaining({ every: 2 * HOUR })]);
    expect(second.policies.overlap).toBe(ScheduleOverlapPolicy.SKIP);
    expect(second.action).toMatchObject({ taskQueue, args: [{ mode: 'all', grace: '1h' }] });
    expect(second.state).toMatchObject({ paused: true, note: 'maintenance' });

    // And a third start-up with the same settings is the same Schedule again.
    expect(await ensureOrphanSchedule(ctx.client, { taskQueue, intervalMs: 2 * HOUR })).toBe('updated');
    expect((await handle.describe()).info.createdAt).toEqual(first.info.createdAt);
  });

  it('skips a start while the previous sweep is still running (overlap SKIP)', async () => {
    const scheduleId = uniq('orphan-sched');
    const taskQueue = uniqueTaskQueue('sched');
    await ensureOrphanSchedule(ctx.client, { taskQueue, intervalMs: HOUR, scheduleId });
    const handle = ctx.client.schedule.getHandle(scheduleId);
    schedules.push(handle);

    // Three scheduled times at once, as after an outage: the first starts, the others overlap it and are skipped.
    // The range holds exactly three of the Schedule's times (whole hours), none near its ends.
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    await handle.backfill({ start: new Date(hour - 3.5 * HOUR), end: new Date(hour - 0.5 * HOUR) });
    const d = await waitForDescription(
      handle,
      'the backfill to be taken',
      (x) => x.info.numActionsTaken + x.info.numActionsSkippedOverlap >= 3,
    );
    expect(d.info.numActionsTaken).toBe(1);
    expect(d.info.numActionsSkippedOverlap).toBe(2);
    expect(d.info.runningActions).toHaveLength(1);
    const run = await ctx.client.workflow.getHandle(d.info.runningActions[0].workflow.workflowId).describe();
    expect(run.type).toBe('orphanedVmCleanup');
    expect(run.taskQueue).toBe(taskQueue);
    expect(run.workflowId.startsWith(`${ORPHAN_SWEEP_WORKFLOW_ID}-`)).toBe(true);
  });

  it('refuses a bad interval or sweep input before touching the server, naming it', async () => {
    const taskQueue = uniqueTaskQueue('sched');
    const scheduleId = uniq('never');
    await expect(
      ensureOrphanSchedule(ctx.client, { taskQueue, intervalMs: 1000, scheduleId }),
    ).rejects.toThrow(/interval must be at least 1 minute, got 1000 ms/);
    await expect(
      ensureOrphanSchedule(ctx.client, {
        taskQueue,
        intervalMs: HOUR,
        scheduleId,
        input: { mode: 'some' as 'all' },
      }),
    ).rejects.toThrow(InvalidInputError);
    await expect(ctx.client.schedule.getHandle(scheduleId).describe()).rejects.toThrow(/not found/i);
  });
});

async function waitForDescription(
  handle: ScheduleHandle,
  what: string,
  ok: (d: Awaited<ReturnType<ScheduleHandle['describe']>>) => boolean,
) {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const d = await handle.describe();
    if (ok(d)) return d;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(d.info)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
