/**
 * The NodeGroup lease on the real Temporal dev server: the lease workflow, its activities (signal-with-start)
 * and test-only holder workflows that ask, hold and release the way a runbook step does.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createLeaseActivities } from '../../src/activities/lease';
import type { NodeGroupRef } from '../../src/runbook/evidence';
import { leaseWorkflowId, type LeaseStatus } from '../../src/runbook/lease';
import {
  leaseFailureSignal,
  leaseReleaseSignal,
  leaseRequestSignal,
  leaseStatusQuery,
  type nodeGroupLease,
} from '../../src/workflows/nodegroup-lease';
import {
  finishSignal,
  holderQuery,
  type LeaseHolderInput,
  type LeaseHolderRecord,
  type leaseHolderWorkflow,
} from '../support/lease-holder-workflow';
import { rejectsWith } from '../support/expect-rejection';
import { TestWorker, uniqueTaskQueue, type TemporalTestContext } from '../support/temporal';

const taskQueue = uniqueTaskQueue('nodegroup-lease');
const testWorker = new TestWorker({
  taskQueue,
  workflowsPath: require.resolve('../support/lease-holder-workflow'),
  activities: createLeaseActivities(),
});
let ctx: TemporalTestContext;

beforeAll(async () => {
  await testWorker.start();
  ctx = testWorker.ctx;
}, 120_000);
afterAll(() => testWorker.stop());

/** Workflow ids are global on the server: a namespace of this file's own keeps its leases apart. */
const namespace = `lease-${randomUUID().slice(0, 8)}`;
const group = (name: string): NodeGroupRef => ({ namespace, name });
const HOUR = 3_600_000;

type Holder = WorkflowHandle<typeof leaseHolderWorkflow>;

function startHolder(input: Partial<LeaseHolderInput> & { nodeGroup: NodeGroupRef }): Promise<Holder> {
  return ctx.client.workflow.start<typeof leaseHolderWorkflow>('leaseHolderWorkflow', {
    taskQueue,
    workflowId: `lease-holder-${randomUUID()}`,
    args: [{ stepId: 'delete-vpsienode', ttlMs: HOUR, timeoutMs: HOUR, ...input }],
  });
}

function lease(nodeGroup: NodeGroupRef): WorkflowHandle<typeof nodeGroupLease> {
  return ctx.client.workflow.getHandle(leaseWorkflowId(nodeGroup));
}

/** Every status seen by any test, per NodeGroup: what "never more than the budget" is checked against. */
const seen = new Map<string, LeaseStatus[]>();

async function poll<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'nothing yet';
  for (;;) {
    try {
      const v = await read();
      if (ok(v)) return v;
      last = v;
    } catch (err) {
      last = err; // the workflow may not exist yet, or not have run its first task
    }
    if (Date.now() > deadline) throw new Error(`${what} never came; last: ${JSON.stringify(last, null, 1)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls the lease's `status` until `ok`. */
function statusWhen(nodeGroup: NodeGroupRef, ok: (s: LeaseStatus) => boolean): Promise<LeaseStatus> {
  const key = `${nodeGroup.namespace}/${nodeGroup.name}`;
  return poll(
    async () => {
      const s = await lease(nodeGroup).query(leaseStatusQuery);
      seen.set(key, [...(seen.get(key) ?? []), s]);
      return s;
    },
    ok,
    `lease status of ${key}`,
  );
}

function holderWhen(h: Holder, ok: (r: LeaseHolderRecord) => boolean): Promise<LeaseHolderRecord> {
  return poll(() => h.query(holderQuery), ok, `holder ${h.workflowId}`);
}

const granted = (r: LeaseHolderRecord) => r.answer?.granted === true;
const holds = (s: LeaseStatus, h: Holder) => s.holders.some((x) => x.holder.workflowId === h.workflowId);
const waits = (s: LeaseStatus, h: Holder) => s.queue.some((x) => x.holder.workflowId === h.workflowId);

/** [start, end) of each holder's own use of the lease, from its records; none may overlap another. */
function expectNoOverlap(intervals: { start: string; end: string }[]): void {
  const sorted = [...intervals].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  for (let i = 1; i < sorted.length; i++)
    expect(Date.parse(sorted[i].start)).toBeGreaterThanOrEqual(Date.parse(sorted[i - 1].end));
}

describe('nodeGroupLease', () => {
  it('with budget 1, three concurrent holders in one NodeGroup are granted strictly one after another', async () => {
    const ng = group('ng-serial');
    const holders = await Promise.all(
      [1, 2, 3].map((i) => startHolder({ nodeGroup: ng, stepId: `delete-vpsienode-${i}` })),
    );
    await statusWhen(ng, (s) => s.holders.length + s.queue.length === 3);
    const order: string[] = [];
    for (let round = 0; round < 3; round++) {
      const s = await statusWhen(ng, (x) => x.counters.grants === round + 1);
      expect(s.budget).toBe(1);
      expect(s.holders).toHaveLength(1);
      expect(s.queue).toHaveLength(2 - round);
      const current = holders.find((h) => holds(s, h))!;
      // The holder's own view agrees: it has its grant, and nobody else still waiting has one.
      expect(granted(await holderWhen(current, granted))).toBe(true);
      for (const h of holders.filter((x) => waits(s, x)))
        expect((await h.query(holderQuery)).answer).toBeNull();
      order.push(current.workflowId);
      await current.signal(finishSignal);
      const done = await current.result();
      expect(done.releasedAt).not.toBeNull();
    }
    const end = await statusWhen(ng, (s) => s.counters.releases === 3);
    expect(end.holders).toEqual([]);
    expect(end.queue).toEqual([]);
    expect(new Set(order).size).toBe(3);
    // Granted first come, first served: the order of the lease's records is the order the holders asked in.
    expect(end.ended.map((e) => e.holder.workflowId)).toEqual(order);
    expect(end.ended.map((e) => e.how)).toEqual(['released', 'released', 'released']);
    expectNoOverlap(end.ended.map((e) => ({ start: e.since!, end: e.endedAt })));
    const records = await Promise.all(holders.map((h) => h.result()));
    expectNoOverlap(records.map((r) => ({ start: r.answeredAt!, end: r.releasedAt! })));
    for (const s of seen.get(`${namespace}/ng-serial`)!) expect(s.holders.length).toBeLessThanOrEqual(1);
  });

  it('two NodeGroups proceed in parallel, and a budget of 2 lets two hold in one NodeGroup', async () => {
    const a = group('ng-par-a');
    const b = group('ng-par-b');
    const [ha, hb] = await Promise.all([startHolder({ nodeGroup: a }), startHolder({ nodeGroup: b })]);
    const [ra, rb] = await Promise.all([holderWhen(ha, granted), holderWhen(hb, granted)]);
    // Both hold at once: neither has released.
    expect([ra.releasedAt, rb.releasedAt]).toEqual([null, null]);
    expect((await statusWhen(a, (s) => holds(s, ha))).holders).toHaveLength(1);
    expect((await statusWhen(b, (s) => holds(s, hb))).holders).toHaveLength(1);
    await Promise.all([ha.signal(finishSignal), hb.signal(finishSignal)]);
    await Promise.all([ha.result(), hb.result()]);

    const c = group('ng-budget-2');
    const two = await Promise.all([1, 2].map(() => startHolder({ nodeGroup: c, budget: 2 })));
    await Promise.all(two.map((h) => holderWhen(h, granted)));
    const third = await startHolder({ nodeGroup: c, budget: 2 });
    const s = await statusWhen(c, (x) => waits(x, third));
    expect(s.holders.map((h) => h.budget)).toEqual([2, 2]);
    expect((await third.query(holderQuery)).answer).toBeNull();
    await two[0].signal(finishSignal);
    await holderWhen(third, granted);
    const after = await statusWhen(c, (x) => holds(x, third));
    expect(after.holders).toHaveLength(2);
    await Promise.all([two[1], third].map((h) => h.signal(finishSignal)));
    await statusWhen(c, (x) => x.counters.releases === 3 && x.holders.length === 0);
  });

  it('a holder that never releases loses the lease after its TTL, is told so, and the next is granted', async () => {
    const ng = group('ng-ttl');
    // Both queue behind a first holder, so that the next is surely waiting when the crashed one's TTL starts.
    const blocker = await startHolder({ nodeGroup: ng });
    await holderWhen(blocker, granted);
    const crashed = await startHolder({ nodeGroup: ng, ttlMs: 2_000, neverRelease: true });
    await statusWhen(ng, (s) => waits(s, crashed));
    const next = await startHolder({ nodeGroup: ng });
    await statusWhen(ng, (s) => waits(s, next));
    await blocker.signal(finishSignal);
    const crashedRecord = await holderWhen(crashed, granted);
    const nextRecord = await holderWhen(next, granted);

    const s = await statusWhen(ng, (x) => holds(x, next));
    const expired = s.ended.find((e) => e.holder.workflowId === crashed.workflowId)!;
    expect(expired.how).toBe('expired');
    expect(s.counters.expirations).toBe(1);
    const held = crashedRecord.answer as { expiresAt: string };
    expect(Date.parse(held.expiresAt) - Date.parse(expired.since!)).toBe(2_000);
    // Granted only once the TTL had passed, never while the crashed holder still held it.
    expect(Date.parse(s.holders[0].since)).toBeGreaterThanOrEqual(Date.parse(held.expiresAt));
    expect(Date.parse(nextRecord.answeredAt!)).toBeGreaterThanOrEqual(Date.parse(held.expiresAt));
    expect((await holderWhen(crashed, (r) => r.lease === 'expired')).releasedAt).toBeNull();

    await crashed.signal(finishSignal);
    await next.signal(finishSignal);
    await Promise.all([blocker.result(), crashed.result(), next.result()]);
    const end = await statusWhen(ng, (x) => x.holders.length === 0 && x.counters.releases === 2);
    expect(end.ended.map((e) => [e.holder.workflowId, e.how])).toEqual([
      [blocker.workflowId, 'released'],
      [crashed.workflowId, 'expired'],
      [next.workflowId, 'released'],
    ]);
  });

  it('a grant to a run that has ended goes to the next request at once', async () => {
    const ng = group('ng-gone');
    const first = await startHolder({ nodeGroup: ng });
    await holderWhen(first, granted);
    const gone = await startHolder({ nodeGroup: ng });
    await statusWhen(ng, (s) => waits(s, gone));
    const next = await startHolder({ nodeGroup: ng });
    await statusWhen(ng, (s) => waits(s, next));
    await gone.terminate('the run was terminated while waiting');
    await first.signal(finishSignal);
    await holderWhen(next, granted);
    const s = await statusWhen(ng, (x) => holds(x, next));
    expect(s.ended.map((e) => [e.holder.workflowId, e.how])).toEqual([
      [first.workflowId, 'released'],
      [gone.workflowId, 'holder-gone'],
    ]);
    await next.signal(finishSignal);
    await Promise.all([first.result(), next.result()]);
  });

  it('a requester that waits too long gives up with `timeout` and its request is withdrawn', async () => {
    const ng = group('ng-timeout');
    const first = await startHolder({ nodeGroup: ng });
    await holderWhen(first, granted);
    const impatient = await startHolder({ nodeGroup: ng, timeoutMs: 1_500 });
    const r = await impatient.result();
    expect(r.answer).toEqual({ granted: false, why: 'timeout' });
    const s = await statusWhen(ng, (x) => x.ended.some((e) => e.holder.workflowId === impatient.workflowId));
    expect(s.queue).toEqual([]);
    expect(['withdrawn', 'wait-expired']).toContain(s.ended.at(-1)!.how);
    await first.signal(finishSignal);
    await first.result();
    const end = await statusWhen(ng, (x) => x.counters.releases === 1);
    expect(end.holders).toEqual([]);
    expect(end.counters.grants).toBe(1);
  });

  it('storm: the 4th failing VPSieNode in the window refuses every request with `storm`; its reporter is the one `first`; every reporter is told', async () => {
    const ng = group('ng-storm');
    const node = (i: number) => ({ namespace, name: `ng-storm-node-${i}` });
    const holding = await startHolder({ nodeGroup: ng, failure: node(1) });
    await holderWhen(holding, granted);
    const waiting: Holder[] = [];
    for (const i of [2, 3]) {
      const h = await startHolder({ nodeGroup: ng, failure: node(i) });
      await statusWhen(ng, (s) => s.failures.length === i && waits(s, h));
      waiting.push(h);
    }
    let s = await statusWhen(ng, () => true);
    expect(s.storm).toMatchObject({ active: false, count: 3, threshold: 3, escalated: false });
    // each report was answered before its run asked for the lease: no storm then
    for (const h of [holding, ...waiting]) expect((await h.query(holderQuery)).reported).toBeNull();

    const fourth = await startHolder({ nodeGroup: ng, failure: node(4) });
    const fourthResult = await fourth.result();
    const late = await startHolder({ nodeGroup: ng });
    const lateResult = await late.result();
    const waitingResults = await Promise.all(waiting.map((h) => h.result()));
    const refused = [...waitingResults, fourthResult, lateResult];
    for (const r of refused) {
      expect(r.answer).toMatchObject({
        granted: false,
        why: 'storm',
        storm: { count: 4, threshold: 3, window: '15m', windowMs: 900_000 },
      });
    }
    // The report that began the storm was answered with it, before its run asked anything: that run is first,
    // and its refusal agrees; every other answer says not first.
    expect(fourthResult.reported).toMatchObject({ count: 4, first: true });
    const firsts = refused.filter(
      (r) => r.answer?.granted === false && 'storm' in r.answer && r.answer.storm.first,
    );
    expect(firsts).toEqual([fourthResult]);
    const answer = fourthResult.answer as { storm: { vpsieNodes: string[]; since: string } };
    expect(answer.storm.vpsieNodes.sort()).toEqual(
      [1, 2, 3, 4].map((i) => `${namespace}/ng-storm-node-${i}`),
    );

    s = await statusWhen(ng, (x) => x.counters.stormRefusals === 4);
    expect(s.storm).toMatchObject({
      active: true,
      count: 4,
      escalated: true,
      since: answer.storm.since,
      first: { requestId: null, workflowId: fourth.workflowId },
    });
    expect(s.storm.told.map((x) => [x.workflowId, x.first]).sort()).toEqual(
      [holding, ...waiting, fourth].map((h) => [h.workflowId, h === fourth]).sort(),
    );
    expect(s.failures.map((f) => f.vpsieNode.name).sort()).toEqual(
      [1, 2, 3, 4].map((i) => `ng-storm-node-${i}`),
    );
    expect(s.queue).toEqual([]);
    // The holder, which reported too, has been told of the storm (not first) while it holds its lease.
    const told = await holderWhen(holding, (r) => r.storm !== null);
    expect(told.storm).toMatchObject({ count: 4, first: false });
    // A step already under way keeps its lease and gives it back as usual; nobody is granted it after.
    expect(s.holders.map((h) => h.holder.workflowId)).toEqual([holding.workflowId]);
    await holding.signal(finishSignal);
    await holding.result();
    const end = await statusWhen(ng, (x) => x.counters.releases === 1);
    expect(end.holders).toEqual([]);
    expect(end.counters.grants).toBe(1);
  });

  it('continues as new keeping holders, queue and failures, and goes on granting in the new run', async () => {
    const ng = group('ng-continue');
    const first = await startHolder({
      nodeGroup: ng,
      policy: { eventsPerRun: 40 },
      failure: { namespace, name: 'ng-continue-node-1' },
    });
    await holderWhen(first, granted);
    const second = await startHolder({ nodeGroup: ng, failure: { namespace, name: 'ng-continue-node-2' } });
    const before = await statusWhen(ng, (s) => waits(s, second) && s.failures.length === 2);
    expect(before.policy.eventsPerRun).toBe(40);
    // Harmless signals (releases of nothing) until the run has rolled over at least once.
    const handle = lease(ng);
    let after: LeaseStatus | null = null;
    for (let i = 0; i < 200 && !after; i++) {
      await handle.signal(leaseReleaseSignal, { requestId: `nothing-${i}` });
      const s = await handle.query(leaseStatusQuery);
      if (s.run > before.run) after = s;
    }
    expect(after).not.toBeNull();
    const pick = (s: LeaseStatus) => ({
      holders: s.holders,
      queue: s.queue,
      failures: s.failures,
      startedAt: s.startedAt,
    });
    expect(pick(after!)).toEqual(pick(before));
    // The server's own record: earlier runs of the lease closed as continued-as-new.
    await poll(
      async () => {
        let continued = 0;
        for await (const w of ctx.client.workflow.list({ query: `WorkflowId = '${leaseWorkflowId(ng)}'` }))
          if (w.status.name === 'CONTINUED_AS_NEW') continued++;
        return continued;
      },
      (n) => n >= 1,
      'a run closed as continued-as-new',
    );

    await first.signal(finishSignal);
    await holderWhen(second, granted);
    const s = await statusWhen(ng, (x) => holds(x, second));
    expect(s.run).toBeGreaterThan(1);
    await second.signal(finishSignal);
    await Promise.all([first.result(), second.result()]);
    const end = await statusWhen(ng, (x) => x.counters.releases === 2);
    expect(end.ended.map((e) => [e.holder.workflowId, e.how])).toEqual([
      [first.workflowId, 'released'],
      [second.workflowId, 'released'],
    ]);
  });

  it('loses no signal of a burst that arrives while it keeps continuing as new', async () => {
    const ng = group('ng-burst');
    const holder = await startHolder({ nodeGroup: ng, policy: { eventsPerRun: 20, stormThreshold: 1000 } });
    await holderWhen(holder, granted);
    const handle = lease(ng);
    const at = new Date().toISOString();
    // Three streams of signals, each sent as soon as the last was accepted: with a run rolling over every few
    // signals, many land while a run is handing over to the next.
    const send = (i: number) =>
      handle.signal(leaseFailureSignal, { vpsieNode: { namespace, name: `ng-burst-node-${i}` }, at });
    await Promise.all(
      [0, 1, 2].map(async (stream) => {
        for (let i = stream; i < 60; i += 3) await send(i);
      }),
    );
    // However the burst fell across runs (on a fast machine it may all land in one), every report is counted
    // once it has rolled over.
    const s = await statusWhen(ng, (x) => x.run > 1 && x.counters.failureReports === 60);
    expect(s.failures).toHaveLength(60);
    expect(s.storm.active).toBe(false);
    expect(s.holders.map((h) => h.holder.workflowId)).toEqual([holder.workflowId]);
    await holder.signal(finishSignal);
    await holder.result();
    await statusWhen(ng, (x) => x.counters.releases === 1 && x.holders.length === 0);
  });

  it('bad signal payloads change nothing and are recorded with the field at fault', async () => {
    const ng = group('ng-bad');
    const holder = await startHolder({ nodeGroup: ng, failure: { namespace, name: 'ng-bad-node-1' } });
    await holderWhen(holder, granted);
    const before = await statusWhen(ng, (s) => holds(s, holder) && s.failures.length === 1);
    const handle = lease(ng);
    const send = (
      signal: typeof leaseRequestSignal | typeof leaseReleaseSignal | typeof leaseFailureSignal,
      payload: unknown,
    ) => handle.signal(signal.name, payload);
    const validHolder = { workflowId: 'wf', runId: 'run', stepId: 'delete-vpsienode' };
    await send(leaseRequestSignal, {});
    await send(leaseRequestSignal, { requestId: 'r1', holder: validHolder, ttlMs: -5, waitMs: 10_000 });
    await send(leaseRequestSignal, {
      requestId: 'r2',
      holder: validHolder,
      ttlMs: 60_000,
      waitMs: 60_000,
      colour: 'red',
    });
    await send(leaseRequestSignal, {
      requestId: 'r3',
      holder: { ...validHolder, runId: '' },
      ttlMs: 60_000,
      waitMs: 60_000,
    });
    await send(leaseReleaseSignal, 'everything');
    await send(leaseReleaseSignal, {});
    await send(leaseFailureSignal, { vpsieNode: { namespace: 'Bad_NS', name: 'x' }, at: 'yesterday' });
    const s = await statusWhen(ng, (x) => x.refusedSignals.length === 7);
    expect(s.refusedSignals.map((r) => [r.signal, r.error])).toEqual([
      [
        'request',
        expect.stringMatching(/requestId must be a non-empty string.*got nothing.*holder must be an object/),
      ],
      [
        'request',
        expect.stringMatching(
          /^ttlMs must be milliseconds between 1000 \(1s\) and 86400000 \(24h\), got -5$/,
        ),
      ],
      ['request', 'request: unknown field(s) colour'],
      ['request', expect.stringMatching(/^holder\.runId must be a non-empty string.*got ""$/)],
      ['release', 'release must be an object, got "everything"'],
      ['release', expect.stringMatching(/^requestId must be a non-empty string.*got nothing$/)],
      [
        'failure',
        expect.stringMatching(
          /vpsieNode\.namespace must be a namespace name \(DNS label\), got "Bad_NS".*at must be an ISO 8601 timestamp, got "yesterday"/,
        ),
      ],
    ]);
    const same = (x: LeaseStatus) => ({
      holders: x.holders,
      queue: x.queue,
      failures: x.failures,
      counters: x.counters,
      storm: x.storm,
      ended: x.ended,
    });
    expect(same(s)).toEqual(same(before));
    await holder.signal(finishSignal);
    await holder.result();
    await statusWhen(ng, (x) => x.counters.releases === 1 && x.holders.length === 0);
  });

  it('a run that asks with bad options fails naming the field, and nothing reaches the lease', async () => {
    const ng = group('ng-bad-ask');
    const h = await startHolder({ nodeGroup: ng, ttlMs: 10 });
    const err = await rejectsWith(h.result(), WorkflowFailedError);
    expect(err.cause).toBeInstanceOf(ApplicationFailure);
    expect((err.cause as ApplicationFailure).type).toBe('InvalidInput');
    expect(err.cause?.message).toMatch(
      /^ttlMs must be milliseconds between 1000 \(1s\) and 86400000 \(24h\), got 10$/,
    );
    await rejectsWith(lease(ng).describe(), WorkflowNotFoundError);
  });

  it('idles out when nothing is held, queued or counted, and a later request starts a fresh lease', async () => {
    const ng = group('ng-idle');
    const h1 = await startHolder({ nodeGroup: ng, policy: { idleAfter: '1s' } });
    await holderWhen(h1, granted);
    const firstRun = (await lease(ng).describe()).runId;
    await h1.signal(finishSignal);
    await h1.result();
    const summary = await ctx.client.workflow.getHandle(leaseWorkflowId(ng), firstRun).result();
    expect(summary).toMatchObject({
      nodeGroup: ng,
      runs: 1,
      counters: { requests: 1, grants: 1, releases: 1 },
    });

    const h2 = await startHolder({ nodeGroup: ng });
    await holderWhen(h2, granted);
    const fresh = await lease(ng).describe();
    expect(fresh.runId).not.toBe(firstRun);
    expect(fresh.status.name).toBe('RUNNING');
    const s = await statusWhen(ng, (x) => holds(x, h2));
    expect(s.counters.grants).toBe(1);
    expect(s.policy.idleAfter).toBe('10m');
    await h2.signal(finishSignal);
    await h2.result();
  });
});
