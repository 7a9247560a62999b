/**
 * Issue 8 item 3: the escalation channels, end to end. The product's escalation activities run as the restricted
 * identity against the real apiserver, while the simulated autoscaler stages the failures and the simulated VPSie
 * holds the machines; PagerDuty, Slack and the webhook are a local sink that checks every payload against the
 * services' documented shapes and limits (test/support/escalation-sink.ts). Where retries matter the activities
 * run on a real Temporal worker with a real retry policy.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { createEscalationActivities, type ChannelEntry } from '../../src/activities/escalation';
import type { ApprovalNotice, ChannelsConfig } from '../../src/channels';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { VPSieClient } from '../../src/clients/vpsie';
import type { Escalation, EscalationRecord, SourceResult } from '../../src/runbook';
import type { EscalationContext, EvidenceBundle } from '../../src/runbook/evidence-bundle';
import { LABEL_SIMULATOR } from '../support/cluster';
import { SimTest, uniq } from '../support/cluster/test-helpers';
import { EscalationSink, type SinkRequest } from '../support/escalation-sink';
import { historyText } from '../support/histories';
import { rejectsWith } from '../support/expect-rejection';
import { kubeConfigFor } from '../support/kube';
import { TestWorker, uniqueTaskQueue } from '../support/temporal';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(120_000);

const t = new SimTest();
const sink = new EscalationSink();
const kube = new KubernetesClient(kubeConfigFor('runbook'));
/** The configuration the activities read; each test sets its routes. The secrets are files or values. */
let channels: ChannelsConfig;
let activities: ReturnType<typeof createEscalationActivities>;
/** Every secret a leak check looks for: the sink's, and the files' contents. */
let secrets: string[];

beforeAll(async () => {
  await sink.start();
  await t.start('escch', { timings: { provisioningTimeoutMs: 2_500, joiningTimeoutMs: 2_500 } });
  const dir = await mkdtemp(join(tmpdir(), 'escch-'));
  channels = await sink.channelsConfig(dir, {
    'vpsie-support': ['pagerduty', 'slack'],
    'platform-team': ['slack', 'webhook'],
  });
  secrets = [...sink.secrets, sink.url('slack'), sink.url('webhook')];
  activities = createEscalationActivities(kube, {
    channels,
    vpsie: new VPSieClient({
      baseUrl: t.vpsie.baseUrl,
      token: VPSieSimulator.DEFAULT_TOKEN,
      timeoutMs: 5_000,
    }),
    // only this file's simulated controller: parallel test files run their own in kube-system too
    controller: { labelSelector: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${t.sim.id}` },
  });
}, 120_000);
afterAll(async () => {
  await t.stop();
  await sink.stop();
});
beforeEach(() => {
  sink.clear();
  channels.routes = { 'vpsie-support': ['pagerduty', 'slack'], 'platform-team': ['slack', 'webhook'] };
});
afterEach(() => expect(t.sim.errors).toEqual([]));

/** A run's escalation of the VPSieNode `name`; each call is another run. */
const escalation = (name: string, over: Partial<Escalation> = {}): Escalation => ({
  workflowId: `provisioning-failed/${t.ns}/${name}`,
  runId: randomUUID(),
  ref: { namespace: t.ns, name },
  uid: null,
  cause: 'VMCreationFailed',
  kind: 'cause',
  reason:
    'VPSie kept refusing to create the VM (HTTP 500) until the controller gave up: ask VPSie support why.',
  step: 'escalate',
  evidence: ['VPSieNode status.lastError: failed to create VPS: Internal server error'],
  ...over,
});

const CONTEXT: EscalationContext = {
  reasons: [
    {
      finding: 'creation-error',
      source: 'vpsieNode',
      field: 'status.lastError',
      value: 'failed to create VPS: Internal server error',
      says: 'VPSie refused to create the VM.',
    },
  ],
  plan: [
    {
      id: 'escalate',
      kind: 'escalate',
      destructive: false,
      target: { kind: 'Escalation', cause: 'VMCreationFailed', evidence: [] },
      why: 'VPSie keeps failing: a person must ask VPSie.',
      state: 'running',
      startedAt: new Date().toISOString(),
      endedAt: null,
      result: null,
    },
  ],
  decisions: [],
};

/** Runs an activity in an activity context whose logger keeps what it is given. */
async function inActivity<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  ...args: A
): Promise<{ result: R; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('DEBUG', (entry) => logs.push(entry)),
  });
  const result = await env.run<A, R, typeof fn>(fn, ...args);
  return { result, logs };
}

/**
 * A VPSieNode whose creation VPSie kept refusing until the simulated controller failed it (its 2.5 s limit):
 * PhaseFailed Events and controller log lines about it exist.
 */
async function failedNode(): Promise<{ name: string; uid: string }> {
  const name = uniq('fail');
  t.sim.stage(name, 'vm-creation-fails', { error: 'Internal server error' });
  await t.createVN(name);
  const failed = await t.phase(name, 'Failed');
  await t.waitFor('its PhaseFailed Event', async () => (await t.reasons(name)).includes('PhaseFailed'));
  return { name, uid: failed.metadata.uid as string };
}

const bodies = (rs: SinkRequest[]) => rs.map((r) => r.body as Record<string, unknown>);
/** PagerDuty triggers as sent: the bundle is their custom_details. */
const triggers = (rs: SinkRequest[]) =>
  rs.map((r) => r.body as { payload: { summary: string; group: string; custom_details: EvidenceBundle } });
const okValue = <T>(s: SourceResult<T>): T => {
  if (s.status !== 'ok') throw new Error(`source not read: ${JSON.stringify(s)}`);
  return s.value;
};
const expectValid = (rs: SinkRequest[]) => {
  for (const r of rs)
    expect({ seq: r.seq, service: r.service, problems: r.problems }).toEqual({
      seq: r.seq,
      service: r.service,
      problems: [],
    });
};
const leaks = (text: string) => secrets.filter((s) => text.includes(s));
/** A history's leak check, once it is shown to hold the escalation's own text (its payloads were read). */
const historyLeaks = (history: string, e: Escalation) => {
  expect(history).toContain(e.reason);
  return leaks(history);
};

describe('escalate through the channels of its route', () => {
  it('a VPSie-side cause goes to VPSie support: PagerDuty and Slack get valid payloads with the whole bundle', async () => {
    const { name, uid } = await failedNode();
    const e = escalation(name, { uid });
    const { result: record, logs } = await inActivity(activities.escalate, e, CONTEXT);

    expect(record.channels).toEqual([
      {
        channel: 'kubernetes-event',
        ok: true,
        detail: expect.stringMatching(/^Warning Event RunbookEscalated /),
      },
      {
        channel: 'pagerduty',
        ok: true,
        detail: `PagerDuty accepted the trigger (HTTP 202, dedup_key ${e.workflowId}) for VPSie support`,
      },
      { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
    ]);
    expect(record.route).toEqual({
      audience: 'vpsie-support',
      why: 'cause VMCreationFailed: VPSie did not create the VM',
      channels: ['pagerduty', 'slack'],
    });

    // PagerDuty: one valid trigger, one incident, keyed by the workflow id
    const pd = sink.of('pagerduty');
    expectValid(pd);
    expect(pd).toHaveLength(1);
    expect([...sink.incidents.values()]).toEqual([
      expect.objectContaining({
        dedupKey: e.workflowId,
        status: 'triggered',
        triggers: 1,
        severity: 'critical',
      }),
    ]);
    const [event] = triggers(pd);
    expect(event.payload.summary).toBe(`VPSieNode ${t.ns}/${name}: VMCreationFailed: ${e.reason}`);
    expect(event.payload.group).toBe('vpsie-support');
    const bundle = event.payload.custom_details;
    const yaml = okValue(bundle.vpsieNodeYaml) ?? '';
    // the VPSieNode as kubectl shows it: the apiserver wrote managedFields, the bundle leaves them out
    expect((await t.getVN(name))?.metadata).toHaveProperty('managedFields');
    expect(yaml).toMatch(/^apiVersion: autoscaler.vpsie.com\/v1alpha1\nkind: VPSieNode\n/);
    expect(yaml).toContain(`  name: ${name}\n`);
    expect(yaml).toContain('phase: Failed');
    expect(yaml).not.toContain('managedFields');
    // its Events, the controller's lines about it, its machine (none), its Node (none), reasons and plan
    expect(okValue(bundle.events).map((x) => x.reason)).toEqual(
      expect.arrayContaining(['Initializing', 'PhaseFailed']),
    );
    const lines = okValue(bundle.controllerLogs).pods.flatMap((p) => p.lines);
    expect(lines.some((l) => l.includes(name))).toBe(true);
    expect(bundle.machine).toEqual({
      status: 'ok',
      value: { status: null, vm: null, clusterNode: null, matchedBy: null, ambiguous: [] },
    });
    expect(bundle.node).toEqual({ status: 'ok', value: null });
    expect(bundle).toMatchObject({
      reasons: [{ finding: 'creation-error' }],
      plan: [{ id: 'escalate', state: 'running' }],
      severity: 'critical',
      audience: 'vpsie-support',
    });

    // Slack: one readable message; no webhook for this audience
    const slack = sink.of('slack');
    expectValid(slack);
    expect(bodies(slack).map((m) => m.text)).toEqual([
      `Runbook escalated to VPSie support (critical): VPSieNode ${t.ns}/${name}: VMCreationFailed: ${e.reason}`,
    ]);
    expect(sink.of('webhook')).toEqual([]);
    expect(logs.map((l) => [l.level, l.message])).toEqual(
      expect.arrayContaining([
        ['WARN', 'Runbook escalated'],
        ['INFO', 'escalation channel delivered'],
      ]),
    );
    // each entry's message and meta (its timestamp is a BigInt, which JSON cannot write)
    expect(leaks(JSON.stringify(logs.map((l) => [l.message, l.meta])))).toEqual([]);
  });

  it('a cluster-side cause goes to the platform team: Slack and the webhook, which gets the project document', async () => {
    const { name, uid } = await failedNode();
    const e = escalation(name, {
      uid,
      cause: 'SSHKeyInvalid',
      reason: 'The NodeGroup names SSH key 99, which the VPSie account lacks.',
    });
    const { result: record } = await inActivity(activities.escalate, e, {});
    expect(record.channels.map((c) => [c.channel, c.ok])).toEqual([
      ['kubernetes-event', true],
      ['slack', true],
      ['webhook', true],
    ]);
    expect(record.route).toMatchObject({ audience: 'platform-team', channels: ['slack', 'webhook'] });
    expect(sink.of('pagerduty')).toEqual([]);
    const hook = sink.of('webhook');
    expectValid(hook);
    expect(hook[0].headers['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);
    expect(hook[0].body).toMatchObject({
      type: 'vpsie-runbook.escalation',
      version: 1,
      workflowId: e.workflowId,
      runId: e.runId,
      vpsieNode: { namespace: t.ns, name, uid },
      audience: 'platform-team',
      routedBecause: "cause SSHKeyInvalid: the NodeGroup's SSH keys",
      cause: 'SSHKeyInvalid',
      severity: 'critical',
    });
    expectValid(sink.of('slack'));
    expect((sink.of('slack')[0].body as { text: string }).text).toMatch(
      /^Runbook escalated to the platform team/,
    );
  });

  it('a VM in an error state in VPSie goes to VPSie support, even when the cause is unknown', async () => {
    const vm = t.vpsie.addVM({ status: 'error' });
    const name = uniq('vmerr');
    await t.createVN(name, { vpsieInstanceID: vm.id });
    const { result: record } = await inActivity(
      activities.escalate,
      escalation(name, { cause: 'Unknown', reason: 'None of the runbook causes matches.' }),
      {},
    );
    expect(record.route).toEqual({
      audience: 'vpsie-support',
      why: 'the VM is in state "error" in VPSie',
      channels: ['pagerduty', 'slack'],
    });
    const [event] = triggers(sink.of('pagerduty'));
    expect(event.payload.custom_details.machine).toMatchObject({
      status: 'ok',
      value: { status: 'error', vm: { id: vm.id }, matchedBy: 'instance-id' },
    });
    expectValid(sink.requests);
  });

  it('resolveEscalation resolves the VPSieNode incident with the same dedup key and routing key', async () => {
    const name = uniq('gone'); // never existed: the bundle says so, the escalation still goes out
    const e = escalation(name);
    const { result: record } = await inActivity(activities.escalate, e, {});
    expect(record.channels.every((c) => c.ok)).toBe(true);
    const [trigger] = triggers(sink.of('pagerduty'));
    expect(trigger.payload.custom_details.vpsieNodeYaml).toEqual({ status: 'ok', value: null });
    expect(trigger.payload.custom_details.severity).toBe('error');

    const { result } = await inActivity(activities.resolveEscalation, {
      workflowId: e.workflowId,
      ref: e.ref,
      outcome: 'Remediated',
    });
    expect(result.channels).toEqual([
      {
        channel: 'pagerduty',
        ok: true,
        detail: `PagerDuty accepted the resolve (HTTP 202, dedup_key ${e.workflowId})`,
      },
    ]);
    const pd = sink.of('pagerduty');
    expectValid(pd);
    expect(pd[1].body).toEqual({
      routing_key: sink.routingKey,
      event_action: 'resolve',
      dedup_key: e.workflowId,
    });
    expect(sink.incidents.get(e.workflowId)).toMatchObject({ status: 'resolved', triggers: 1 });

    // PagerDuty in no route: nothing to resolve, nothing sent
    channels.routes = { 'vpsie-support': ['slack'], 'platform-team': ['webhook'] };
    const none = await inActivity(activities.resolveEscalation, { workflowId: e.workflowId, ref: e.ref });
    expect(none.result.channels).toEqual([]);
    expect(sink.of('pagerduty')).toHaveLength(2);
  });

  it('announceApproval posts the step, its exact target, the expiry and the approve command; PagerDuty not', async () => {
    const notice = {
      workflowId: `provisioning-failed/${t.ns}/ng-a-7x2k`,
      ref: { namespace: t.ns, name: 'ng-a-7x2k' },
      stepId: 'delete-vpsienode',
      kind: 'delete-vpsienode',
      target: { kind: 'VPSieNode', namespace: t.ns, name: 'ng-a-7x2k', uid: 'uid-1' },
      action: `Delete VPSieNode ${t.ns}/ng-a-7x2k (uid uid-1): its NodeGroup makes a replacement.`,
      expiresAt: '2030-01-01T10:00:00.000Z',
      approvers: ['alice'],
    };
    const { result } = await inActivity(activities.announceApproval, notice);
    expect(result.channels.map((c) => [c.channel, c.ok])).toEqual([
      ['slack', true],
      ['webhook', true],
    ]);
    expect(sink.of('pagerduty')).toEqual([]);
    expectValid(sink.requests);
    const approve = `temporal workflow update execute --workflow-id ${notice.workflowId} --name decide --input '{"stepId": "delete-vpsienode", "decision": "approve", "approver": "<you>"}'`;
    expect(sink.of('webhook')[0].body).toMatchObject({
      type: 'vpsie-runbook.approval-pending',
      approval: {
        stepId: 'delete-vpsienode',
        target: notice.target,
        targetDescription: `VPSieNode ${t.ns}/ng-a-7x2k (uid uid-1)`,
        expiresAt: notice.expiresAt,
        approvers: ['alice'],
        approveCommand: approve,
      },
    });
    const slack = JSON.stringify(sink.of('slack')[0].body);
    expect(slack).toContain('2030-01-01T10:00:00.000Z');
    expect(slack).toContain(`VPSieNode ${t.ns}/ng-a-7x2k (uid uid-1)`);
    expect(slack).toContain('--name decide --input');
  });

  it('refuses a bad context or approval non-retryably, naming the field, before sending anything', async () => {
    const err = await rejectsWith(
      new MockActivityEnvironment().run(activities.escalate, escalation('x'), {
        plan: [{ id: 'escalate' }],
      } as unknown as EscalationContext),
      ApplicationFailure,
    );
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(err.message).toBe('context.plan[0].kind: Invalid input: expected string, received undefined');
    const bad = await rejectsWith(
      new MockActivityEnvironment().run(activities.announceApproval, {
        workflowId: 'w',
      } as unknown as ApprovalNotice),
      ApplicationFailure,
    );
    expect(bad).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(bad.message).toBe('approval.ref: must be {namespace, name}');
    expect(sink.requests).toEqual([]);
  });

  it('a transient failure fails the attempt with a message that names no secret, and the next attempt sends only what is missing', async () => {
    const { name, uid } = await failedNode();
    const e = escalation(name, { uid });
    sink.fail('slack', { status: 503 });
    const heartbeats: unknown[] = [];
    const first = new MockActivityEnvironment({ attempt: 1 });
    first.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const err = await rejectsWith(first.run(activities.escalate, e, CONTEXT), ApplicationFailure);
    expect(err).toMatchObject({ type: 'EscalationNotDelivered', nonRetryable: false });
    expect(err.message).toBe(
      'escalation not yet delivered: Slack: HTTP 503 Service Unavailable: "rollup_error" (delivered: kubernetes-event, pagerduty)',
    );
    expect(leaks(JSON.stringify({ message: err.message, details: err.details, heartbeats }))).toEqual([]);

    // the next attempt, given the last heartbeat, sends Slack only
    const second = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: heartbeats.at(-1) });
    const record = (await second.run(activities.escalate, e, CONTEXT)) as EscalationRecord;
    expect(record.channels.map((c) => [c.channel, c.ok])).toEqual([
      ['kubernetes-event', true],
      ['pagerduty', true],
      ['slack', true],
    ]);
    expect(sink.of('pagerduty')).toHaveLength(1);
    expect(sink.of('slack').map((r) => r.answer)).toEqual([503, 200]);
  });
});

describe('escalate under Temporal retries', () => {
  const taskQueue = uniqueTaskQueue('escalation-channels');
  const worker = new TestWorker({
    taskQueue,
    workflowsPath: require.resolve('../support/run-activity-workflow'),
    activities: {
      escalate: (e: Escalation, c?: EscalationContext) => activities.escalate(e, c),
      announceApproval: (n: ApprovalNotice) => activities.announceApproval(n),
    },
  });

  beforeAll(() => worker.start(), 120_000);
  afterAll(() => worker.stop());

  const run = async (name: string, args: unknown[], maximumAttempts = 5) => {
    const handle = await worker.ctx.client.workflow.start('runActivity', {
      taskQueue,
      workflowId: `escalation-channels-${randomUUID()}`,
      args: [
        name,
        args,
        {
          startToCloseTimeout: '30 seconds',
          retry: { initialInterval: '200 ms', backoffCoefficient: 1, maximumAttempts },
        },
      ],
    });
    const result = await handle.result();
    const history = await historyText(handle);
    return { result: result as EscalationRecord, history };
  };
  const entry = (r: EscalationRecord, channel: string): ChannelEntry | undefined =>
    r.channels.find((c) => c.channel === channel);

  it('429 (with Retry-After), 5xx and a hang are retried, and each channel gets the escalation once', async () => {
    channels.routes['vpsie-support'] = ['pagerduty', 'slack', 'webhook'];
    const name = uniq('retry');
    const e = escalation(name);
    sink.fail('pagerduty', { status: 429, retryAfter: '1' });
    sink.fail('slack', { status: 502 });
    sink.fail('webhook', { hang: true });
    const { result, history } = await run('escalate', [e, CONTEXT]);
    expect(result.channels.map((c) => [c.channel, c.ok])).toEqual([
      ['kubernetes-event', true],
      ['pagerduty', true],
      ['slack', true],
      ['webhook', true],
    ]);
    expectValid(sink.requests);
    for (const service of ['pagerduty', 'slack', 'webhook'] as const) {
      const rs = sink.of(service);
      expect({ service, accepted: rs.filter((r) => r.accepted).length }).toEqual({ service, accepted: 1 });
    }
    expect(sink.of('pagerduty').map((r) => r.answer)).toEqual([429, 202]);
    expect(sink.of('slack').map((r) => r.answer)).toEqual([502, 200]);
    expect(sink.of('webhook').map((r) => r.answer)).toEqual(['hang', 202]);
    // both attempts at the document carry the same idempotency key
    const keys = new Set(sink.of('webhook').map((r) => r.headers['idempotency-key']));
    expect(keys.size).toBe(1);
    expect([...sink.incidents.values()]).toEqual([expect.objectContaining({ triggers: 1 })]);
    // the retry waited at least as long as PagerDuty's Retry-After asked
    const [first, second] = sink.of('pagerduty');
    expect(second.at - first.at).toBeGreaterThanOrEqual(1000);
    expect(historyLeaks(history, e)).toEqual([]);
  });

  it('400 is not retried: recorded as undelivered, with no secret in the detail, and the activity still answers', async () => {
    channels.routes['vpsie-support'] = ['pagerduty', 'slack', 'webhook'];
    const e = escalation(uniq('bad'));
    sink.fail('slack', { status: 400 });
    sink.fail('webhook', { status: 400 }); // its body echoes the hook's path, secret and all
    const { result, history } = await run('escalate', [e, CONTEXT]);
    expect(entry(result, 'pagerduty')).toMatchObject({ ok: true });
    expect(entry(result, 'slack')).toEqual({
      channel: 'slack',
      ok: false,
      detail: 'not delivered: Slack: HTTP 400 Bad Request: "invalid_payload"',
    });
    expect(entry(result, 'webhook')).toEqual({
      channel: 'webhook',
      ok: false,
      detail: 'not delivered: webhook: HTTP 400 Bad Request: "{\\"error\\":\\"HTTP 400 for [REDACTED]\\"}"',
    });
    expect(sink.of('slack')).toHaveLength(1);
    expect(sink.of('webhook')).toHaveLength(1);
    expectValid(sink.requests); // the payloads were valid: the 400s were the receivers' own
    expect(historyLeaks(history, e)).toEqual([]);
  });

  it('a retry after PagerDuty accepted does not send it again; a lost answer re-sends with the same key: one incident', async () => {
    const e = escalation(uniq('once'));
    sink.fail('slack', { status: 503 });
    const first = await run('escalate', [e, CONTEXT]);
    expect(first.result.channels.every((c) => c.ok)).toBe(true);
    expect(sink.of('pagerduty')).toHaveLength(1);
    expect(sink.of('slack').map((r) => r.answer)).toEqual([503, 200]);

    // PagerDuty takes the event but its answer never comes: the retry re-sends it, PagerDuty dedups it, and Slack
    // (delivered by the first attempt) is not sent again
    sink.clear();
    const e2 = escalation(uniq('lost'));
    sink.fail('pagerduty', { acceptThenHang: true });
    const second = await run('escalate', [e2, CONTEXT]);
    expect(second.result.channels.every((c) => c.ok)).toBe(true);
    expect(sink.of('pagerduty').map((r) => r.answer)).toEqual(['hang', 202]);
    expect(sink.of('pagerduty').map((r) => (r.body as { dedup_key: string }).dedup_key)).toEqual([
      e2.workflowId,
      e2.workflowId,
    ]);
    expect([...sink.incidents.values()]).toEqual([
      expect.objectContaining({ dedupKey: e2.workflowId, status: 'triggered' }),
    ]);
    expect(sink.of('slack')).toHaveLength(1);
  });

  it('on the last attempt a channel that still fails is recorded as undelivered, and the activity answers', async () => {
    const e = escalation(uniq('last'));
    sink.fail('slack', { status: 500 }, 10);
    const { result } = await run('escalate', [e, CONTEXT], 2);
    expect(entry(result, 'slack')).toEqual({
      channel: 'slack',
      ok: false,
      detail: 'not delivered after 2 attempts: Slack: HTTP 500 Internal Server Error: "rollup_error"',
    });
    expect(entry(result, 'pagerduty')).toMatchObject({ ok: true });
    expect(sink.of('slack')).toHaveLength(2);
    expect(sink.of('pagerduty')).toHaveLength(1);
  });

  it('an approval announcement is retried the same way and posted once per channel', async () => {
    sink.fail('webhook', { status: 503 });
    const { result } = await run('announceApproval', [
      {
        workflowId: `provisioning-failed/${t.ns}/ng-b`,
        ref: { namespace: t.ns, name: 'ng-b' },
        stepId: 'terminate-machine',
        kind: 'terminate-machine',
        target: { kind: 'VM', id: 7, identifier: 'vm-7', hostname: 'ng-b-x', nodeGroup: 'ng' },
        action: null,
        expiresAt: '2030-01-01T10:00:00Z',
        approvers: [],
      },
    ]);
    expect(result.channels.map((c) => [c.channel, c.ok])).toEqual([
      ['slack', true],
      ['webhook', true],
    ]);
    expect(sink.of('slack')).toHaveLength(1);
    expect(sink.of('webhook').map((r) => r.answer)).toEqual([503, 202]);
    expectValid(sink.requests);
  });
});
