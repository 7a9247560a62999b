/**
 * The orphaned-VM sweep end to end (issue 8 item 4): the real Temporal server and apiserver, the product's worker
 * with its real activities, the simulated VPSie and autoscaler. Each test gets its own VPSie managed cluster and
 * an unmanaged NodeGroup naming it (the simulated controller leaves unmanaged NodeGroups alone, as upstream's
 * does), so that what a test leaves behind is not swept by the next. Machines are made in VPSie the way they
 * are left behind for real: a cluster's worker without a Node, a VM named after a VPSieNode that is gone.
 * What was and was not removed is asserted from VPSie's side (its machines, and the requests the product sent)
 * once the run has ended, so nothing can still happen.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { OrphanSweepInput, OrphanSweepStatus } from '../../src/runbook/orphans';
import { decideUpdate, rejectSignal } from '../../src/workflows/messages';
import { orphanedVmCleanup, orphanSweepStatusQuery } from '../../src/workflows/orphaned-vm-cleanup';
import * as sa from '../../src/workflows/search-attributes';
import { LABEL_SIMULATOR } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { RunbookE2E } from '../support/runbook-e2e';
import type { SimK8sNode, SimVM } from '../support/vpsie-simulator';

jest.setTimeout(180_000);

const e = new RunbookE2E('orphans');
beforeAll(() => e.start('orphans'), 120_000);
afterAll(() => e.stop());

type SweepHandle = WorkflowHandle<typeof orphanedVmCleanup>;

/** What each test made in the cluster, removed after it. */
const made = { nodeGroups: [] as string[], nodes: [] as string[], vpsieNodes: [] as string[] };
afterEach(async () => {
  for (const name of made.nodeGroups.splice(0))
    await e.t.custom.deleteNamespacedCustomObject({ ...e.t.crd('nodegroups'), name });
  for (const name of made.nodes.splice(0)) await e.t.core.deleteNode({ name });
  for (const name of made.vpsieNodes.splice(0)) {
    await e.t.deleteVN(name);
    await e.t.gone(name);
  }
  expect(e.t.sim.errors).toEqual([]);
});

const hex8 = () => randomBytes(4).toString('hex');
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

/** A VPSie managed cluster of its own, and an unmanaged NodeGroup naming it. */
async function clusterWithNodeGroup(prefix: string) {
  const ng = uniq(prefix);
  const cluster = e.t.vpsie.addK8sCluster({ name: `${ng}-cluster` });
  made.nodeGroups.push(ng);
  await e.t.sim.createNodeGroup(
    ng,
    { resourceIdentifier: cluster.identifier },
    { managed: false, desiredNodes: null },
  );
  const groupId = e.t.vpsie.k8sCluster(cluster.identifier)!.groups.find((g) => g.name === ng)!.id;
  return {
    ng,
    cluster: cluster.identifier,
    /** A worker of the cluster (not in GET /vm), named as VPSie names the machine of one of ng's VPSieNodes. */
    worker: (ageMinutes: number, hostname = `${ng}-${hex8()}-k8s-worker`): SimK8sNode =>
      e.t.vpsie.addK8sNode(cluster.identifier, { groupId, hostname, createdOn: minutesAgo(ageMinutes) }),
    /** A VM in GET /vm only, named as the machine of one of ng's VPSieNodes. */
    vm: (ageMinutes: number, hostname = `${ng}-${hex8()}`): SimVM =>
      e.t.vpsie.addVM({ name: hostname, hostname, created_on: minutesAgo(ageMinutes) }),
    exists: (m: SimK8sNode) =>
      e.t.vpsie.k8sCluster(cluster.identifier)!.nodes.some((n) => n.identifier === m.identifier),
  };
}

/** What a kubelet does when its machine joins: a Node named after the machine's hostname. */
async function registerNode(machine: SimK8sNode): Promise<void> {
  made.nodes.push(machine.hostname);
  await e.t.core.createNode({
    body: { metadata: { name: machine.hostname, labels: { [LABEL_SIMULATOR]: e.t.sim.id } } },
  });
}

/** Starts a sweep on demand, as a person does with `temporal workflow start`. */
function sweep(input: OrphanSweepInput): Promise<SweepHandle> {
  return e.ctx.client.workflow.start(orphanedVmCleanup, {
    taskQueue: e.taskQueue,
    workflowId: `orphaned-vm-cleanup/${uniq('test')}`,
    args: [input],
  });
}

/** Polls `status` until `ok`; fails naming `what` with the last status. Never a fixed sleep: it looks every 100 ms. */
async function statusWhen(
  handle: SweepHandle,
  what: string,
  ok: (s: OrphanSweepStatus) => boolean,
  timeoutMs = 90_000,
): Promise<OrphanSweepStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: OrphanSweepStatus | undefined;
  let error: unknown;
  for (;;) {
    try {
      last = await handle.query(orphanSweepStatusQuery);
      if (ok(last)) return last;
    } catch (err) {
      error = err; // a query can reach a run before its first workflow task completed
    }
    if (last?.stage === 'completed')
      throw new Error(`sweep completed before ${what}: ${JSON.stringify(last, null, 1)}`);
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last status ${JSON.stringify(last, null, 1)}; ${String(error)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pending = (handle: SweepHandle, stepId: string) =>
  statusWhen(handle, `approval of ${stepId}`, (s) => s.pendingApproval?.stepId === stepId);

const decide = (handle: SweepHandle, stepId: string, decision: 'approve' | 'reject', approver = 'alice') =>
  handle.executeUpdate(decideUpdate, { args: [{ stepId, decision, approver }] });

const ids = (vs: { machine: { identifier: string } }[]) => vs.map((v) => v.machine.identifier).sort();
const whyOf = (vs: { machine: { identifier: string }; why: string }[], identifier: string) =>
  vs.find((v) => v.machine.identifier === identifier)?.why;

describe('orphanedVmCleanup', () => {
  it('removes exactly the approved orphans older than the grace period, the way the autoscaler does, and nothing else', async () => {
    const c = await clusterWithNodeGroup('sweep');
    const workerOrphan = c.worker(120);
    const vmOrphan = c.vm(90);
    const rejectedOrphan = c.vm(60);
    const young = c.worker(1);
    const claimed = c.worker(200);
    await registerNode(claimed);
    const stranger = e.t.vpsie.addVM({ name: `database-${hex8()}`, created_on: minutesAgo(500) });
    const since = e.mark();

    const handle = await sweep({ approvers: ['alice', 'bob'] });
    // Oldest first, one approval each, showing the exact machine and the request that removes it.
    const first = await pending(handle, `terminate-${workerOrphan.identifier}`);
    expect(first.candidates.map((x) => x.machine.identifier)).toEqual([
      workerOrphan.identifier,
      vmOrphan.identifier,
      rejectedOrphan.identifier,
    ]);
    expect(first.pendingApproval!.target).toMatchObject({
      kind: 'cluster-node',
      identifier: workerOrphan.identifier,
      hostname: workerOrphan.hostname,
      resourceIdentifier: c.cluster,
      nodeGroup: { namespace: e.t.ns, name: c.ng },
      removal: `DELETE /k8s/cluster/byId/${c.cluster}/delete/slave {"identifier": "${workerOrphan.identifier}"}`,
    });
    expect(whyOf(first.kept, young.identifier)).toMatch(/younger than the grace period \(30m\)/);
    expect(whyOf(first.kept, claimed.identifier)).toMatch(
      new RegExp(`is claimed.*Node ${claimed.hostname}: its name is the hostname`),
    );
    const described = await handle.describe();
    expect(described.typedSearchAttributes.get(sa.ApprovalPending)).toBe(true);
    expect(described.typedSearchAttributes.get(sa.RunbookStage)).toBe('awaiting-approval');
    // Nothing is removed before a person approves.
    expect(e.productWrites(since)).toEqual([]);

    await decide(handle, `terminate-${workerOrphan.identifier}`, 'approve');
    const second = await pending(handle, `terminate-${vmOrphan.identifier}`);
    expect(second.removed.map((r) => [r.machine.identifier, r.result])).toEqual([
      [workerOrphan.identifier, 'removed'],
    ]);
    expect(second.pendingApproval!.target).toMatchObject({
      kind: 'vm',
      id: vmOrphan.id,
      removal: `DELETE /vm/${vmOrphan.id}`,
    });
    await decide(handle, `terminate-${vmOrphan.identifier}`, 'approve', 'bob');
    await pending(handle, `terminate-${rejectedOrphan.identifier}`);
    await decide(handle, `terminate-${rejectedOrphan.identifier}`, 'reject', 'bob');

    const report = await handle.result();
    expect(report.outcome).toBe('Removed');
    expect(report.removed.map((r) => [r.machine.identifier, r.result])).toEqual([
      [workerOrphan.identifier, 'removed'],
      [vmOrphan.identifier, 'terminated'],
    ]);
    expect(report.refused).toEqual([]);
    expect(report.failed).toEqual([]);
    expect(whyOf(report.kept, rejectedOrphan.identifier)).toBe('removal rejected by bob');
    expect(ids(report.kept)).toEqual(
      expect.arrayContaining([young.identifier, claimed.identifier, rejectedOrphan.identifier]),
    );
    expect(report.kept.map((k) => k.machine.hostname)).not.toContain(stranger.hostname);
    expect(report.decisions.filter((d) => d.accepted).map((d) => [d.stepId, d.decision, d.approver])).toEqual(
      [
        [`terminate-${workerOrphan.identifier}`, 'approve', 'alice'],
        [`terminate-${vmOrphan.identifier}`, 'approve', 'bob'],
        [`terminate-${rejectedOrphan.identifier}`, 'reject', 'bob'],
      ],
    );

    // VPSie's side: the two approved machines are gone, removed with exactly one request each; the rest are there.
    expect(e.productWrites(since)).toEqual([
      `DELETE /k8s/cluster/byId/${c.cluster}/delete/slave`,
      `DELETE /vm/${vmOrphan.id}`,
    ]);
    expect(e.machineDeletes({ identifier: workerOrphan.identifier }, since)).toEqual([
      `DELETE /k8s/cluster/byId/${c.cluster}/delete/slave by product`,
    ]);
    expect(c.exists(workerOrphan)).toBe(false);
    expect(e.t.vpsie.hasVM(vmOrphan.id)).toBe(false);
    expect(e.t.vpsie.hasVM(rejectedOrphan.id)).toBe(true);
    expect(e.t.vpsie.hasVM(stranger.id)).toBe(true);
    expect([young, claimed].map(c.exists)).toEqual([true, true]);
    const done = await handle.describe();
    expect(done.typedSearchAttributes.get(sa.RunbookOutcome)).toBe('Removed');
    expect(done.typedSearchAttributes.get(sa.ApprovalPending)).toBe(false);
  });

  it('keeps a VM that a VPSieNode claims between listing and terminating, and counts a machine already gone as removed', async () => {
    const c = await clusterWithNodeGroup('claim');
    const vanishing = c.worker(100);
    const vm = c.vm(90);
    const since = e.mark();
    const handle = await sweep({});

    // Someone removes the first machine in the console while the approval waits: 404 is done.
    await pending(handle, `terminate-${vanishing.identifier}`);
    e.t.vpsie.removeK8sNode(c.cluster, vanishing.identifier);
    await decide(handle, `terminate-${vanishing.identifier}`, 'approve');

    // The controller takes the VM for a new VPSieNode while the second approval waits.
    await pending(handle, `terminate-${vm.identifier}`);
    const claimer = uniq('claimer');
    made.vpsieNodes.push(claimer);
    await e.t.createVN(claimer, {
      vpsieInstanceID: vm.id,
      nodeGroupName: c.ng,
      resourceIdentifier: c.cluster,
      vpsieGroupID: e.t.vpsie.k8sCluster(c.cluster)!.groups[0].id,
    });
    await decide(handle, `terminate-${vm.identifier}`, 'approve');

    const report = await handle.result();
    expect(report.removed.map((r) => [r.machine.identifier, r.result])).toEqual([
      [vanishing.identifier, 'already-gone'],
    ]);
    expect(report.refused).toEqual([
      {
        machine: expect.objectContaining({ identifier: vm.identifier, id: vm.id }),
        why: expect.stringMatching(
          new RegExp(`^MachineClaimed: .*VPSieNode ${e.t.ns}/${claimer}: spec\\.vpsieInstanceID is ${vm.id}`),
        ),
      },
    ]);
    expect(report.outcome).toBe('Removed');
    expect(e.t.vpsie.hasVM(vm.id)).toBe(true);
    expect(e.machineDeletes({ identifier: vm.identifier, vmId: vm.id }, since)).toEqual([]);
    // Nothing was sent: the removal found the first machine already gone, and refused the claimed VM.
    expect(e.productWrites(since)).toEqual([]);
  });

  it('touches nothing when the removal is rejected, or nobody decides in time; asks once for all and removes all when approved', async () => {
    const c = await clusterWithNodeGroup('all');
    const worker = c.worker(45);
    const vm = c.vm(50);
    const since = e.mark();

    const dry = await (await sweep({ dryRun: true })).result();
    expect(dry.outcome).toBe('DryRun');
    expect(ids(dry.candidates)).toEqual([worker.identifier, vm.identifier].sort());
    expect(dry.decisions).toEqual([]);

    const rejected = await sweep({ mode: 'all' });
    const asked = await pending(rejected, 'terminate-all');
    expect((asked.pendingApproval!.target as { identifier: string }[]).map((m) => m.identifier)).toEqual([
      vm.identifier,
      worker.identifier,
    ]);
    await rejected.signal(rejectSignal, { stepId: 'terminate-all', approver: 'carol', reason: 'not today' });
    const r = await rejected.result();
    expect(r.outcome).toBe('Rejected');
    expect([whyOf(r.kept, worker.identifier), whyOf(r.kept, vm.identifier)]).toEqual([
      'removal rejected by carol: not today',
      'removal rejected by carol: not today',
    ]);

    const expired = await (await sweep({ mode: 'all', approvalTtl: '10s' })).result();
    expect(expired.outcome).toBe('ApprovalExpired');
    expect(whyOf(expired.kept, vm.identifier)).toBe('nobody approved terminate-all within 10s');
    expect(e.productWrites(since)).toEqual([]);
    expect([c.exists(worker), e.t.vpsie.hasVM(vm.id)]).toEqual([true, true]);

    const approved = await sweep({ mode: 'all' });
    await pending(approved, 'terminate-all');
    await decide(approved, 'terminate-all', 'approve');
    const a = await approved.result();
    expect(a.outcome).toBe('Removed');
    expect(ids(a.removed)).toEqual([worker.identifier, vm.identifier].sort());
    expect(e.productWrites(since).sort()).toEqual(
      [`DELETE /k8s/cluster/byId/${c.cluster}/delete/slave`, `DELETE /vm/${vm.id}`].sort(),
    );
    expect([c.exists(worker), e.t.vpsie.hasVM(vm.id)]).toEqual([false, false]);
  });

  it('fails at once on bad input, naming the field', async () => {
    const handle = await sweep({ grace: '1m' });
    const err = await handle.result().then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('InvalidInput');
    expect(cause!.message).toMatch(/input\.grace must be between 15m and 30 days, got "1m"/);
  });
});
