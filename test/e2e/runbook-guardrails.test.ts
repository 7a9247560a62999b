/**
 * The NodeGroup lease end to end (issue 8 items 1 and 2): the real Temporal server and apiserver, the product's
 * worker with its real activities and the lease workflow, and the simulated controller and VPSie.
 *
 * What a person would notice is read where they would read it: the order of the VPSieNodes' changes in the
 * apiserver (one watch over this file's namespace, in resourceVersion order, so "before" means before in etcd, not
 * in a test's clock), the runs' outcomes and status, and the lease workflow's `status` query.
 *
 * The simulated NodeGroup controller creates one VPSieNode at a time and only when none is in transition
 * (upstream's sequential scaling), so a group's stuck VPSieNodes are made one after another and each fails when
 * the controller's provisioning limit passes. Runs are alerted only once all of a group's staged VPSieNodes have
 * failed: a delete before then would get a staged (stuck) VPSieNode as its "replacement". The groups are made at
 * once when the file starts, so their limits pass together rather than one test after another.
 *
 * The escalation channels point at the checking sink (test/support/escalation-sink.ts), every audience to all
 * three, so that "a storm pages once" is read where people would be paged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, Watch } from '@kubernetes/client-node';
import { defaultPayloadConverter } from '@temporalio/common';
import { ESCALATION_EVENT_REASON, type DiagnosisReport } from '../../src/runbook';
import { leaseWorkflowId, type LeaseStatus } from '../../src/runbook/lease';
import { leaseStatusQuery } from '../../src/workflows/nodegroup-lease';
import { GROUP, LABEL_MANAGED, LABEL_NODEGROUP, VERSION, type VPSieNodeObj } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { MERGE } from '../support/cluster/util';
import { EscalationSink } from '../support/escalation-sink';
import { recordHistory } from '../support/histories';
import { RECREATED_AT_ONCE, RunbookE2E, stepStates, type RunbookHandle } from '../support/runbook-e2e';

jest.setTimeout(180_000);

const e = new RunbookE2E('guardrails');
const sink = new EscalationSink();
let secretsDir = '';
const STEP = 'delete-vpsienode';
/** The runs approve their own delete: the lease, not a person, is what spaces the deletes here. */
const AUTO = { autoApprove: [STEP] };
/**
 * For a run held in wait-replacement by a stalled NodeGroup controller: the wait outlasts any load on the machine,
 * so the run is still there (holding its lease) when the test lets the controller go.
 */
const HELD = { ...AUTO, replacementWait: '10m' };

// ---------------------------------------------------------------------------------------------------------------
// The apiserver's view: every change to a VPSieNode of this namespace, in the order etcd made them.

interface Seen {
  type: string;
  name: string;
  uid: string;
  nodeGroup: string;
  phase: string;
  /** Has a deletionTimestamp, or is gone. */
  deleting: boolean;
}

class VPSieNodeWatch {
  readonly seen: Seen[] = [];
  error: unknown = null;
  private abort: AbortController | null = null;
  private stopped = false;
  private rv = '';

  async start(): Promise<void> {
    const list = (await e.t.custom.listNamespacedCustomObject(e.t.crd('vpsienodes'))) as {
      metadata: { resourceVersion: string };
    };
    await this.from(list.metadata.resourceVersion);
  }

  /** Watches from `rv` on; resumes where it was when the server closes the stream (its request timeout). */
  private async from(rv: string): Promise<void> {
    this.rv = rv;
    this.abort = await new Watch(e.t.admin).watch(
      `/apis/${GROUP}/${VERSION}/namespaces/${e.t.ns}/vpsienodes`,
      { resourceVersion: rv, allowWatchBookmarks: true },
      (type: string, obj: VPSieNodeObj) => {
        if (obj.metadata.resourceVersion) this.rv = obj.metadata.resourceVersion;
        if (type === 'BOOKMARK') return;
        if (type === 'ERROR') {
          this.error = obj;
          return;
        }
        this.seen.push({
          type,
          name: obj.metadata.name,
          uid: obj.metadata.uid ?? '',
          nodeGroup: obj.metadata.labels?.[LABEL_NODEGROUP] ?? '',
          phase: obj.status?.phase ?? '',
          deleting: type === 'DELETED' || !!obj.metadata.deletionTimestamp,
        });
      },
      (err: unknown) => {
        if (this.stopped) return;
        if (err) this.error = err;
        else void this.from(this.rv).catch((e2: unknown) => (this.error = e2));
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  /** Position of the first change where the VPSieNode `uid` was being deleted (or gone); -1 if none yet. */
  deletedAt(uid: string): number {
    return this.seen.findIndex((s) => s.uid === uid && s.deleting);
  }

  /** Position of the first change where the VPSieNode `uid` was Ready; -1 if none yet. */
  readyAt(uid: string): number {
    return this.seen.findIndex((s) => s.uid === uid && s.phase === 'Ready' && !s.deleting);
  }

  /** UIDs of the group's VPSieNodes that have been deleted, in the order the deletes reached the apiserver. */
  deletes(nodeGroup: string): string[] {
    const out: string[] = [];
    for (const s of this.seen)
      if (s.nodeGroup === nodeGroup && s.deleting && !out.includes(s.uid)) out.push(s.uid);
    return out;
  }
}

const watch = new VPSieNodeWatch();

// ---------------------------------------------------------------------------------------------------------------
// Groups whose first VPSieNodes never boot, made when the file starts.

interface FailedGroup {
  ng: string;
  /** Its VPSieNodes, all Failed (ProvisioningTimeout), oldest first. */
  vns: VPSieNodeObj[];
}

const made: string[] = [];

/** A NodeGroup of `n` nodes whose first `n` VPSieNodes get machines that never boot; resolves once all failed. */
async function failedGroup(prefix: string, n: number): Promise<FailedGroup> {
  const ng = uniq(prefix);
  made.push(ng);
  await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: n, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng, { maxNodes: n }, { desiredNodes: n });
  // one at a time, each after the previous one failed: n provisioning limits
  const vns = await e.t.waitFor(
    `NodeGroup ${ng}'s ${n} VPSieNodes Failed`,
    async () => {
      const vns = await e.t.listVNs(ng);
      return vns.length === n && vns.every((v) => v.status?.phase === 'Failed') ? vns : undefined;
    },
    60_000 + n * 20_000,
  );
  return {
    ng,
    vns: vns.sort((a, b) =>
      (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''),
    ),
  };
}

let groups: {
  parallelA: Promise<FailedGroup>;
  parallelB: Promise<FailedGroup>;
  three: Promise<FailedGroup>;
  storm: Promise<FailedGroup>;
};

beforeAll(async () => {
  await sink.start();
  secretsDir = await mkdtemp(join(tmpdir(), 'e2e-guardrails-'));
  const everywhere = ['pagerduty', 'slack', 'webhook'] as const;
  const channels = await sink.channelsConfig(
    secretsDir,
    { 'vpsie-support': [...everywhere], 'platform-team': [...everywhere] },
    ['webhook'],
  );
  await e.start('guardrails', {}, channels);
  await watch.start();
  groups = {
    parallelA: failedGroup('para', 1),
    parallelB: failedGroup('parb', 1),
    three: failedGroup('three', 3),
    storm: failedGroup('storm', 4),
  };
  // each test awaits its own; a test that never runs (-t) must not leave an unhandled rejection
  for (const g of Object.values(groups)) g.catch(() => undefined);
}, 120_000);

afterAll(async () => {
  watch.stop();
  await Promise.allSettled(Object.values(groups ?? {}));
  for (const ng of made) await removeGroup(ng);
  await e.stop();
  await sink.stop();
  await rm(secretsDir, { recursive: true, force: true });
}, 120_000);

afterEach(() => {
  expect(e.t.sim.errors).toEqual([]);
  expect(watch.error).toBeNull();
  // every payload the runs sent passed the services' documented checks
  expect(sink.requests.flatMap((r) => r.problems.map((p) => `${r.service}: ${p}`))).toEqual([]);
});

async function removeGroup(ng: string): Promise<void> {
  await e.t.sim.stallNodeGroup(ng, false);
  // The controller handles the deletion (its VPSieNodes, then its finalizer) only of a managed NodeGroup.
  await e.t.custom.patchNamespacedCustomObject(
    { ...e.t.crd('nodegroups'), name: ng, body: { metadata: { labels: { [LABEL_MANAGED]: 'true' } } } },
    MERGE,
  );
  await e.t.custom.deleteNamespacedCustomObject({ ...e.t.crd('nodegroups'), name: ng });
  await e.t.waitFor(`NodeGroup ${ng} and its VPSieNodes gone`, async () => {
    const [vns, gone] = await Promise.all([e.t.listVNs(ng), e.t.getNG(ng).then(() => false, notFound)]);
    return vns.length === 0 && gone;
  });
}

function notFound(err: unknown): true {
  if (err instanceof ApiException && err.code === 404) return true;
  throw err;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the lease and the runs.

function leaseStatus(ng: string): Promise<LeaseStatus> {
  return e.ctx.client.workflow
    .getHandle(leaseWorkflowId({ namespace: e.t.ns, name: ng }))
    .query(leaseStatusQuery);
}

/** Polls the lease's `status` until `ok` (the workflow is started by the first run's request or report). */
function leaseWhen(ng: string, what: string, ok: (s: LeaseStatus) => boolean): Promise<LeaseStatus> {
  return e.t.waitFor(
    `NodeGroup ${ng}'s lease: ${what}`,
    async () => {
      const s = await leaseStatus(ng);
      return ok(s) ? s : undefined;
    },
    90_000,
  );
}

/** Waits until the watch has delivered what `fn` looks for (it trails the apiserver by a moment). */
function watched<T>(what: string, fn: () => T | false): Promise<T> {
  return e.t.waitFor(`the watch to show ${what}`, async () => fn());
}

/** The VPSieNode a run deleted (the target of its delete step). */
function deletedBy(report: DiagnosisReport): string {
  const t = report.plan?.find((s) => s.id === STEP)?.target;
  if (t?.kind !== 'VPSieNode') throw new Error(`run has no ${STEP} step: ${JSON.stringify(report.plan)}`);
  return t.uid;
}

/** The grants of the lease, in the order they were given: who held it, from when until when. */
function holdings(s: LeaseStatus) {
  return s.ended
    .filter((x) => x.since !== null)
    .map((x) => ({ workflowId: x.holder.workflowId, since: x.since!, endedAt: x.endedAt, how: x.how }))
    .sort((a, b) => a.since.localeCompare(b.since));
}

/** The second argument of every `escalate` activity the run scheduled (what it was told about paging). */
async function escalateContexts(handle: RunbookHandle): Promise<Record<string, unknown>[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((ev) => {
    const a = ev.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'escalate') return [];
    const payload = a.input?.payloads?.[1];
    return payload ? [defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload)] : [];
  });
}

/** How many times the run scheduled the activity `type`. */
async function scheduled(handle: RunbookHandle, type: string): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter(
    (ev) => ev.activityTaskScheduledEventAttributes?.activityType?.name === type,
  ).length;
}

// ---------------------------------------------------------------------------------------------------------------

test('two NodeGroups proceed in parallel: one group is deleted and recreated whole while the other holds its lease', async () => {
  const [a, b] = await Promise.all([groups.parallelA, groups.parallelB]);
  const [vnA] = a.vns;
  const [vnB] = b.vns;
  // A's NodeGroup controller is slow to replace: A holds its lease in wait-replacement until it is let go
  await e.t.sim.stallNodeGroup(a.ng);

  const hA = await e.alert(vnA.metadata.name, HELD);
  const heldA = await leaseWhen(a.ng, 'held by A', (s) => s.holders.length === 1);
  expect(heldA.holders[0].holder).toMatchObject({ workflowId: hA.workflowId, stepId: STEP });
  await e.statusWhen(hA, 'A waiting for its replacement', (s) => s.currentStep === 'wait-replacement');
  await watched(`A's VPSieNode deleted`, () => watch.deletedAt(vnA.metadata.uid) >= 0);

  // B is another NodeGroup: its lease is its own, so it goes all the way while A still holds A's
  const hB = await e.alert(vnB.metadata.name, AUTO);
  const reportB = await e.result(hB);
  expect(reportB.outcome).toBe('Remediated');
  expect(stepStates(reportB).slice(-RECREATED_AT_ONCE.length)).toEqual(RECREATED_AT_ONCE);
  const stillA = await leaseStatus(a.ng);
  expect(stillA.holders.map((h) => h.holder.workflowId)).toEqual([hA.workflowId]);
  expect((await e.status(hA)).currentStep).toBe('wait-replacement');

  await e.t.sim.stallNodeGroup(a.ng, false);
  const reportA = await e.result(hA);
  expect(reportA.outcome).toBe('Remediated');

  // The apiserver's order: B's delete and B's replacement Ready both fall between A's delete and A's replacement
  // Ready (while A held its lease)
  const order = await watched('both replacements Ready', () => {
    const o = {
      deleteA: watch.deletedAt(vnA.metadata.uid),
      deleteB: watch.deletedAt(vnB.metadata.uid),
      readyB: watch.readyAt(reportB.replacement!.uid),
      readyA: watch.readyAt(reportA.replacement!.uid),
    };
    return Object.values(o).every((i) => i >= 0) && o;
  });
  expect(order.deleteA).toBeLessThan(order.deleteB);
  expect(order.deleteB).toBeLessThan(order.readyB);
  expect(order.readyB).toBeLessThan(order.readyA);

  // ... and the leases' own records: B's holding lies inside A's
  const [leaseA] = holdings(await leaseWhen(a.ng, 'released', (s) => holdings(s).length === 1));
  const [leaseB] = holdings(await leaseWhen(b.ng, 'released', (s) => holdings(s).length === 1));
  expect(leaseA).toMatchObject({ workflowId: hA.workflowId, how: 'released' });
  expect(leaseB).toMatchObject({ workflowId: hB.workflowId, how: 'released' });
  expect(leaseA.since < leaseB.since && leaseB.endedAt < leaseA.endedAt).toBe(true);
});

test('three failing VPSieNodes of one NodeGroup: the deletes never overlap; each waits for the previous replacement to be Ready; all Remediated', async () => {
  const { ng, vns } = await groups.three;
  // Held until all three runs have asked: the first holder cannot finish before the others queue behind it
  await e.t.sim.stallNodeGroup(ng);

  const handles = await Promise.all(vns.map((vn) => e.alert(vn.metadata.name, HELD)));
  const queued = await leaseWhen(
    ng,
    'one holder, two waiting',
    (s) => s.holders.length === 1 && s.queue.length === 2,
  );
  // three failures are not a storm (more than three are)
  expect(queued.storm).toMatchObject({ active: false, count: 3, threshold: 3 });
  expect(queued.failures.map((f) => f.vpsieNode.uid).sort()).toEqual(vns.map((v) => v.metadata.uid).sort());
  const first = handles.find((h) => h.workflowId === queued.holders[0].holder.workflowId)!;
  await e.statusWhen(
    first,
    'the holder waiting for its replacement',
    (s) => s.currentStep === 'wait-replacement',
  );
  // the two others were approved and wait at the lease: only the holder's VPSieNode is being deleted
  for (const h of handles.filter((x) => x !== first)) {
    const s = await e.status(h);
    expect(s.currentStep).toBe(STEP);
    expect(s.plan.find((p) => p.id === STEP)).toMatchObject({ state: 'running', result: null });
  }
  await watched(`the holder's VPSieNode deleted`, () => watch.deletes(ng).length > 0);
  expect(watch.deletes(ng)).toHaveLength(1);
  const present = await e.t.listVNs(ng);
  expect(present.filter((v) => v.metadata.deletionTimestamp).length).toBeLessThanOrEqual(1);
  expect(present.filter((v) => !v.metadata.deletionTimestamp)).toHaveLength(2);

  await e.t.sim.stallNodeGroup(ng, false);
  const reports = await Promise.all(handles.map((h) => e.result(h)));
  expect(reports.map((r) => r.outcome)).toEqual(['Remediated', 'Remediated', 'Remediated']);
  for (const r of reports) expect(stepStates(r).slice(-RECREATED_AT_ONCE.length)).toEqual(RECREATED_AT_ONCE);

  // The apiserver's order: delete, its replacement Ready, then the next delete, and so on; nothing overlaps
  const spans = await watched('every replacement Ready', () => {
    const all = reports.map((r) => ({
      deleted: watch.deletedAt(deletedBy(r)),
      ready: watch.readyAt(r.replacement!.uid),
    }));
    return all.every((x) => x.deleted >= 0 && x.ready >= 0) && all.sort((x, y) => x.deleted - y.deleted);
  });
  expect(spans.every((x) => x.deleted < x.ready)).toBe(true);
  expect(spans[0].ready).toBeLessThan(spans[1].deleted);
  expect(spans[1].ready).toBeLessThan(spans[2].deleted);
  // only the three failed VPSieNodes were deleted, each once
  expect(watch.deletes(ng).sort()).toEqual(vns.map((v) => v.metadata.uid).sort());

  // The lease's record agrees: three grants, one after another, each released by its run
  const lease = await leaseWhen(ng, 'three releases', (s) => s.counters.releases === 3);
  expect(lease.counters).toMatchObject({ grants: 3, releases: 3, expirations: 0, stormRefusals: 0 });
  const held = holdings(lease);
  expect(held.map((x) => x.how)).toEqual(['released', 'released', 'released']);
  expect(held.map((x) => x.workflowId).sort()).toEqual(handles.map((h) => h.workflowId).sort());
  expect(held[0].endedAt <= held[1].since && held[1].endedAt <= held[2].since).toBe(true);
});

test('a storm: four VPSieNodes of one NodeGroup fail; every run ends Escalated naming the storm without anyone deciding; one of them pages; nothing is deleted', async () => {
  const { ng, vns } = await groups.storm;
  const since = e.mark();
  sink.clear(); // the other tests' runs have ended: what follows is this test's
  // Nobody approves or rejects anything: the storm alone ends every run. The run whose report makes the fourth
  // failure learns it before it asks for approval; the runs already waiting for a person are told and stop.
  const handles = await Promise.all(vns.map((vn) => e.alert(vn.metadata.name)));
  const reports = await Promise.all(handles.map((h) => e.result(h)));
  for (const r of reports) {
    expect(r.outcome).toBe('Escalated');
    expect(r.escalation).toMatchObject({ kind: 'storm', step: STEP });
    expect(r.escalation!.reason).toContain(`NodeGroup ${e.t.ns}/${ng}`);
    expect(r.escalation!.reason).toContain('4 VPSieNodes');
    expect(r.plan?.find((s) => s.id === STEP)).toMatchObject({
      state: 'skipped',
      result: 'not done: NodeGroup storm',
    });
    expect(r.decisions).toEqual([]);
  }
  for (const [i, vn] of vns.entries()) {
    const escalated = (await e.t.events(vn.metadata.name)).filter(
      (ev) =>
        ev.reason === ESCALATION_EVENT_REASON &&
        ev.metadata.annotations?.['vpsie-runbook/workflow-id'] === handles[i].workflowId,
    );
    expect(escalated).toHaveLength(1);
    expect(escalated[0].message).toContain(`NodeGroup ${e.t.ns}/${ng}`);
  }

  // escalated once for the group: one run's escalation may page, every other one records the Event only
  const contexts = await Promise.all(
    handles.map(async (h) => (await escalateContexts(h)).map((c) => c.notify)),
  );
  expect(contexts.every((c) => c.length === 1)).toBe(true);
  const paging = handles.filter((_, i) => contexts[i][0] !== false);
  expect(paging).toHaveLength(1);
  expect(contexts.flat().filter((n) => n === false)).toHaveLength(3);
  // recorded where kubectl shows it on each VPSieNode; sent to the channels by the paging run only
  for (const [i, r] of reports.entries())
    expect(r.escalation!.record?.channels.map((c) => [c.channel, c.ok])).toEqual(
      handles[i] === paging[0]
        ? [
            ['kubernetes-event', true],
            ['pagerduty', true],
            ['slack', true],
            ['webhook', true],
          ]
        : [['kubernetes-event', true]],
    );
  // ... which is what the services received: one incident, one message, one document, all for the group
  const bodies = (service: 'pagerduty' | 'slack' | 'webhook') =>
    sink.of(service).map((r) => r.body as Record<string, unknown>);
  const triggers = bodies('pagerduty').filter((b) => b.event_action === 'trigger');
  expect(triggers.map((b) => b.dedup_key)).toEqual([paging[0].workflowId]);
  expect([...sink.incidents.values()]).toEqual([
    expect.objectContaining({ dedupKey: paging[0].workflowId, status: 'triggered', triggers: 1 }),
  ]);
  expect(String((triggers[0].payload as { summary: string }).summary)).toContain(`NodeGroup ${e.t.ns}/${ng}`);
  expect(bodies('slack')).toHaveLength(1);
  const documents = bodies('webhook').filter((b) => b.type === 'vpsie-runbook.escalation');
  expect(documents.map((d) => [d.workflowId, d.kind])).toEqual([[paging[0].workflowId, 'storm']]);
  // approvals announced (on the webhook) only by runs that asked before the storm began, at most once each
  const announced = bodies('webhook')
    .filter((b) => b.type === 'vpsie-runbook.approval-pending')
    .map((b) => b.workflowId);
  expect(announced).not.toContain(paging[0].workflowId);
  expect(new Set(announced).size).toBe(announced.length);

  // for the replay tests: the run that paged, and one told of the storm by the lease
  await recordHistory(paging[0].workflowId, (await paging[0].describe()).runId, 'whole-storm-first.json');
  const told = handles.find((h) => h !== paging[0])!;
  await recordHistory(told.workflowId, (await told.describe()).runId, 'whole-storm-told.json');
  // the paging run is the one whose failure made the storm: it never asked anyone to approve a delete
  expect(await scheduled(paging[0], 'announceApproval')).toBe(0);
  // the others asked at most once each, before the storm began
  for (const h of handles) expect(await scheduled(h, 'announceApproval')).toBeLessThanOrEqual(1);

  const lease = await leaseWhen(ng, 'four failures counted', (s) => s.failures.length === 4);
  expect(lease.storm).toMatchObject({ active: true, count: 4, threshold: 3, window: '15m', escalated: true });
  expect(lease.storm.first?.workflowId).toBe(paging[0].workflowId);
  // every run that reported was told of the storm, the paging one as `first`
  expect(lease.storm.told.map((x) => [x.workflowId, x.first]).sort()).toEqual(
    handles.map((h) => [h.workflowId, h === paging[0]]).sort(),
  );
  expect(lease.counters).toMatchObject({ requests: 0, grants: 0, stormRefusals: 0 });
  expect(lease.holders).toEqual([]);
  expect(lease.failures.map((f) => f.vpsieNode.uid).sort()).toEqual(vns.map((v) => v.metadata.uid).sort());

  // nothing deleted: the runs have ended, so no delete can still come from them
  expect(watch.deletes(ng)).toEqual([]);
  for (const vn of vns) {
    const now = await e.t.getVN(vn.metadata.name);
    expect(now?.metadata.uid).toBe(vn.metadata.uid);
    expect(now?.metadata.deletionTimestamp).toBeUndefined();
  }
  expect(e.productWrites(since)).toEqual([]);
});
