/**
 * Issue 9 item 1: the alert receiver, running, fed real Alertmanager webhook payloads over HTTP, against the
 * real Temporal dev server (runs checked there: describe, memo, static summary and details, history) with the
 * product's worker and the simulated autoscaler and VPSie (test/support/runbook-e2e.ts).
 *
 * The simulated controller gives nodes 10 minutes to provision or join, the runs 2 s to provision and 10 minutes
 * to join: a VPSieNode stuck in Provisioning is past the runs' limit while the controller still waits (the
 * NodeGroup fan-out picks it), one in Joining is within it (the fan-out leaves it, and its run stays open).
 *
 * The storm tests give a receiver of their own a TCP link to the server that they can hold or cut, to show what
 * needs Temporal and what does not (repeats, answered from the receiver's record).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { runsStarted } from '../../src/metrics';
import { startReceiver, type IntakeAnswer, type ReceiverServer } from '../../src/receiver';
import { workflowIdFor, type RunbookInput, type RunbookOptions } from '../../src/runbook';
import { ORIGIN_MEMO_KEY, startRunbook } from '../../src/temporal/start-runbook';
import { freePort } from '../../src/temporal/free-port';
import { uniq } from '../support/cluster/test-helpers';
import type { VPSieNodeObj } from '../support/cluster';
import { kubeConfigFor } from '../support/kube';
import { FAST_OPTIONS, RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';
import { secret } from '../support/secrets';
import { temporalAddress, uniqueTaskQueue } from '../support/temporal';

jest.setTimeout(90_000);

const e = new RunbookE2E('receiver');
const TOKEN = secret('receiver-token');
const MAX_BODY = 16 * 1024;
const RUN_OPTIONS: RunbookOptions = { ...FAST_OPTIONS, provisioningLimit: '2s', joiningLimit: '10m' };
let dir = '';
let receiver: ReceiverServer;
/** A second receiver whose Temporal is a port nobody listens on. */
let down: ReceiverServer;
let downConnection: Connection;
/**
 * A receiver that keeps no record of the firings it answered, as one restarted (or another replica) has none:
 * it finds a firing's closed run on the server (the run's memo, visibility).
 */
let fresh: ReceiverServer;

beforeAll(async () => {
  await e.start('receiver', {
    timings: { provisioningTimeoutMs: 10 * 60_000, joiningTimeoutMs: 10 * 60_000 },
  });
  dir = await mkdtemp(join(tmpdir(), 'receiver-'));
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  receiver = await startReceiver({
    connection: e.ctx.connection,
    taskQueue: e.taskQueue,
    kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
    host: '127.0.0.1',
    port: 0,
    token: { variable: 'RECEIVER_TOKEN_FILE', file: join(dir, 'token') },
    maxBodyBytes: MAX_BODY,
    runOptions: RUN_OPTIONS,
  });
  downConnection = Connection.lazy({ address: `127.0.0.1:${await freePort()}` });
  down = await startReceiver({
    connection: downConnection,
    taskQueue: e.taskQueue,
    kubernetes: null,
    host: '127.0.0.1',
    port: 0,
    temporalTimeoutMs: 1_500,
  });
  fresh = await startReceiver({
    connection: e.ctx.connection,
    taskQueue: e.taskQueue,
    kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
    host: '127.0.0.1',
    port: 0,
    runOptions: RUN_OPTIONS,
    handled: { maxEntries: 0 },
  });
});

afterAll(async () => {
  await receiver?.close();
  await down?.close();
  await downConnection?.close();
  await fresh?.close();
  await e.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------------
// Alertmanager's side

/** Alertmanager's fingerprint: a hash of the label set (here sha256; Alertmanager's is FNV-64, also 16 hex). */
const fingerprintOf = (labels: Record<string, string>) =>
  createHash('sha256')
    .update(
      Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`)
        .join(','),
    )
    .digest('hex')
    .slice(0, 16);

interface AlertSpec {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  status?: 'firing' | 'resolved';
  startsAt?: string;
  endsAt?: string;
}

/** One alert as Alertmanager's webhook carries it. */
function amAlert(a: AlertSpec) {
  const status = a.status ?? 'firing';
  return {
    status,
    labels: a.labels,
    annotations: a.annotations ?? {
      summary: `${a.labels.alertname} for ${a.labels.vpsienode ?? a.labels.nodegroup ?? 'something'}`,
      runbook_url: 'https://runbooks.example.com/vpsie/provisioning-failed',
    },
    startsAt: a.startsAt ?? '2025-05-01T10:00:00.123456789Z',
    endsAt: a.endsAt ?? (status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z'),
    generatorURL: 'http://prometheus:9090/graph?g0.expr=kube_customresource_vpsienode_phase',
    fingerprint: fingerprintOf(a.labels),
  };
}

/** A whole notification (payload version 4) for `alerts`. */
function notification(alerts: AlertSpec[]) {
  const list = alerts.map(amAlert);
  return {
    receiver: 'vpsie-runbook',
    status: list.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: list,
    groupLabels: { alertname: alerts[0]?.labels.alertname ?? '' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: `{}/{}:{alertname="${alerts[0]?.labels.alertname ?? ''}"}`,
    truncatedAlerts: 0,
  };
}

interface Posted {
  status: number;
  body: IntakeAnswer['body'] & { message: string };
  headers: Headers;
}

async function post(
  body: unknown,
  opts: { to?: ReceiverServer; token?: string | null; contentType?: string; raw?: string } = {},
): Promise<Posted> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${(opts.to ?? receiver).url}/webhooks/alertmanager`, {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/json',
      ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
    },
    body: opts.raw ?? JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Posted['body'], headers: res.headers };
}

const perNode = (alertname: string, vpsienode: string, extra: Record<string, string> = {}) => ({
  alertname,
  namespace: e.t.ns,
  vpsienode,
  ...extra,
});

// ---------------------------------------------------------------------------------------------------------------
// Temporal's side

const handleOf = (name: string) =>
  e.ctx.client.workflow.getHandle(workflowIdFor({ namespace: e.t.ns, name }));

/** The latest run of the VPSieNode's workflow id, or null when it never had one. */
async function latestRun(name: string) {
  try {
    return await handleOf(name).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return null;
    throw err;
  }
}

/** The input a run was started with (its first event). */
async function inputOf(name: string, runId: string): Promise<RunbookInput> {
  const history = await e.ctx.client.workflow
    .getHandle(workflowIdFor({ namespace: e.t.ns, name }), runId)
    .fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return defaultPayloadConverter.fromPayload(payload!);
}

/**
 * Waits until Temporal's visibility lists `runIds` for `query`: the receiver looks up older closed runs and a
 * NodeGroup's open runs there, and visibility follows the runs a moment later.
 */
async function visible(query: string, runIds: string[]): Promise<void> {
  await e.t.waitFor(`visibility to list ${runIds.join(', ')} for ${query}`, async () => {
    const listed = new Set<string>();
    for await (const run of e.ctx.client.workflow.list({ query })) listed.add(run.runId);
    return runIds.every((id) => listed.has(id));
  });
}

const runsOf = (answer: Posted) => answer.body.alerts.flatMap((a) => a.runs ?? []);
/** The `why` of an answer the receiver gave from its record of answered firings, without asking Temporal. */
const RECORDED =
  /^a repeat of this firing, which (started|joined) run \S+ at \S+ \(answered from this receiver's record\)$/;
const startedCount = (result: 'started' | 'joined') =>
  runsStarted
    .get()
    .then(
      (m) =>
        m.values.find((v) => v.labels.source === 'alertmanager' && v.labels.result === result)?.value ?? 0,
    );

// ---------------------------------------------------------------------------------------------------------------
// VPSieNodes, staged as each test needs them

/** A VPSieNode of `nodeGroup` (by label, as the NodeGroup controller makes them) with `scenario`. */
async function node(
  prefix: string,
  scenario: Parameters<typeof e.t.sim.stage>[1],
  nodeGroup: string,
  phase: string,
): Promise<VPSieNodeObj> {
  const name = uniq(prefix);
  if (scenario !== 'healthy') await e.t.sim.stage(name, scenario, { answer: 'sync' });
  await e.t.createVN(
    name,
    { nodeGroupName: nodeGroup },
    { labels: { 'autoscaler.vpsie.com/nodegroup': nodeGroup, 'autoscaler.vpsie.com/managed': 'true' } },
  );
  return e.t.phase(name, phase, 30_000);
}

// ---------------------------------------------------------------------------------------------------------------

describe('an alert for one VPSieNode', () => {
  test('starts one run however often it comes, joins it while it is open, and the run carries the alert', async () => {
    const vn = await node('joining', 'never-registers', 'ng-j', 'Joining');
    const labels = perNode('VPSieNodeProvisioningTimeout', vn.metadata.name, {
      nodegroup: 'ng-j',
      severity: 'warning',
    });
    const payload = notification([{ labels }]);
    const [started0, joined0] = [await startedCount('started'), await startedCount('joined')];

    // Alertmanager's repeats, two of them at once (two Alertmanagers of an HA pair), then one more
    const answers = await Promise.all([post(payload), post(payload)]);
    answers.push(await post(payload));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.status).toBe('ok');
    }
    const runs = answers.flatMap(runsOf);
    expect(runs.map((r) => r.action).sort()).toEqual(['joined', 'joined', 'started']);
    const runIds = new Set(runs.map((r) => r.runId));
    expect(runIds.size).toBe(1);
    expect(runs[0]).toMatchObject({
      vpsieNode: `${e.t.ns}/${vn.metadata.name}`,
      workflowId: workflowIdFor({ namespace: e.t.ns, name: vn.metadata.name }),
    });
    expect(await startedCount('started')).toBe(started0 + 1);
    expect(await startedCount('joined')).toBe(joined0 + 2);

    // on the server: that one run, open, with the alert as its origin and in the UI's summary and details
    const d = (await latestRun(vn.metadata.name))!;
    expect(d.runId).toBe([...runIds][0]);
    expect(d.status.name).toBe('RUNNING');
    expect(d.memo?.[ORIGIN_MEMO_KEY]).toEqual({
      source: 'alertmanager',
      alertName: 'VPSieNodeProvisioningTimeout',
      nodeGroup: 'ng-j',
      labels,
      annotations: payload.alerts[0].annotations,
      fingerprint: payload.alerts[0].fingerprint,
      startsAt: payload.alerts[0].startsAt,
    });
    expect(await d.staticSummary()).toBe(
      `VPSieNode ${e.t.ns}/${vn.metadata.name}, NodeGroup ng-j, alert VPSieNodeProvisioningTimeout`,
    );
    const details = (await d.staticDetails())!;
    expect(details).toContain(`- \`vpsienode\`: ${vn.metadata.name}`);
    expect(details).toContain('- `severity`: warning');
    expect(details).toContain('- `summary`: VPSieNodeProvisioningTimeout for');
    expect(details).toContain('Runbook: https://runbooks.example.com/vpsie/provisioning-failed');
    expect(details).toContain(`firing since ${payload.alerts[0].startsAt}`);
    // the alert's severity becomes the run's, with the receiver's options
    expect((await inputOf(vn.metadata.name, d.runId)).options).toEqual({
      ...RUN_OPTIONS,
      severity: 'warning',
    });
    // the worker runs it: waiting for the controller, which still has 10 minutes to join the node
    const h = handleOf(vn.metadata.name) as RunbookHandle;
    await e.statusWhen(h, 'waiting for the controller', (s) => s.stage === 'waiting-for-controller');

    // resolved: the run notes it and goes on; once the node joins after all, it ends Recovered
    const endsAt = '2025-05-01T10:42:00.5Z';
    const resolved = await post(notification([{ labels, status: 'resolved', endsAt }]));
    expect(resolved.status).toBe(200);
    expect(runsOf(resolved)).toEqual([
      expect.objectContaining({ action: 'signalled', vpsieNode: `${e.t.ns}/${vn.metadata.name}` }),
    ]);
    const noted = await e.statusWhen(h, 'the resolved alert noted', (s) => s.alertResolvedAt === endsAt);
    expect(noted.alertResolved).toEqual({
      alertName: 'VPSieNodeProvisioningTimeout',
      fingerprint: payload.alerts[0].fingerprint,
      startsAt: payload.alerts[0].startsAt,
      endsAt,
    });
    expect(noted.stage).toBe('waiting-for-controller');
    await e.t.sim.stage(vn.metadata.name, 'healthy');
    expect((await e.result(h)).outcome).toBe('Recovered');
    expect((await e.status(h)).alertResolvedAt).toBe(endsAt);
    // the node's run has closed: a resolved alert now finds no run, and starts none
    const late = await post(notification([{ labels, status: 'resolved', endsAt }]));
    expect(runsOf(late)).toEqual([expect.objectContaining({ action: 'no-open-run' })]);
    expect((await latestRun(vn.metadata.name))?.runId).toBe(d.runId);
  });

  test('resolved while a remediation waits for approval: noted, and the approved remediation goes on', async () => {
    const ng = uniq('ng-rem');
    await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
    await e.t.sim.createNodeGroup(ng);
    const vn = await e.t.waitFor(`the VPSieNode of ${ng}`, async () => {
      const vns = await e.t.listVNs(ng);
      return vns.length === 1 && vns[0].status?.phase === 'Provisioning' ? vns[0] : undefined;
    });
    const labels = perNode('VPSieNodeProvisioningTimeout', vn.metadata.name, { nodegroup: ng });
    expect(runsOf(await post(notification([{ labels }]))).map((r) => r.action)).toEqual(['started']);
    const h = handleOf(vn.metadata.name) as RunbookHandle;
    await e.pending(h, 'delete-vpsienode');

    const endsAt = '2025-05-01T10:20:00Z';
    const resolved = await post(notification([{ labels, status: 'resolved', endsAt }]));
    expect(runsOf(resolved).map((r) => r.action)).toEqual(['signalled']);
    const s = await e.statusWhen(h, 'the resolved alert noted', (x) => x.alertResolvedAt === endsAt);
    expect([s.stage, s.pendingApproval?.stepId]).toEqual(['awaiting-approval', 'delete-vpsienode']);
    // the person still decides, and the remediation runs to its end
    await e.decide(h, 'delete-vpsienode', 'approve');
    expect((await e.result(h)).outcome).toBe('Remediated');
    expect((await e.status(h)).alertResolvedAt).toBe(endsAt);
  });

  test("a closed run's repeats start nothing; a new firing starts a new run", async () => {
    const vn = await node('failed', 'capacity-limit', 'ng-c', 'Failed');
    const name = vn.metadata.name;
    const labels = perNode('VPSieNodeProvisioningFailed', name, { nodegroup: 'ng-c', severity: 'critical' });
    const first = await post(notification([{ labels }]));
    expect(runsOf(first)).toEqual([expect.objectContaining({ action: 'started' })]);
    const firstRun = runsOf(first)[0].runId!;
    const h = handleOf(name) as RunbookHandle;
    // Worker nodes count exceeds the allowed limit: nothing to fix here, the run hands it to people and closes
    expect((await e.result(h)).outcome).toBe('Escalated');

    // Alertmanager repeats the alert, which still fires: nothing new. This receiver answers from its record...
    const repeat = await post(notification([{ labels }]));
    expect(repeat.status).toBe(200);
    expect(runsOf(repeat)).toEqual([
      expect.objectContaining({ action: 'joined', runId: firstRun, why: expect.stringMatching(RECORDED) }),
    ]);
    // ...and one without that record (restarted, another replica) finds this firing's closed run on the server
    const elsewhere = await post(notification([{ labels }]), { to: fresh, token: null });
    expect(elsewhere.status).toBe(200);
    expect(runsOf(elsewhere)).toEqual([
      expect.objectContaining({
        action: 'repeat',
        runId: firstRun,
        why: expect.stringContaining('ended COMPLETED'),
      }),
    ]);
    expect((await latestRun(name))?.runId).toBe(firstRun);

    // it resolved and fires again: a new firing, a new run
    const again = await post(notification([{ labels, startsAt: '2025-05-01T12:00:00Z' }]));
    expect(runsOf(again)).toEqual([expect.objectContaining({ action: 'started' })]);
    const secondRun = runsOf(again)[0].runId!;
    expect(secondRun).not.toBe(firstRun);
    expect((await latestRun(name))?.runId).toBe(secondRun);
    expect((await inputOf(name, secondRun)).options?.severity).toBe('critical');
    expect((await e.result(h)).outcome).toBe('Escalated');
  });
});

describe('an alert for a NodeGroup', () => {
  test('reaches exactly its VPSieNodes that are Failed or past the limit, once however often it comes', async () => {
    const ng = uniq('ng');
    const failed = await node('f', 'capacity-limit', ng, 'Failed');
    const stuck = await node('s', 'stuck-provisioning', ng, 'Provisioning');
    const joining = await node('j', 'never-registers', ng, 'Joining');
    const ready = await node('r', 'healthy', ng, 'Ready');
    const otherGroup = await node('o', 'capacity-limit', uniq('other'), 'Failed');
    // the runs' provisioning limit (2 s) has passed for the stuck one; the controller's 10 minutes have not
    await e.t.waitFor('the stuck node past 2 s', async () => {
      const vn = await e.t.getVN(stuck.metadata.name);
      const since = Date.parse(vn?.status?.createdAt ?? vn?.metadata.creationTimestamp ?? '');
      return vn?.status?.phase === 'Provisioning' && Date.now() - since > 2_500;
    });

    // the autoscaler's own rule: namespace and nodegroup only
    const labels = {
      alertname: 'NodeProvisioningFailed',
      namespace: e.t.ns,
      nodegroup: ng,
      severity: 'page',
    };
    const payload = notification([{ labels }]);
    const answer = await post(payload);
    expect(answer.status).toBe(200);
    const [a] = answer.body.alerts;
    expect(a.result).toBe('handled');
    expect(a.runs?.map((r) => [r.vpsieNode, r.action])).toEqual(
      [failed, stuck].map((vn) => [`${e.t.ns}/${vn.metadata.name}`, 'started']).sort(),
    );
    expect(a.skipped?.map((s) => s.vpsieNode).sort()).toEqual(
      [joining, ready].map((vn) => `${e.t.ns}/${vn.metadata.name}`).sort(),
    );
    expect(a.skipped?.find((s) => s.vpsieNode.endsWith(ready.metadata.name))?.why).toBe('phase Ready');

    // on the server: runs for those two, each carrying the NodeGroup alert; none for the others
    for (const vn of [failed, stuck]) {
      const d = (await latestRun(vn.metadata.name))!;
      expect(d.memo?.[ORIGIN_MEMO_KEY]).toMatchObject({ alertName: 'NodeProvisioningFailed', nodeGroup: ng });
      expect(await d.staticSummary()).toBe(
        `VPSieNode ${e.t.ns}/${vn.metadata.name}, NodeGroup ${ng}, alert NodeProvisioningFailed`,
      );
      expect(await d.staticDetails()).toContain(
        `Runbook: https://runbooks.example.com/vpsie/provisioning-failed`,
      );
      // `page` is no severity the runbook knows: the run derives its own
      expect((await inputOf(vn.metadata.name, d.runId)).options).toEqual(RUN_OPTIONS);
    }
    for (const vn of [joining, ready, otherGroup]) expect(await latestRun(vn.metadata.name)).toBeNull();

    // both end (the failed one for capacity, the stuck one because no NodeGroup object would replace it)
    const firstRuns = new Map<string, string>();
    for (const vn of [failed, stuck]) {
      const h = handleOf(vn.metadata.name) as RunbookHandle;
      expect((await e.result(h)).outcome).toBe('Escalated');
      firstRuns.set(vn.metadata.name, (await latestRun(vn.metadata.name))!.runId);
    }
    // the NodeGroup alert's repeats start nothing, whether answered from the record or found on the server
    const repeat = await post(payload);
    expect(repeat.body.alerts[0].runs?.map((r) => [r.action, r.runId])).toEqual(
      [failed, stuck].map((vn) => ['joined', firstRuns.get(vn.metadata.name)]),
    );
    const repeatElsewhere = await post(payload, { to: fresh, token: null });
    expect(repeatElsewhere.body.alerts[0].runs?.map((r) => r.action)).toEqual(['repeat', 'repeat']);

    // the failed node's own alert is another alert: a run of its own
    const own = await post(
      notification([{ labels: perNode('VPSieNodeProvisioningFailed', failed.metadata.name) }]),
    );
    expect(runsOf(own).map((r) => r.action)).toEqual(['started']);
    expect((await e.result(handleOf(failed.metadata.name) as RunbookHandle)).outcome).toBe('Escalated');
    const failedId = workflowIdFor({ namespace: e.t.ns, name: failed.metadata.name });
    await visible(`WorkflowId = '${failedId}' AND ExecutionStatus != 'Running'`, [
      firstRuns.get(failed.metadata.name)!,
      runsOf(own)[0].runId!,
    ]);
    // and when both alerts keep firing, neither's repeats start anything, even at a receiver that has no record
    // of them: the NodeGroup alert's run is older, and found on the server
    for (const to of [receiver, fresh]) {
      const groupAgain = await post(payload, { to, token: to === fresh ? null : TOKEN });
      expect(groupAgain.body.alerts[0].runs?.map((r) => [r.vpsieNode, r.action, r.runId])).toEqual(
        [failed, stuck]
          .map((vn) => [
            `${e.t.ns}/${vn.metadata.name}`,
            to === fresh ? 'repeat' : 'joined',
            firstRuns.get(vn.metadata.name),
          ])
          .sort(),
      );
      const ownAgain = await post(
        notification([{ labels: perNode('VPSieNodeProvisioningFailed', failed.metadata.name) }]),
        { to, token: to === fresh ? null : TOKEN },
      );
      expect(runsOf(ownAgain).map((r) => [r.action, r.runId])).toEqual([
        [to === fresh ? 'repeat' : 'joined', runsOf(own)[0].runId],
      ]);
    }
    expect((await latestRun(failed.metadata.name))?.runId).toBe(runsOf(own)[0].runId);

    // the joining node's own alert starts its run; the NodeGroup alert's resolve reaches it
    const jRun = runsOf(
      await post(
        notification([
          { labels: perNode('VPSieNodeProvisioningTimeout', joining.metadata.name, { nodegroup: ng }) },
        ]),
      ),
    )[0].runId!;
    const jh = handleOf(joining.metadata.name) as RunbookHandle;
    await visible(`WorkflowId = '${jh.workflowId}' AND ExecutionStatus = 'Running'`, [jRun]);
    const resolved = await post(
      notification([{ labels, status: 'resolved', endsAt: '2025-05-01T11:00:00Z' }]),
    );
    expect(resolved.body.alerts[0].runs).toEqual([
      expect.objectContaining({ vpsieNode: `${e.t.ns}/${joining.metadata.name}`, action: 'signalled' }),
    ]);
    await e.statusWhen(
      jh,
      'the NodeGroup alert resolved',
      (s) => s.alertResolved?.alertName === 'NodeProvisioningFailed',
    );
    await jh.terminate('test done');
  });
});

describe('what the receiver does not act on', () => {
  test('other alerts and alerts without the labels are acknowledged, each with why, and start nothing', async () => {
    const vn = await node('u', 'capacity-limit', 'ng-u', 'Failed');
    const answer = await post(
      notification([
        { labels: { alertname: 'Watchdog', namespace: e.t.ns, vpsienode: vn.metadata.name } },
        { labels: { alertname: 'VPSieNodeProvisioningFailed', vpsienode: vn.metadata.name } },
        { labels: { alertname: 'NodeProvisioningFailed', namespace: e.t.ns } },
      ]),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe('ok');
    expect(answer.body.message).toBe('3 alerts: 3 ignored');
    expect(answer.body.alerts.map((a) => [a.result, a.reason])).toEqual([
      ['ignored', expect.stringMatching(/^alert Watchdog is not one the runbook handles/)],
      ['ignored', 'alert VPSieNodeProvisioningFailed has no namespace label'],
      ['ignored', expect.stringMatching(/names no VPSieNode .* and no NodeGroup/)],
    ]);
    expect(await latestRun(vn.metadata.name)).toBeNull();
  });

  test('requests that can never succeed get a 4xx naming why, and start nothing', async () => {
    const vn = await node('z', 'capacity-limit', 'ng-z', 'Failed');
    const good = notification([{ labels: perNode('VPSieNodeProvisioningFailed', vn.metadata.name) }]);

    const none = await post(good, { token: null });
    expect([none.status, none.body.message]).toEqual([401, 'Authorization: Bearer <token> is required']);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="vpsie-runbook"');
    const wrong = await post(good, { token: TOKEN.slice(0, -1) + (TOKEN.endsWith('0') ? '1' : '0') });
    expect([wrong.status, wrong.body.message]).toEqual([401, 'the bearer token is not the receiver token']);

    const text = await post(good, { contentType: 'text/plain' });
    expect([text.status, text.body.message]).toEqual([
      415,
      'Content-Type must be application/json (Alertmanager\'s webhook), got "text/plain"',
    ]);
    const notJson = await post(null, { raw: '{"version": "4", "alerts": [' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.message).toMatch(/^body is not JSON: /);

    const noStart = notification([{ labels: perNode('VPSieNodeProvisioningFailed', vn.metadata.name) }]);
    delete (noStart.alerts[0] as Partial<(typeof noStart.alerts)[0]>).startsAt;
    const schema = await post({ ...noStart, version: '3' });
    expect(schema.status).toBe(400);
    expect(schema.body.message).toBe(
      'not an Alertmanager webhook payload (version 4): version: Invalid input: expected "4"; alerts[0].startsAt: Invalid input: expected string, received undefined',
    );

    const badLabel = await post(
      notification([
        { labels: perNode('VPSieNodeProvisioningFailed', vn.metadata.name) },
        { labels: perNode('VPSieNodeProvisioningFailed', 'Not_A_Name') },
      ]),
    );
    expect(badLabel.status).toBe(400);
    expect(badLabel.body.message).toBe(
      'nothing done: alerts[1].labels.vpsienode must be a VPSieNode name (DNS subdomain), got "Not_A_Name"',
    );

    const big = notification([
      {
        labels: perNode('VPSieNodeProvisioningFailed', vn.metadata.name),
        annotations: { description: 'x'.repeat(MAX_BODY) },
      },
    ]);
    const tooLarge = await post(big);
    expect([tooLarge.status, tooLarge.body.message]).toEqual([
      413,
      `body larger than ${MAX_BODY} bytes (RECEIVER_MAX_BODY_BYTES); lower max_alerts in Alertmanager`,
    ]);

    const get = await fetch(`${receiver.url}/webhooks/alertmanager`);
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    expect((await fetch(`${receiver.url}/webhook`)).status).toBe(404);

    expect(await latestRun(vn.metadata.name)).toBeNull();
    // the same request, well formed and authenticated, is taken
    expect(runsOf(await post(good)).map((r) => r.action)).toEqual(['started']);
    await handleOf(vn.metadata.name).terminate('test done');
  });
});

describe('health and readiness', () => {
  test('ready while Temporal answers; without Temporal alive, not ready, and alerts answered 503 with no run', async () => {
    expect((await fetch(`${receiver.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${receiver.url}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([
      200,
      { status: 'ready', message: 'Temporal answers' },
    ]);

    expect((await fetch(`${down.url}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${down.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { message: string }).message).toMatch(
      /^Temporal could not be reached within 1500 ms \(/,
    );

    const name = uniq('unreached');
    const answer = await post(notification([{ labels: perNode('VPSieNodeProvisioningFailed', name) }]), {
      to: down,
      token: null,
    });
    expect(answer.status).toBe(503);
    expect(answer.body.status).toBe('retry');
    expect(answer.body.alerts[0]).toMatchObject({
      result: 'failed',
      reason: expect.stringMatching(/^Temporal could not be reached within 1500 ms \(/),
    });
    expect(await latestRun(name)).toBeNull();
  });

  test('close() answers the request in flight, then stops taking any', async () => {
    const own = await startReceiver({
      connection: e.ctx.connection,
      taskQueue: e.taskQueue,
      kubernetes: null,
      host: '127.0.0.1',
      port: 0,
      runOptions: RUN_OPTIONS,
    });
    const name = uniq('inflight');
    const body = JSON.stringify(notification([{ labels: perNode('VPSieNodeProvisioningFailed', name) }]));
    const socket = net.connect(own.port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write(
      `POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
    );
    // the server has the request (it asks for the body) when the receiver is told to stop
    await e.t.waitFor('100 Continue', async () => received.includes('100 Continue'), 10_000);
    const closing = own.close();
    await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    socket.write(body); // as HTTP clients do: no half-close, the server closes once it has answered
    await closing;
    await ended;
    expect(received).toMatch(/HTTP\/1\.1 200 OK/);
    expect(received).toMatch(/"action":"started"/);
    // the node does not exist: its run ends at once
    expect((await e.result(handleOf(name) as RunbookHandle)).outcome).toBe('VPSieNodeGone');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A storm: many notifications at once, nearly all of them repeats

/**
 * The receiver's TCP link to the dev server, which a test can hold (what the receiver sends waits) or cut:
 * Temporal as the receiver sees it when the server is slow or gone, while the test reads the server directly.
 */
class TemporalLink {
  private readonly server = net.createServer((c) => this.accept(c));
  private readonly sockets = new Set<net.Socket>();
  private holding = false;
  private readonly pending: { socket: net.Socket; data: Buffer }[] = [];

  async open(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** What the receiver sent while held. */
  get held(): Buffer {
    return Buffer.concat(this.pending.map((p) => p.data));
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const p of this.pending.splice(0)) p.socket.write(p.data);
  }

  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private accept(client: net.Socket): void {
    const [host, port] = temporalAddress().split(':');
    const upstream = net.connect(Number(port), host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (data: Buffer) =>
      this.holding ? this.pending.push({ socket: upstream, data }) : upstream.write(data),
    );
    upstream.on('data', (data: Buffer) => client.write(data));
  }
}

/** A receiver of its own, talking to Temporal through `link`, on a task queue no worker polls (runs stay open). */
async function receiverVia(link: TemporalLink, extra: Partial<Parameters<typeof startReceiver>[0]> = {}) {
  const connection = Connection.lazy({ address: await link.open() });
  const own = await startReceiver({
    connection,
    taskQueue: uniqueTaskQueue('receiver-storm'),
    kubernetes: null,
    host: '127.0.0.1',
    port: 0,
    temporalTimeoutMs: 3_000,
    ...extra,
  });
  return {
    own,
    post: (body: unknown) => post(body, { to: own, token: null }),
    async close() {
      await own.close();
      await connection.close();
      await link.cut().catch(() => undefined);
    },
  };
}

/** The runs on the server whose workflow id starts with that of VPSieNodes named `prefix`…, by workflow id. */
async function runsOnServer(prefix: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const query = `WorkflowId STARTS_WITH '${workflowIdFor({ namespace: e.t.ns, name: prefix })}'`;
  for await (const run of e.ctx.client.workflow.list({ query }))
    out.set(run.workflowId, [...(out.get(run.workflowId) ?? []), run.runId]);
  return out;
}

describe('an alert storm', () => {
  test('identical notifications at once start one run per VPSieNode; their repeats are answered without Temporal', async () => {
    const link = new TemporalLink();
    const r = await receiverVia(link);
    try {
      const prefix = uniq('burst');
      const names = Array.from({ length: 25 }, (_, i) => `${prefix}-${i}`);
      const payloads = names.map((n) =>
        notification([{ labels: perNode('VPSieNodeProvisioningFailed', n) }]),
      );
      // each VPSieNode's notification four times at once: an HA pair of Alertmanagers, and their retries
      const burst = () => Promise.all(payloads.flatMap((p) => [p, p, p, p].map((x) => r.post(x))));

      const first = await burst();
      expect(first.map((a) => a.status)).toEqual(first.map(() => 200));
      const runIds = names.map((name, i) => {
        const runs = first.slice(4 * i, 4 * i + 4).flatMap(runsOf);
        expect(runs.map((x) => [x.vpsieNode, x.action]).sort()).toEqual(
          ['joined', 'joined', 'joined', 'started'].map((a) => [`${e.t.ns}/${name}`, a]),
        );
        expect(new Set(runs.map((x) => x.runId)).size).toBe(1);
        return runs[0].runId!;
      });
      // on the server: one run for each, no other
      await visible(`WorkflowId STARTS_WITH '${workflowIdFor({ namespace: e.t.ns, name: prefix })}'`, runIds);
      const onServer = await runsOnServer(prefix);
      expect([...onServer.values()].sort()).toEqual(runIds.map((id) => [id]).sort());

      // Temporal out of reach: the repeats are still answered, from the receiver's record, naming the same runs
      await link.cut();
      const again = await burst();
      expect(again.map((a) => a.status)).toEqual(again.map(() => 200));
      expect(again.flatMap(runsOf)).toEqual(
        runIds.flatMap((runId) =>
          Array.from({ length: 4 }, () =>
            expect.objectContaining({ action: 'joined', runId, why: expect.stringMatching(RECORDED) }),
          ),
        ),
      );
      // a new firing needs Temporal: 503 (Alertmanager retries), and nothing is started
      const newFiring = await r.post(
        notification([
          { labels: perNode('VPSieNodeProvisioningFailed', names[0]), startsAt: '2025-05-01T12:00:00Z' },
        ]),
      );
      expect(newFiring.status).toBe(503);
      expect(newFiring.body.alerts[0].reason).toMatch(/^Temporal could not be reached within 3000 ms/);
      expect(await runsOnServer(prefix)).toEqual(onServer);
    } finally {
      await r.close();
    }
  });

  test('Temporal work is bounded: past the bound a new firing gets 503 with Retry-After, a repeat still its answer', async () => {
    const link = new TemporalLink();
    const r = await receiverVia(link, {
      limits: { maxInFlight: 1, maxWaiting: 0 },
      temporalTimeoutMs: 30_000,
    });
    try {
      const [a, b, c] = ['a', 'b', 'c'].map((x) => uniq(`bound-${x}`));
      const alert = (name: string) =>
        notification([{ labels: perNode('VPSieNodeProvisioningTimeout', name) }]);
      const first = await r.post(alert(a));
      expect(runsOf(first).map((x) => x.action)).toEqual(['started']);

      // the server is slow: b's decision takes the one place and waits at the link
      link.hold();
      const slow = r.post(alert(b));
      const bId = Buffer.from(workflowIdFor({ namespace: e.t.ns, name: b }));
      await e.t.waitFor(`the receiver's call about ${b} at the link`, async () => link.held.includes(bId));

      const refused = await r.post(alert(c));
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      expect(refused.body.status).toBe('retry');
      expect(refused.body.alerts[0]).toMatchObject({
        result: 'failed',
        reason: 'overloaded: 1 of 1 Temporal decisions in flight and 0 waiting',
      });
      // a repeat needs no place: answered from the record
      const repeat = await r.post(alert(a));
      expect([repeat.status, runsOf(repeat)[0].action, runsOf(repeat)[0].why]).toEqual([
        200,
        'joined',
        expect.stringMatching(RECORDED),
      ]);

      link.release();
      expect(runsOf(await slow).map((x) => x.action)).toEqual(['started']);
      // the refused alert started nothing; Alertmanager's retry does
      expect(await latestRun(c)).toBeNull();
      expect(runsOf(await r.post(alert(c))).map((x) => x.action)).toEqual(['started']);
    } finally {
      await r.close();
    }
  });

  test('a run someone else started for another alert is joined, and asked about again on a repeat', async () => {
    const name = uniq('other');
    // the CLI (or another program) started the VPSieNode's run first
    const { runId } = await startRunbook(
      e.ctx.client,
      { namespace: e.t.ns, name, options: RUN_OPTIONS },
      { taskQueue: uniqueTaskQueue('receiver-other'), origin: { source: 'cli' } },
    );
    const payload = notification([{ labels: perNode('VPSieNodeProvisioningFailed', name) }]);
    for (let i = 0; i < 2; i++) {
      const answer = await post(payload);
      // the server said the start found it open: joined, and not recorded (once that run closes, this alert's
      // repeat starts a run of its own), so the repeat asks again
      expect(runsOf(answer)).toEqual([expect.objectContaining({ action: 'joined', runId })]);
      expect(runsOf(answer)[0].why).toBeUndefined();
    }
    await handleOf(name).terminate('test done');
  });
});
