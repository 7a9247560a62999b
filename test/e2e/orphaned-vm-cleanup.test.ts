/**
 * The orphaned-VM sweep end to end (issue 8 item 4): the real Temporal server and apiserver, the product's worker
 * with its real activities, the simulated VPSie and autoscaler. Each test gets its own VPSie managed cluster and
 * an unmanaged NodeGroup naming it (the simulated controller leaves unmanaged NodeGroups alone, as upstream's
 * does), so that what a test leaves behind is not swept by the next. Machines are made in VPSie the way they
 * are left behind for real: a cluster's worker without a Node, a VM named after a VPSieNode that is gone.
 * What was and was not removed is asserted from VPSie's side (its machines, and the requests the product sent)
 * once the run has ended, so nothing can still happen.
 *
 * The worker's approval channels point at the local sink that plays Slack, a webhook and PagerDuty
 * (test/support/escalation-sink.ts): every sweep announces its pending approvals there, and every payload any
 * sweep sent must pass the sink's checks of each service's documented shape.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { OrphanSweepInput, OrphanSweepStatus } from '../../src/runbook/orphans';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { decideUpdate, rejectSignal } from '../../src/workflows/messages';
import { orphanedVmCleanup, orphanSweepStatusQuery } from '../../src/workflows/orphaned-vm-cleanup';
import * as sa from '../../src/workflows/search-attributes';
import { LABEL_SIMULATOR } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { EscalationSink, type SinkRequest, type SinkService } from '../support/escalation-sink';
import { RunbookE2E } from '../support/runbook-e2e';
import { temporalAddress } from '../support/temporal';
import type { SimK8sNode, SimVM } from '../support/vpsie-simulator';

jest.setTimeout(180_000);

const e = new RunbookE2E('orphans');
const sink = new EscalationSink();
let secretsDir = '';
beforeAll(async () => {
  await sink.start();
  secretsDir = await mkdtemp(join(tmpdir(), 'e2e-orphans-'));
  // A sweep never escalates; its approvals go to every channel, PagerDuty included, to see each one's shape.
  const channels = await sink.channelsConfig(
    secretsDir,
    { 'vpsie-support': ['pagerduty'], 'platform-team': ['slack', 'webhook'] },
    ['slack', 'webhook', 'pagerduty'],
  );
  await e.start('orphans', {}, channels);
}, 120_000);
afterAll(async () => {
  await e.stop();
  await sink.stop();
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
});

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
  // every announcement any sweep sent passed the sink's checks, and went to a URL the sink knows
  expect(sink.requests.filter((r) => r.service === 'unknown' || r.problems.length > 0)).toEqual([]);
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

/** What `service` received about the sweep `wf` (Slack's messages name the workflow in a code span). */
function sent(service: SinkService, wf: string): SinkRequest[] {
  return sink.of(service).filter((r) => {
    const b = r.body as { workflowId?: unknown; dedup_key?: unknown } | undefined;
    if (service === 'webhook') return b?.workflowId === wf;
    if (service === 'pagerduty') return String(b?.dedup_key ?? '').startsWith(`${wf}/approval/`);
    return JSON.stringify(b ?? null).includes(`\`${wf}\``);
  });
}

/** Waits until `service` has received `count` requests about the sweep `wf`. */
const waitSent = (service: SinkService, wf: string, count: number) =>
  e.t.waitFor(
    `${count} ${service} request(s) about ${wf}`,
    async () => {
      const rs = sent(service, wf);
      return rs.length >= count ? rs : undefined;
    },
    60_000,
  );

/** Slack's mrkdwn escaping, to find a text in a message as Slack shows it. */
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Every text of a Slack message: its notification text and its blocks' texts. */
function slackTexts(r: SinkRequest): string {
  const m = r.body as {
    text: string;
    blocks?: { text?: { text: string }; fields?: { text: string }[]; elements?: { text: string }[] }[];
  };
  return [
    m.text,
    ...(m.blocks ?? []).flatMap((b) => [
      b.text?.text ?? '',
      ...(b.fields ?? []).map((f) => f.text),
      ...(b.elements ?? []).map((x) => x.text),
    ]),
  ].join('\n');
}

/** What the on-call person pastes from an announcement, with their name: the Temporal CLI, against this server. */
async function runAnnounced(command: string, who: string): Promise<void> {
  const cli = await findTemporalCli();
  expect(cli).toBeTruthy();
  await promisify(execFile)('bash', [
    '-c',
    `${command.replace('<you>', who).replace(/^temporal /, `'${cli}' `)} --address ${temporalAddress()}`,
  ]);
}

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

  it('announces each pending approval on Slack, the webhook and PagerDuty with the exact machine, expiry and command; the announced commands approve and reject', async () => {
    const c = await clusterWithNodeGroup('told');
    const vm = c.vm(90);
    const worker = c.worker(60);
    const since = e.mark();
    const handle = await sweep({ approvers: ['dave'] });
    const wf = handle.workflowId;
    const command = (stepId: string, decision: 'approve' | 'reject') =>
      `temporal workflow update execute --workflow-id ${wf} --name decide --input '{"stepId": "${stepId}", "decision": "${decision}", "approver": "<you>"}'`;

    // The oldest first: announced as `status.pendingApproval` shows it, about no VPSieNode.
    const first = (await pending(handle, `terminate-${vm.identifier}`)).pendingApproval!;
    expect(first.target).toMatchObject({ kind: 'vm', id: vm.id, removal: `DELETE /vm/${vm.id}` });
    const [hook] = await waitSent('webhook', wf, 1);
    expect(hook.body).toEqual({
      type: 'vpsie-runbook.approval-pending',
      version: 1,
      sentAt: expect.any(String),
      workflowId: wf,
      vpsieNode: null,
      approval: {
        stepId: `terminate-${vm.identifier}`,
        kind: 'terminate-machine',
        target: first.target,
        targetDescription: `VM ${vm.id} ${vm.hostname} (identifier ${vm.identifier})`,
        action: first.action,
        expiresAt: first.expiresAt,
        approvers: ['dave'],
        approveCommand: command(`terminate-${vm.identifier}`, 'approve'),
        rejectCommand: command(`terminate-${vm.identifier}`, 'reject'),
      },
    });
    const [slack] = await waitSent('slack', wf, 1);
    expect((slack.body as { text: string }).text).toBe(
      mrkdwn(
        `Approval needed before terminate-${vm.identifier} in the orphaned-VM sweep: ${first.action}. Expires ${first.expiresAt}.`,
      ),
    );
    const text = slackTexts(slack);
    expect(text).toContain(mrkdwn(JSON.stringify(first.target, null, 2)));
    expect(text).toContain(mrkdwn(command(`terminate-${vm.identifier}`, 'approve')));
    expect(text).toContain('*Who may approve*\ndave');
    const [page] = await waitSent('pagerduty', wf, 1);
    expect(page.body).toMatchObject({
      event_action: 'trigger',
      dedup_key: `${wf}/approval/terminate-${vm.identifier}`,
      payload: { source: 'vpsie-runbook/orphaned-vm-cleanup', severity: 'warning', class: 'approval' },
    });
    // Announcing removed nothing: only the person's decision does.
    expect(e.productWrites(since)).toEqual([]);

    // The announced approve command, as pasted: the sweep takes it and removes exactly that machine.
    await runAnnounced(
      (hook.body as { approval: { approveCommand: string } }).approval.approveCommand,
      'dave',
    );
    const second = (await pending(handle, `terminate-${worker.identifier}`)).pendingApproval!;
    const [, hook2] = await waitSent('webhook', wf, 2);
    expect((hook2.body as { approval: unknown }).approval).toMatchObject({
      stepId: `terminate-${worker.identifier}`,
      target: second.target,
      targetDescription: `cluster node ${worker.hostname} of VPSie cluster ${c.cluster} (identifier ${worker.identifier})`,
      expiresAt: second.expiresAt,
    });
    await waitSent('slack', wf, 2);
    await waitSent('pagerduty', wf, 2);
    await runAnnounced(
      (hook2.body as { approval: { rejectCommand: string } }).approval.rejectCommand,
      'dave',
    );

    const report = await handle.result();
    expect(report.outcome).toBe('Removed');
    expect(report.removed.map((r) => [r.machine.identifier, r.result])).toEqual([
      [vm.identifier, 'terminated'],
    ]);
    expect(whyOf(report.kept, worker.identifier)).toBe('removal rejected by dave');
    expect(report.decisions.map((d) => [d.stepId, d.decision, d.approver, d.via, d.accepted])).toEqual([
      [`terminate-${vm.identifier}`, 'approve', 'dave', 'update', true],
      [`terminate-${worker.identifier}`, 'reject', 'dave', 'update', true],
    ]);
    expect(e.productWrites(since)).toEqual([`DELETE /vm/${vm.id}`]);
    expect([e.t.vpsie.hasVM(vm.id), c.exists(worker)]).toEqual([false, true]);
    // One announcement per approval and channel: Slack, the webhook and PagerDuty each heard of both, once.
    expect(
      sent('webhook', wf).map((r) => (r.body as { approval: { stepId: string } }).approval.stepId),
    ).toEqual([`terminate-${vm.identifier}`, `terminate-${worker.identifier}`]);
    expect(sent('slack', wf)).toHaveLength(2);
    expect(sent('pagerduty', wf).map((r) => (r.body as { dedup_key: string }).dedup_key)).toEqual([
      `${wf}/approval/terminate-${vm.identifier}`,
      `${wf}/approval/terminate-${worker.identifier}`,
    ]);
  });

  it('takes a decision that ends the sweep while its announcement is still on its way, and ends once the announcement is out', async () => {
    const c = await clusterWithNodeGroup('late');
    const vm = c.vm(60);
    const since = e.mark();
    // The webhook holds the announcement's first attempt open (the channel gives up after 5 s; Temporal retries).
    sink.fail('webhook', { hang: true });
    const handle = await sweep({ mode: 'all' });
    const wf = handle.workflowId;
    await pending(handle, 'terminate-all');
    await waitSent('webhook', wf, 1);

    const record = await decide(handle, 'terminate-all', 'reject', 'erin');
    expect(record).toMatchObject({
      stepId: 'terminate-all',
      decision: 'reject',
      approver: 'erin',
      accepted: true,
    });
    const report = await handle.result();
    expect(report.outcome).toBe('Rejected');
    expect(whyOf(report.kept, vm.identifier)).toBe('removal rejected by erin');
    // By the time the sweep ended, the retry had delivered the announcement, once.
    expect(sent('webhook', wf).map((r) => [r.answer, r.injected])).toEqual([
      ['hang', true],
      [202, false],
    ]);
    expect(sent('slack', wf)).toHaveLength(1);
    expect(e.productWrites(since)).toEqual([]);
    expect(e.t.vpsie.hasVM(vm.id)).toBe(true);
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
