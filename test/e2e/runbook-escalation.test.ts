/**
 * Issue 8 item 3 for whole runs: the runbook workflow, started as an alert starts it, escalates, announces its
 * approvals and resolves its incidents through the escalation channels, which point at the local sink that plays
 * PagerDuty, Slack and a webhook and checks every payload against each service's documented shape and limits
 * (test/support/escalation-sink.ts). The activities alone are tested in test/integration/escalation-channels.
 *
 * What a person on call would notice is read where they would read it: what each service received (and whether
 * it passed the sink's checks), PagerDuty's incidents, the run's result and `status`, its history (the attempts
 * Temporal made) and the `RunbookEscalated` Event on the VPSieNode.
 *
 * The VPSieNodes are staged at once when the file starts, so their controller limits pass together; the runs
 * start in the tests, one test's runs after the last one's ended, since the sink's faults are armed per service.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ChannelsConfig } from '../../src/channels';
import { ESCALATION_EVENT_REASON, type DiagnosisReport } from '../../src/runbook';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import type { VPSieNodeObj } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { EscalationSink, type SinkRequest, type SinkService } from '../support/escalation-sink';
import { historyText } from '../support/histories';
import { RECREATED_AT_ONCE, RunbookE2E, stepStates, type RunbookHandle } from '../support/runbook-e2e';
import { temporalAddress } from '../support/temporal';

jest.setTimeout(120_000);

const e = new RunbookE2E('escalation');
const sink = new EscalationSink();
/** VPSie-side problems page and post to Slack; cluster-side ones post to Slack and the webhook. */
const ROUTES: ChannelsConfig['routes'] = {
  'vpsie-support': ['pagerduty', 'slack'],
  'platform-team': ['slack', 'webhook'],
};
let secretsDir = '';
/** What no history may hold: the routing key, the hooks' secret parts, and the Slack and webhook URLs. */
let secrets: string[] = [];

// ---------------------------------------------------------------------------------------------------------------
// VPSieNodes staged when the file starts; each test awaits its own.

/** A VPSieNode whose creation VPSie refuses with its worker-count limit: Failed at once, VMCreationFailed. */
async function capacityFailed(prefix: string): Promise<VPSieNodeObj> {
  const name = uniq(prefix);
  await e.t.sim.stage(name, 'capacity-limit');
  await e.t.createVN(name);
  return e.t.phase(name, 'Failed');
}

/** The one VPSieNode of a new NodeGroup whose first node gets `scenario` (the rest are healthy). */
async function firstOfGroup(ng: string): Promise<VPSieNodeObj> {
  const [vn] = await e.t.waitFor(`the VPSieNode of ${ng}`, async () => {
    const vns = await e.t.listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase ? vns : undefined;
  });
  return vn;
}

/** A NodeGroup naming an SSH key the VPSie account lacks; its VM never registers: SSHKeyInvalid, Failed. */
async function sshKeysFailed(): Promise<VPSieNodeObj> {
  const ng = uniq('ssh');
  await e.t.sim.stage({ nodeGroup: ng }, 'unknown-ssh-keys', { sshKeyIDs: ['sshkey-gone-1'] });
  await e.t.sim.stage({ nodeGroup: ng }, 'never-registers', { count: 1, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng);
  const vn = await firstOfGroup(ng);
  // Failed (JoiningTimeout) before the alert, as the VPSieNodeProvisioningFailed alert finds it
  return e.t.phase(vn.metadata.name, 'Failed', 60_000);
}

/** A NodeGroup whose first VM never boots (ProvisioningTimeout); its replacement is healthy. */
async function stuckInGroup(prefix: string): Promise<{ ng: string; vn: VPSieNodeObj }> {
  const ng = uniq(prefix);
  await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng);
  return { ng, vn: await firstOfGroup(ng) };
}

let staged: {
  capacity: Promise<VPSieNodeObj>;
  ssh: Promise<VPSieNodeObj>;
  retried: Promise<VPSieNodeObj>;
  refused: Promise<VPSieNodeObj>;
  approval: Promise<{ ng: string; vn: VPSieNodeObj }>;
  resolved: Promise<{ ng: string; vn: VPSieNodeObj }>;
};

beforeAll(async () => {
  await sink.start();
  secretsDir = await mkdtemp(join(tmpdir(), 'e2e-escalation-'));
  const channels = await sink.channelsConfig(secretsDir, ROUTES);
  secrets = [...sink.secrets, sink.url('slack'), sink.url('webhook')];
  await e.start('escalation', {}, channels);
  staged = {
    capacity: capacityFailed('cap'),
    ssh: sshKeysFailed(),
    retried: capacityFailed('retried'),
    refused: capacityFailed('refused'),
    approval: stuckInGroup('appr'),
    resolved: stuckInGroup('again'),
  };
  // each test awaits its own; a test that never runs (-t) must not leave an unhandled rejection
  for (const p of Object.values(staged)) p.catch(() => undefined);
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(Object.values(staged ?? {}));
  await e.stop();
  await sink.stop();
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
}, 120_000);

afterEach(() => {
  expect(e.t.sim.errors).toEqual([]);
  // every payload any run sent passed the sink's checks, and went to a URL the sink knows
  expectValid(sink.requests);
});

// ---------------------------------------------------------------------------------------------------------------
// Reading what the services received, run by run (the sink is shared by the whole file).

type Body = Record<string, unknown>;
const bodyOf = (r: SinkRequest) => r.body as Body;

/** What `service` received about the run(s) of workflow `wf`. */
function sent(service: SinkService, wf: string): SinkRequest[] {
  return sink.of(service).filter((r) => {
    const b = r.body as Body | undefined;
    if (service === 'pagerduty') {
      const key = String(b?.dedup_key ?? '');
      return key === wf || key.startsWith(`${wf}/approval/`);
    }
    if (service === 'webhook') return b?.workflowId === wf;
    // Slack's messages name the workflow in a code span (escalations and approvals alike)
    return JSON.stringify(b ?? null).includes(`\`${wf}\``);
  });
}

/** Waits until `service` has received `count` requests about `wf`. */
function waitSent(service: SinkService, wf: string, count: number): Promise<SinkRequest[]> {
  return e.t.waitFor(
    `${count} ${service} request(s) about ${wf}`,
    async () => {
      const rs = sent(service, wf);
      return rs.length >= count ? rs : undefined;
    },
    60_000,
  );
}

function expectValid(rs: SinkRequest[]): void {
  for (const r of rs)
    expect({ seq: r.seq, service: r.service, problems: r.problems }).toEqual({
      seq: r.seq,
      service: r.service === 'unknown' ? 'a known service' : r.service,
      problems: [],
    });
}

/** Slack's mrkdwn escaping, to find a text in a message as Slack shows it. */
const mrkdwn = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Every text of a Slack message: its notification text and its blocks' texts. */
function slackTexts(r: SinkRequest): string {
  const m = r.body as {
    text: string;
    blocks?: { text?: { text: string }; fields?: { text: string }[]; elements?: { text: string }[] }[];
  };
  const parts = [m.text];
  for (const b of m.blocks ?? [])
    parts.push(
      b.text?.text ?? '',
      ...(b.fields ?? []).map((f) => f.text),
      ...(b.elements ?? []).map((x) => x.text),
    );
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the run.

/** The `RunbookEscalated` Events about the VPSieNode that this workflow's runs wrote, oldest first. */
async function escalationEvents(name: string, wf: string) {
  return (await e.t.events(name)).filter(
    (ev) =>
      ev.reason === ESCALATION_EVENT_REASON && ev.metadata.annotations?.['vpsie-runbook/workflow-id'] === wf,
  );
}

/** No secret in the run's history; `shown` is text the history must hold, proof that its payloads were read. */
async function expectNoSecretIn(h: RunbookHandle, shown: string): Promise<void> {
  const text = await historyText(h);
  expect(text).toContain(shown);
  expect(secrets.filter((s) => text.includes(s))).toEqual([]);
}

/** The attempts Temporal made at each call of an activity: the last attempt and the failure before it. */
async function attempts(
  h: RunbookHandle,
  type: string,
): Promise<{ attempt: number; lastFailure: string | null }[]> {
  const events = (await h.fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((ev) => ev.activityTaskScheduledEventAttributes?.activityType?.name === type)
      .map((ev) => String(ev.eventId)),
  );
  return events.flatMap((ev) => {
    const s = ev.activityTaskStartedEventAttributes;
    if (!s || !scheduled.has(String(s.scheduledEventId))) return [];
    return [{ attempt: s.attempt ?? 0, lastFailure: s.lastFailure?.message ?? null }];
  });
}

/** The run `h` follows now, by its id (a handle by workflow id alone follows whichever run is the latest). */
async function thisRun(h: RunbookHandle): Promise<{ run: RunbookHandle; runId: string }> {
  const { runId } = await h.describe();
  return { run: e.ctx.client.workflow.getHandle(h.workflowId, runId) as RunbookHandle, runId };
}

const EVENT_ENTRY = {
  channel: 'kubernetes-event',
  ok: true,
  detail: expect.stringMatching(new RegExp(`^Warning Event ${ESCALATION_EVENT_REASON} `)),
};
const pagerDutyAccepted = (wf: string) => ({
  channel: 'pagerduty',
  ok: true,
  detail: `PagerDuty accepted the trigger (HTTP 202, dedup_key ${wf}) for VPSie support`,
});
const VPSIE_SUPPORT_ROUTE = {
  audience: 'vpsie-support',
  why: 'cause VMCreationFailed: VPSie did not create the VM',
  channels: ['pagerduty', 'slack'],
};

/** The run ended Escalated, and its status says the same as its result. */
async function expectEscalated(h: RunbookHandle, report: DiagnosisReport): Promise<void> {
  expect(report.outcome).toBe('Escalated');
  expect(report.error).toBeNull();
  expect(report.conclusion).toBe(report.escalation?.reason);
  const s = await e.status(h);
  expect(s).toMatchObject({ stage: 'completed', outcome: 'Escalated' });
  expect(s.escalation).toEqual(report.escalation);
}

// ---------------------------------------------------------------------------------------------------------------

test('a VPSie-side cause pages VPSie support and posts to Slack; a cluster-side one posts to Slack and the webhook: one valid payload per channel', async () => {
  const [cap, ssh] = await Promise.all([staged.capacity, staged.ssh]);
  // the SSH run is started as an alert with its own severity label would start it: that severity wins over the
  // one its phase would give (critical, for a Failed VPSieNode)
  const [hc, hs] = await Promise.all([
    e.alert(cap.metadata.name),
    e.alert(ssh.metadata.name, { severity: 'warning' }),
  ]);
  const [rc, rs] = await Promise.all([e.result(hc), e.result(hs)]);
  const [runC, runS] = await Promise.all([thisRun(hc), thisRun(hs)]);

  // VPSie side: VPSie refused to create the VM (its worker-count limit)
  expect(rc.cause).toBe('VMCreationFailed');
  await expectEscalated(hc, rc);
  expect(rc.escalation).toMatchObject({ kind: 'cause', step: 'escalate', uid: cap.metadata.uid });
  expect(rc.escalation?.record).toEqual({
    recordedAt: expect.any(String),
    channels: [
      EVENT_ENTRY,
      pagerDutyAccepted(hc.workflowId),
      { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
    ],
    route: VPSIE_SUPPORT_ROUTE,
  });
  const pd = sent('pagerduty', hc.workflowId);
  expect(pd).toHaveLength(1);
  expect(pd[0]).toMatchObject({ answer: 202, accepted: true, problems: [] });
  expect(pd[0].body).toMatchObject({
    routing_key: sink.routingKey,
    event_action: 'trigger',
    dedup_key: hc.workflowId,
    payload: {
      source: `vpsienode/${e.t.ns}/${cap.metadata.name}`,
      severity: 'critical', // a Failed VPSieNode: the VPSieNodeProvisioningFailed alert's
      group: 'vpsie-support',
      class: 'VMCreationFailed',
      custom_details: {
        workflowId: hc.workflowId,
        runId: runC.runId,
        vpsieNode: { namespace: e.t.ns, name: cap.metadata.name, uid: cap.metadata.uid },
        reason: rc.escalation?.reason,
      },
    },
  });
  const summary = (pd[0].body as { payload: { summary: string } }).payload.summary;
  expect(summary).toMatch(new RegExp(`^VPSieNode ${e.t.ns}/${cap.metadata.name}: VMCreationFailed: `));
  expect(summary).toBe(
    `VPSieNode ${e.t.ns}/${cap.metadata.name}: VMCreationFailed: ${rc.escalation?.reason}`,
  );
  // the error VPSie answered is in the evidence the page and the message carry
  const capacityError = 'Worker nodes count exceeds the allowed limit';
  expect(
    (
      pd[0].body as { payload: { custom_details: { evidence: string[] } } }
    ).payload.custom_details.evidence.join('\n'),
  ).toContain(capacityError);
  expect(sink.incidents.get(hc.workflowId)).toMatchObject({ status: 'triggered', triggers: 1 });
  const slackC = sent('slack', hc.workflowId);
  expect(slackC).toHaveLength(1);
  expect(bodyOf(slackC[0]).text).toMatch(/^Runbook escalated to VPSie support \(critical\): VPSieNode /);
  expect(slackTexts(slackC[0])).toContain(capacityError);
  expect(sent('webhook', hc.workflowId)).toEqual([]);

  // cluster side: the NodeGroup names an SSH key the account lacks
  expect(rs.cause).toBe('SSHKeyInvalid');
  await expectEscalated(hs, rs);
  expect(rs.escalation?.record).toEqual({
    recordedAt: expect.any(String),
    channels: [
      EVENT_ENTRY,
      { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for the platform team' },
      { channel: 'webhook', ok: true, detail: 'delivered to the webhook (HTTP 202) for the platform team' },
    ],
    route: {
      audience: 'platform-team',
      why: "cause SSHKeyInvalid: the NodeGroup's SSH keys",
      channels: ['slack', 'webhook'],
    },
  });
  const hook = sent('webhook', hs.workflowId);
  expect(hook).toHaveLength(1);
  expect(hook[0]).toMatchObject({ answer: 202, accepted: true, problems: [] });
  expect(hook[0].headers['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);
  expect(hook[0].body).toMatchObject({
    type: 'vpsie-runbook.escalation',
    version: 1,
    workflowId: hs.workflowId,
    runId: runS.runId,
    vpsieNode: { namespace: e.t.ns, name: ssh.metadata.name, uid: ssh.metadata.uid },
    audience: 'platform-team',
    cause: 'SSHKeyInvalid',
    kind: 'cause',
    severity: 'warning',
    reason: rs.escalation?.reason,
  });
  expect(rs.escalation?.reason).toContain('sshkey-gone-1');
  const slackS = sent('slack', hs.workflowId);
  expect(slackS).toHaveLength(1);
  expect(bodyOf(slackS[0]).text).toMatch(/^Runbook escalated to the platform team \(warning\): VPSieNode /);
  expect(slackTexts(slackS[0])).toContain('sshkey-gone-1');
  expect(sent('pagerduty', hs.workflowId)).toEqual([]);
  expect(sink.incidents.has(hs.workflowId)).toBe(false);

  // each VPSieNode shows one RunbookEscalated Event from its run
  for (const [vn, h] of [
    [cap, hc],
    [ssh, hs],
  ] as const)
    expect(
      (await escalationEvents(vn.metadata.name, h.workflowId)).map((ev) => [ev.type, ev.involvedObject.uid]),
    ).toEqual([['Warning', vn.metadata.uid]]);

  await expectNoSecretIn(runC.run, rc.escalation!.reason);
  await expectNoSecretIn(runS.run, rs.escalation!.reason);
});

test('PagerDuty answers 503 once: Temporal retries the escalation, which pages once and posts to Slack once', async () => {
  const vn = await staged.retried;
  sink.fail('pagerduty', { status: 503 });
  const h = await e.alert(vn.metadata.name);
  const report = await e.result(h);
  const wf = h.workflowId;

  await expectEscalated(h, report);
  expect(report.escalation?.record?.channels).toEqual([
    EVENT_ENTRY,
    pagerDutyAccepted(wf),
    { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
  ]);
  // the first trigger (valid) got the 503, the retry was accepted: one incident, paged once
  const pd = sent('pagerduty', wf);
  expect(pd.map((r) => [bodyOf(r).event_action, r.answer, r.injected])).toEqual([
    ['trigger', 503, true],
    ['trigger', 202, false],
  ]);
  expect(pd.filter((r) => r.accepted)).toHaveLength(1);
  expect(sink.incidents.get(wf)).toMatchObject({ status: 'triggered', triggers: 1 });
  // Slack, delivered by the first attempt, was not sent again
  expect(sent('slack', wf).map((r) => r.answer)).toEqual([200]);
  // the run's history shows the one escalate call, on its second attempt after the 503
  expect(await attempts(h, 'escalate')).toEqual([
    {
      attempt: 2,
      lastFailure: expect.stringMatching(
        /^escalation not yet delivered: PagerDuty: HTTP 503 .*\(delivered: kubernetes-event, slack\)$/,
      ),
    },
  ]);
  expect(await escalationEvents(vn.metadata.name, wf)).toHaveLength(1);
  await expectNoSecretIn(h, report.escalation!.reason);
});

test('PagerDuty refuses with 400: not retried, recorded as undelivered; Slack still delivered; the run ends Escalated', async () => {
  const vn = await staged.refused;
  sink.fail('pagerduty', { status: 400 });
  const h = await e.alert(vn.metadata.name);
  const report = await e.result(h);
  const wf = h.workflowId;

  await expectEscalated(h, report);
  expect(report.escalation?.record).toEqual({
    recordedAt: expect.any(String),
    channels: [
      EVENT_ENTRY,
      {
        channel: 'pagerduty',
        ok: false,
        detail: expect.stringMatching(/^not delivered: PagerDuty: HTTP 400 Bad Request: .*injected/),
      },
      { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
    ],
    route: VPSIE_SUPPORT_ROUTE,
  });
  // one valid trigger, refused; no incident
  expect(sent('pagerduty', wf).map((r) => [bodyOf(r).event_action, r.answer, r.problems])).toEqual([
    ['trigger', 400, []],
  ]);
  expect(sink.incidents.has(wf)).toBe(false);
  expect(sent('slack', wf).map((r) => [r.answer, r.accepted])).toEqual([[200, true]]);
  expect(await attempts(h, 'escalate')).toEqual([{ attempt: 1, lastFailure: null }]);
  // the Event still tells whoever describes the VPSieNode
  const [ev, ...more] = await escalationEvents(vn.metadata.name, wf);
  expect(more).toEqual([]);
  expect(ev.message).toContain('Cause: VMCreationFailed');
  await expectNoSecretIn(h, report.escalation!.reason);
});

test('a pending approval is announced with its exact step, target, expiry and the command that approves it; that command approves it → Remediated', async () => {
  const { ng, vn } = await staged.approval;
  const { name, uid } = vn.metadata;
  const h = await e.alert(name);
  const pending = await e.pending(h, 'delete-vpsienode');
  const wf = h.workflowId;
  expect(pending.target).toEqual({ kind: 'VPSieNode', namespace: e.t.ns, name, uid });

  const [hook] = await waitSent('webhook', wf, 1);
  const [slack] = await waitSent('slack', wf, 1);
  const approve = `temporal workflow update execute --workflow-id ${wf} --name decide --input '{"stepId": "delete-vpsienode", "decision": "approve", "approver": "<you>"}'`;
  expect(hook.body).toEqual({
    type: 'vpsie-runbook.approval-pending',
    version: 1,
    sentAt: expect.any(String),
    workflowId: wf,
    vpsieNode: { namespace: e.t.ns, name },
    approval: {
      stepId: pending.stepId,
      kind: pending.kind,
      target: pending.target,
      targetDescription: `VPSieNode ${e.t.ns}/${name} (uid ${uid})`,
      action: pending.action ?? null,
      expiresAt: pending.expiresAt,
      approvers: [],
      approveCommand: approve,
      rejectCommand: approve.replace('"decision": "approve"', '"decision": "reject"'),
    },
  });
  expect(Date.parse(pending.expiresAt) - Date.parse(pending.requestedAt)).toBe(10 * 60_000);
  const text = slackTexts(slack);
  expect(bodyOf(slack).text).toBe(
    mrkdwn(
      `Approval needed before delete-vpsienode on VPSieNode ${e.t.ns}/${name}${pending.action ? `: ${pending.action}` : ''}. Expires ${pending.expiresAt}.`,
    ),
  );
  expect(text).toContain(mrkdwn(JSON.stringify(pending.target, null, 2)));
  expect(text).toContain(mrkdwn(approve));
  // an approval is not a page
  expect(sent('pagerduty', wf)).toEqual([]);

  // what the on-call person pastes, with their name: the Temporal CLI's update, against this server
  const cli = await findTemporalCli();
  expect(cli).toBeTruthy();
  await promisify(execFile)('bash', [
    '-c',
    `${approve.replace('<you>', 'bob').replace(/^temporal /, `'${cli}' `)} --address ${temporalAddress()}`,
  ]);
  const report = await e.result(h);
  expect(report.outcome).toBe('Remediated');
  expect(stepStates(report)).toEqual([
    ['delete-vpsienode', 'done'],
    ['wait-machine-gone', 'done'],
    ...RECREATED_AT_ONCE,
  ]);
  expect(report.decisions).toEqual([
    expect.objectContaining({
      stepId: 'delete-vpsienode',
      decision: 'approve',
      approver: 'bob',
      via: 'update',
      accepted: true,
    }),
  ]);
  expect((await e.t.getVN(name))?.metadata.uid ?? null).not.toBe(uid);
  expect((await e.t.listVNs(ng)).map((x) => x.metadata.uid)).toEqual([report.replacement?.uid]);
  // announced once per channel; nothing was escalated, so nothing was paged: PagerDuty only got the resolve every
  // Remediated run sends (a no-op with no incident open)
  expect(sent('webhook', wf)).toHaveLength(1);
  expect(sent('slack', wf)).toHaveLength(1);
  expect(sent('pagerduty', wf).map((r) => bodyOf(r).event_action)).toEqual(['resolve']);
  expect(sink.incidents.has(wf)).toBe(false);
  await expectNoSecretIn(h, uid!);
});

test('a later run of the same VPSieNode that ends Remediated resolves the incident its earlier (expired) run opened', async () => {
  const { vn } = await staged.resolved;
  const { name, uid } = vn.metadata;

  // the first run: nobody approves within 10 s; it escalates, and PagerDuty opens an incident
  const h1 = await e.alert(name, { approvalTtl: '10s' });
  const first = await e.result(h1);
  const run1 = await thisRun(h1);
  const wf = h1.workflowId;
  expect(first.outcome).toBe('ApprovalExpired');
  expect(first.escalation).toMatchObject({ kind: 'approval-expired', cause: 'ProvisioningTimeout', uid });
  expect(first.escalation?.record).toEqual({
    recordedAt: expect.any(String),
    channels: [
      EVENT_ENTRY,
      pagerDutyAccepted(wf),
      { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
    ],
    route: {
      audience: 'vpsie-support',
      why: "cause ProvisioningTimeout: VPSie did not deliver a running VM within the controller's limit",
      channels: ['pagerduty', 'slack'],
    },
  });
  expect(sink.incidents.get(wf)).toMatchObject({ status: 'triggered', triggers: 1, resolves: 0 });
  expect(
    (await escalationEvents(name, wf)).map((ev) => ev.metadata.annotations?.['vpsie-runbook/run-id']),
  ).toEqual([run1.runId]);

  // the alert fires again: a new run under the same workflow id, approved this time
  const h2 = await e.alert(name);
  expect(h2.workflowId).toBe(wf);
  await e.pending(h2, 'delete-vpsienode');
  // approved once announced, as a person would
  await Promise.all([waitSent('webhook', wf, 2), waitSent('slack', wf, 3)]);
  await e.decide(h2, 'delete-vpsienode', 'approve');
  const second = await e.result(h2);
  const run2 = await thisRun(h2);
  expect(run2.runId).not.toBe(run1.runId);
  expect(second.outcome).toBe('Remediated');
  expect(second.escalation).toBeNull();

  // PagerDuty got the trigger, then the resolve with the same key: the incident is closed, paged once
  const pd = sent('pagerduty', wf);
  expect(pd.map((r) => [bodyOf(r).event_action, bodyOf(r).dedup_key, r.answer])).toEqual([
    ['trigger', wf, 202],
    ['resolve', wf, 202],
  ]);
  expect(pd[1].body).toEqual({ routing_key: sink.routingKey, event_action: 'resolve', dedup_key: wf });
  expect(sink.incidents.get(wf)).toMatchObject({ status: 'resolved', triggers: 1, resolves: 1 });
  // Slack and the webhook hear of the two approvals and the escalation, never of the resolve
  expect(sent('webhook', wf).map((r) => bodyOf(r).type)).toEqual([
    'vpsie-runbook.approval-pending',
    'vpsie-runbook.approval-pending',
  ]);
  expect(sent('slack', wf).map((r) => String(bodyOf(r).text).split(' ').slice(0, 3).join(' '))).toEqual([
    'Approval needed before',
    'Runbook escalated to',
    'Approval needed before',
  ]);
  await expectNoSecretIn(run1.run, first.escalation!.reason);
  await expectNoSecretIn(run2.run, uid!);
});
