/**
 * The channels' payloads, pure: each checked against the documented shape the test sink enforces (its zod
 * schemas and limits), including the largest evidence a run can carry.
 */
import { randomBytes } from 'node:crypto';
import {
  validateApprovalNotice,
  approvalCommands,
  shellQuote,
  MAX_TARGET_BYTES,
  type ApprovalNotice,
} from '../../src/channels/notice';
import {
  approvalDedupKey,
  pagerDutyApprovalTrigger,
  pagerDutyDedupKey,
  pagerDutyResolve,
  pagerDutyTrigger,
  PAGERDUTY_LIMITS,
} from '../../src/channels/pagerduty';
import {
  mrkdwnEscape,
  SLACK_LIMITS,
  slackApprovalMessage,
  slackEscalationMessage,
  type SlackMessage,
} from '../../src/channels/slack';
import { approvalDocument, escalationDocument, idempotencyKey } from '../../src/channels/webhook';
import { channelUrlProblem, secretPartsOf, snippet } from '../../src/channels/http';
import { utf8Length } from '../../src/runbook';
import { approvalTargetOf, type OrphanMachine } from '../../src/runbook/orphans';
import { vpsieNodeYaml } from '../../src/activities/escalation';
import { bundleOf, escalationOf, rawVPSieNode } from '../support/bundles';
import {
  approvalDocument as approvalSchema,
  escalationDocument as escalationSchema,
  pagerDutyEvent,
  readabilityProblems,
  slackMessage,
} from '../support/escalation-sink';

const KEY = randomBytes(16).toString('hex');
const AT = '2026-11-24T10:12:30.000Z';

/** Everything the sink checks on a Slack message. */
function slackProblems(m: SlackMessage): string[] {
  const parsed = slackMessage.safeParse(m);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  return [
    ...readabilityProblems(m.text, 'text'),
    ...m.blocks.flatMap((b, i) =>
      (b.type === 'section'
        ? [b.text?.text, ...(b.fields ?? []).map((f) => f.text)]
        : b.type === 'context'
          ? b.elements.map((e) => e.text)
          : []
      ).flatMap((t) => (t ? readabilityProblems(t, `blocks[${i}]`) : [])),
    ),
  ];
}

/** The largest bundle: every part at its cap, in multi-byte text. */
function hugeBundle() {
  const line = 'ノードが登録されていません <&> 🚫 '.repeat(60);
  return bundleOf({
    escalation: escalationOf({
      reason: `${line}\n${line}`,
      evidence: Array.from({ length: 300 }, (_, i) => `${i}: ${line}`),
      workflowId: `provisioning-failed/kube-system/${'n'.repeat(253)}`,
    }),
    vpsieNodeYaml: {
      status: 'ok',
      value: vpsieNodeYaml(rawVPSieNode({ metadata: { name: 'n', annotations: { a: line.repeat(300) } } })),
    },
  });
}

describe('PagerDuty Events v2 payloads', () => {
  it('a trigger passes the documented shape: routing key, dedup_key = workflow id, summary, severity, group', () => {
    const e = pagerDutyTrigger(bundleOf(), KEY, AT);
    expect(pagerDutyEvent.safeParse(e).error?.issues ?? []).toEqual([]);
    expect(e).toMatchObject({
      routing_key: KEY,
      event_action: 'trigger',
      dedup_key: 'provisioning-failed/kube-system/ng-a-1',
      payload: {
        summary: expect.stringMatching(/^VPSieNode kube-system\/ng-a-1: VMCreationFailed: VPSie refused/),
        source: 'vpsienode/kube-system/ng-a-1',
        severity: 'critical',
        timestamp: AT,
        component: 'nodegroup/ng-a',
        group: 'vpsie-support',
        class: 'VMCreationFailed',
        custom_details: { vpsieNodeYaml: { status: 'ok' }, audience: 'vpsie-support' },
      },
    });
  });

  it('the largest evidence still makes an event within 512 KB, with summary ≤ 1024 and dedup_key ≤ 255', () => {
    const b = hugeBundle();
    const e = pagerDutyTrigger(b, KEY, AT);
    expect(pagerDutyEvent.safeParse(e).error?.issues ?? []).toEqual([]);
    expect(utf8Length(JSON.stringify(e))).toBeLessThanOrEqual(PAGERDUTY_LIMITS.eventBytes);
    expect(e.payload?.summary.length).toBeLessThanOrEqual(1024);
    expect(e.dedup_key.length).toBeLessThanOrEqual(255);
  });

  it('the dedup key is the workflow id, or for a very long one its start and a hash: stable and distinct', () => {
    expect(pagerDutyDedupKey('provisioning-failed/ns/a')).toBe('provisioning-failed/ns/a');
    const long = `provisioning-failed/kube-system/${'a'.repeat(253)}`;
    const other = `provisioning-failed/kube-system/${'a'.repeat(252)}b`;
    expect(pagerDutyDedupKey(long)).toHaveLength(255);
    expect(pagerDutyDedupKey(long)).toBe(pagerDutyDedupKey(long));
    expect(pagerDutyDedupKey(long)).not.toBe(pagerDutyDedupKey(other));
    expect(approvalDedupKey('wf', 'delete-vpsienode')).toBe('wf/approval/delete-vpsienode');
  });

  it('resolve carries the same routing key and dedup key, and nothing else', () => {
    const e = pagerDutyResolve('provisioning-failed/kube-system/ng-a-1', KEY);
    expect(e).toEqual({
      routing_key: KEY,
      event_action: 'resolve',
      dedup_key: 'provisioning-failed/kube-system/ng-a-1',
    });
    expect(pagerDutyEvent.safeParse(e).success).toBe(true);
  });
});

describe('Slack messages', () => {
  it('an escalation reads as a message: reason, audience and why, cause, machine, Node, evidence, plan', () => {
    const m = slackEscalationMessage(bundleOf());
    expect(slackProblems(m)).toEqual([]);
    expect(m.text).toBe(
      'Runbook escalated to VPSie support (critical): VPSieNode kube-system/ng-a-1: VMCreationFailed: VPSie refused to create the VM: the NodeGroup names offering 999, which VPSie does not have.',
    );
    const all = JSON.stringify(m.blocks);
    for (const part of [
      'Escalated: VPSieNode kube-system/ng-a-1',
      '*For*\\nVPSie support: cause VMCreationFailed: VPSie did not create the VM',
      '*VM in VPSie*\\nVM 4242 ng-a-1-x1y2z: error',
      '*Node*\\nng-a-1-abcde: Ready False',
      'NodeGroup names offering 999',
      '`escalate` running: people, with cause VMCreationFailed',
      'Warning PhaseFailed: VPSieNode failed: offering 999 not found',
      'temporal workflow query --workflow-id provisioning-failed/kube-system/ng-a-1 --type status',
    ])
      expect(all).toContain(part);
    // a quoted JSON log line is shown as code, not as prose
    expect(all).toContain('`controllerLogs line: {\\"level\\":\\"error\\"');
  });

  it('the largest evidence stays within the block limits, escaped and readable', () => {
    const m = slackEscalationMessage(hugeBundle());
    expect(slackProblems(m)).toEqual([]);
    expect(m.text).toContain('&lt;&amp;&gt;');
  });

  it('escapes mrkdwn', () => {
    expect(mrkdwnEscape('a <b> & c')).toBe('a &lt;b&gt; &amp; c');
  });
});

describe('the generic webhook document', () => {
  it('is the bundle with its type, version and time, as the README documents it', () => {
    const doc = escalationDocument(bundleOf(), AT);
    expect(escalationSchema.safeParse(doc).error?.issues ?? []).toEqual([]);
    expect(doc).toMatchObject({
      type: 'vpsie-runbook.escalation',
      version: 1,
      sentAt: AT,
      audience: 'vpsie-support',
    });
    expect(escalationSchema.safeParse(escalationDocument(hugeBundle(), AT)).success).toBe(true);
    expect(idempotencyKey('a', 'b', null)).toMatch(/^[0-9a-f]{32}$/);
    expect(idempotencyKey('a', 'b', null)).toBe(idempotencyKey('a', 'b', null));
    expect(idempotencyKey('a', 'b', null)).not.toBe(idempotencyKey('a', 'b', 'c'));
  });
});

describe('approval announcements', () => {
  const notice: ApprovalNotice = validateApprovalNotice({
    workflowId: 'provisioning-failed/kube-system/ng-a-1',
    ref: { namespace: 'kube-system', name: 'ng-a-1' },
    stepId: 'delete-vpsienode',
    kind: 'delete-vpsienode',
    target: { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid: 'u1' },
    action: 'Delete VPSieNode kube-system/ng-a-1 (uid u1) so that its NodeGroup creates a replacement.',
    expiresAt: '2026-11-24T11:12:00Z',
    approvers: ['alice', 'bob'],
  });

  it('gives the exact commands that approve and reject the step', () => {
    expect(approvalCommands(notice.workflowId, notice.stepId)).toEqual({
      approve: `temporal workflow update execute --workflow-id provisioning-failed/kube-system/ng-a-1 --name decide --input '{"stepId": "delete-vpsienode", "decision": "approve", "approver": "<you>"}'`,
      reject: `temporal workflow update execute --workflow-id provisioning-failed/kube-system/ng-a-1 --name decide --input '{"stepId": "delete-vpsienode", "decision": "reject", "approver": "<you>"}'`,
    });
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('on Slack: the step, its exact target, the expiry, the approvers and the commands, readable', () => {
    const m = slackApprovalMessage(notice);
    expect(slackProblems(m)).toEqual([]);
    expect(m.text).toBe(
      'Approval needed before delete-vpsienode on VPSieNode kube-system/ng-a-1: Delete VPSieNode kube-system/ng-a-1 (uid u1) so that its NodeGroup creates a replacement.. Expires 2026-11-24T11:12:00.000Z.',
    );
    const all = JSON.stringify(m.blocks);
    for (const part of [
      '*Target*\\nVPSieNode kube-system/ng-a-1 (uid u1)',
      '*Expires*\\n2026-11-24T11:12:00.000Z',
      '*Who may approve*\\nalice, bob',
      '\\"approver\\": \\"&lt;you&gt;\\"',
      '\\"uid\\": \\"u1\\"',
    ])
      expect(all).toContain(part);
  });

  it('on the webhook and (when asked) PagerDuty: documented shapes', () => {
    const doc = approvalDocument(notice, AT);
    expect(approvalSchema.safeParse(doc).error?.issues ?? []).toEqual([]);
    expect(doc.approval).toMatchObject({
      stepId: 'delete-vpsienode',
      targetDescription: 'VPSieNode kube-system/ng-a-1 (uid u1)',
      expiresAt: '2026-11-24T11:12:00.000Z',
      approvers: ['alice', 'bob'],
    });
    expect(doc.vpsieNode).toEqual({ namespace: 'kube-system', name: 'ng-a-1' });
    const e = pagerDutyApprovalTrigger(notice, KEY, AT);
    expect(pagerDutyEvent.safeParse(e).error?.issues ?? []).toEqual([]);
    expect(e).toMatchObject({
      dedup_key: 'provisioning-failed/kube-system/ng-a-1/approval/delete-vpsienode',
      payload: {
        summary:
          'Approval needed before delete-vpsienode on VPSieNode kube-system/ng-a-1: VPSieNode kube-system/ng-a-1 (uid u1); expires 2026-11-24T11:12:00.000Z',
        source: 'vpsienode/kube-system/ng-a-1',
        severity: 'warning',
        class: 'approval',
      },
    });
  });

  it('refuses a bad notice, naming the field', () => {
    expect(() => validateApprovalNotice({ ...notice, stepId: '' })).toThrow(
      /^approval\.stepId: must be a non-empty string/,
    );
    expect(() => validateApprovalNotice({ ...notice, expiresAt: 'soon' })).toThrow(
      /^approval\.expiresAt: must be an ISO 8601 time/,
    );
    expect(() => validateApprovalNotice({ ...notice, ref: { namespace: 'kube-system' } })).toThrow(
      /^approval\.ref\.name must be a VPSieNode name/,
    );
  });
});

describe('approval announcements of the orphaned-VM sweep (ref null: about no VPSieNode)', () => {
  const WF = 'orphaned-vm-cleanup/manual-1';
  const machine = (i: number, over: Partial<OrphanMachine> = {}): OrphanMachine => ({
    kind: 'vm',
    id: 4200 + i,
    identifier: `5f0c${String(i).padStart(4, '0')}-1b2c-4d5e-8f90-0123456789ab`,
    hostname: `ng-a-${(0x0a1b2c00 + i).toString(16)}`,
    ip: `10.0.0.${i % 250}`,
    status: 'running',
    createdOn: '2026-11-24T08:00:00Z',
    resourceIdentifier: null,
    nodeGroup: { namespace: 'kube-system', name: 'ng-a' },
    belongs: 'a VM in GET /vm named after a VPSieNode of NodeGroup kube-system/ng-a (ng-a-<hex suffix>)',
    ...over,
  });
  const vm = machine(1);
  const worker = machine(2, {
    kind: 'cluster-node',
    id: 0,
    hostname: 'ng-a-0a1b2c02-k8s-worker',
    resourceIdentifier: 'c0ffee00-0000-4000-8000-000000000001',
    belongs: 'a worker of VPSie cluster c0ffee00-0000-4000-8000-000000000001, which a NodeGroup names',
  });
  /** What the sweep passes for one machine (mode each): the target as `status.pendingApproval.target` shows it. */
  const each: ApprovalNotice = validateApprovalNotice({
    workflowId: WF,
    ref: null,
    stepId: `terminate-${vm.identifier}`,
    kind: 'terminate-machine',
    target: approvalTargetOf(vm),
    action: `Remove ${vm.hostname} from VPSie (no VPSieNode or Node claims it)`,
    expiresAt: '2026-11-24T11:12:00Z',
    approvers: ['alice'],
  });
  /** Mode all with the most machines a sweep offers, each with long texts. */
  const all = (count: number): ApprovalNotice =>
    validateApprovalNotice({
      ...each,
      stepId: 'terminate-all',
      target: Array.from({ length: count }, (_, i) =>
        approvalTargetOf(
          machine(i, i % 2 ? { belongs: `${'a worker of a VPSie cluster <&> '.repeat(8)}${i}` } : {}),
        ),
      ),
      action: `Remove these ${count} machines from VPSie; each is re-checked right before its delete`,
    });

  it('is valid with ref null and keeps it null; a missing or malformed ref is refused naming the field', () => {
    expect(each.ref).toBeNull();
    expect(each.target).toEqual(approvalTargetOf(vm));
    const withoutRef: Record<string, unknown> = { ...each };
    delete withoutRef.ref;
    expect(() => validateApprovalNotice(withoutRef)).toThrow(/^approval\.ref: must be \{namespace, name\}$/);
    expect(() => validateApprovalNotice({ ...each, ref: 'sweep' })).toThrow(
      /^approval\.ref: must be \{namespace, name\}$/,
    );
    expect(() =>
      validateApprovalNotice({ ...each, ref: { namespace: 'kube-system', name: 'Bad_Name' } }),
    ).toThrow(/^approval\.ref\.name must be a VPSieNode name \(DNS subdomain\), got "Bad_Name"$/);
  });

  it('takes a sweep of 100 machines in one approval, and refuses a target past the limit, naming it', () => {
    const big = all(100);
    expect(big.target).toHaveLength(100);
    const huge = { ...each, target: 'x'.repeat(MAX_TARGET_BYTES) };
    expect(() => validateApprovalNotice(huge)).toThrow(
      `approval.target must be at most ${MAX_TARGET_BYTES} bytes of JSON, got ${MAX_TARGET_BYTES + 2}`,
    );
  });

  it('on Slack: says it is the orphaned-VM sweep, with the machine, the expiry, the approvers and the commands', () => {
    const m = slackApprovalMessage(each);
    expect(slackProblems(m)).toEqual([]);
    expect(m.text).toBe(
      `Approval needed before terminate-${vm.identifier} in the orphaned-VM sweep: Remove ${vm.hostname} from VPSie (no VPSieNode or Node claims it). Expires 2026-11-24T11:12:00.000Z.`,
    );
    expect(m.blocks[0]).toEqual({
      type: 'header',
      text: {
        type: 'plain_text',
        text: `Approval needed: terminate-${vm.identifier} in the orphaned-VM sweep`,
      },
    });
    const all = JSON.stringify(m.blocks);
    for (const part of [
      `*Target*\\nVM 4201 ${vm.hostname} (identifier ${vm.identifier})`,
      '*Expires*\\n2026-11-24T11:12:00.000Z (then the sweep removes nothing more and ends)',
      '*Who may approve*\\nalice',
      '\\"removal\\": \\"DELETE /vm/4201\\"',
      mrkdwnEscape(approvalCommands(WF, `terminate-${vm.identifier}`).approve).replace(/"/g, '\\"'),
      mrkdwnEscape(approvalCommands(WF, `terminate-${vm.identifier}`).reject).replace(/"/g, '\\"'),
    ])
      expect(all).toContain(part);
    // nothing pretends there is a VPSieNode, nor prints a missing one
    expect(`${m.text}${all}`).not.toMatch(/on VPSieNode|undefined|null\//);
  });

  it('on Slack, a cluster node is named with its VPSie cluster', () => {
    const n = validateApprovalNotice({
      ...each,
      stepId: `terminate-${worker.identifier}`,
      target: approvalTargetOf(worker),
    });
    const fields = JSON.stringify(slackApprovalMessage(n).blocks[2]);
    expect(fields).toContain(
      `*Target*\\ncluster node ng-a-0a1b2c02-k8s-worker of VPSie cluster c0ffee00-0000-4000-8000-000000000001 (identifier ${worker.identifier})`,
    );
  });

  it('on Slack, all at once: the list as JSON while it fits, one line per machine with its removal past that', () => {
    const two = slackApprovalMessage(all(2));
    expect(slackProblems(two)).toEqual([]);
    expect(JSON.stringify(two.blocks)).toContain(
      '*Target*\\n2 machines: VM 4200 ng-a-a1b2c00; VM 4201 ng-a-a1b2c01',
    );
    expect(JSON.stringify(two.blocks)).toContain('\\"removal\\": \\"DELETE /vm/4201\\"');

    const m = slackApprovalMessage(all(100));
    expect(slackProblems(m)).toEqual([]);
    expect(m.blocks.length).toBeLessThanOrEqual(SLACK_LIMITS.blocks);
    expect(m.text).toMatch(
      /^Approval needed before terminate-all in the orphaned-VM sweep: Remove these 100 machines/,
    );
    const text = JSON.stringify(m.blocks);
    expect(text).toContain(`*Target*\\n100 machines: VM 4200 ng-a-a1b2c00; VM 4201 ng-a-a1b2c01;`);
    expect(text).toContain('*Exact target* (100 machines, each with the request that removes it;');
    // every machine's removal is there, or the message says how many more the status holds
    const shown = Array.from({ length: 100 }, (_, i) => text.includes(`\`DELETE /vm/${4200 + i}\``));
    const more = /_… (\d+) more machines in the status_/.exec(text);
    expect(shown.filter(Boolean).length + Number(more?.[1] ?? 0)).toBe(100);
    expect(shown.filter(Boolean).length).toBeGreaterThan(50);
    // the last blocks are still the commands, whatever the list took
    expect(JSON.stringify(m.blocks.at(-3))).toContain('*Approve*');
    expect(JSON.stringify(m.blocks.at(-2))).toContain('*Reject*');
  });

  it('on the webhook: vpsieNode null, the exact target and the command, passing the documented schema', () => {
    const doc = approvalDocument(each, AT);
    expect(approvalSchema.safeParse(doc).error?.issues ?? []).toEqual([]);
    expect(doc).toEqual({
      type: 'vpsie-runbook.approval-pending',
      version: 1,
      sentAt: AT,
      workflowId: WF,
      vpsieNode: null,
      approval: {
        stepId: `terminate-${vm.identifier}`,
        kind: 'terminate-machine',
        target: approvalTargetOf(vm),
        targetDescription: `VM 4201 ${vm.hostname} (identifier ${vm.identifier})`,
        action: each.action,
        expiresAt: '2026-11-24T11:12:00.000Z',
        approvers: ['alice'],
        ...(({ approve, reject }) => ({ approveCommand: approve, rejectCommand: reject }))(
          approvalCommands(WF, `terminate-${vm.identifier}`),
        ),
      },
    });
    expect(approvalSchema.safeParse(approvalDocument(all(100), AT)).success).toBe(true);
    // the schema takes null, and still refuses any other vpsieNode that is not {namespace, name}
    for (const vpsieNode of [
      undefined,
      {},
      'sweep',
      { namespace: 'kube-system' },
      { namespace: '', name: '' },
    ])
      expect(approvalSchema.safeParse({ ...doc, vpsieNode }).success).toBe(false);
  });

  it('on PagerDuty (when asked): source vpsie-runbook/orphaned-vm-cleanup, within the documented limits', () => {
    const e = pagerDutyApprovalTrigger(each, KEY, AT);
    expect(pagerDutyEvent.safeParse(e).error?.issues ?? []).toEqual([]);
    expect(e).toMatchObject({
      dedup_key: `${WF}/approval/terminate-${vm.identifier}`,
      payload: {
        summary: `Approval needed before terminate-${vm.identifier} in the orphaned-VM sweep: VM 4201 ${vm.hostname} (identifier ${vm.identifier}); expires 2026-11-24T11:12:00.000Z`,
        source: 'vpsie-runbook/orphaned-vm-cleanup',
        severity: 'warning',
        class: 'approval',
        custom_details: { target: approvalTargetOf(vm), approvers: ['alice'] },
      },
    });
    const big = pagerDutyApprovalTrigger(all(100), KEY, AT);
    expect(pagerDutyEvent.safeParse(big).error?.issues ?? []).toEqual([]);
    expect(big.payload?.summary.length).toBeLessThanOrEqual(PAGERDUTY_LIMITS.summary);
    expect(utf8Length(JSON.stringify(big))).toBeLessThanOrEqual(PAGERDUTY_LIMITS.eventBytes);
    expect((big.payload?.custom_details as { target: unknown[] }).target).toHaveLength(100);
  });
});

describe('secrets in channel errors', () => {
  it('a URL is checked without quoting it, and every secret part of it is redacted from answers', () => {
    expect(channelUrlProblem('http://hooks.example.com/T/B/secret')).toBe(
      'must use https (http only to a loopback host)',
    );
    expect(channelUrlProblem('https://u:p@hooks.example.com/x')).toBe('must not contain a user or password');
    expect(channelUrlProblem('https://hooks.slack.com/services/T/B/x')).toBeNull();
    const url = 'https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop';
    expect(snippet(`no hook at ${url} (/services/T0001/B0001/abcdefghijklmnop)`, secretPartsOf(url))).toBe(
      '"no hook at [REDACTED] ([REDACTED])"',
    );
  });
});
