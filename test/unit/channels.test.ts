/**
 * The channels' payloads, pure: each checked against the documented shape the test sink enforces (its zod
 * schemas and limits), including the largest evidence a run can carry.
 */
import { randomBytes } from 'node:crypto';
import {
  validateApprovalNotice,
  approvalCommands,
  shellQuote,
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
  slackApprovalMessage,
  slackEscalationMessage,
  type SlackMessage,
} from '../../src/channels/slack';
import { approvalDocument, escalationDocument, idempotencyKey } from '../../src/channels/webhook';
import { channelUrlProblem, secretPartsOf, snippet } from '../../src/channels/http';
import { utf8Length } from '../../src/runbook';
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
    const e = pagerDutyApprovalTrigger(notice, KEY, AT);
    expect(pagerDutyEvent.safeParse(e).error?.issues ?? []).toEqual([]);
    expect(e).toMatchObject({
      dedup_key: 'provisioning-failed/kube-system/ng-a-1/approval/delete-vpsienode',
      payload: { severity: 'warning', class: 'approval' },
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
