/**
 * Slack incoming webhooks: `POST {text, blocks}` to the webhook URL (itself a secret). The message is for a
 * person: the reason first, then who it is for and why, the evidence as short lines, the plan and the way to the
 * whole bundle; never a JSON dump. Within Slack's limits: a header at most 150 characters, a section's text
 * 3000, at most 10 fields of 2000 each, at most 50 blocks; `text` (the notification) stays under 3000.
 */
import type { BundlePlanStep, EvidenceBundle } from '../runbook/evidence-bundle';
import { postJson, type PostOptions } from './http';
import type { OrphanMachine } from '../runbook/orphans';
import {
  approvalCommands,
  describeNoticeTarget,
  statusCommand,
  SWEEP_SUBJECT,
  type ApprovalNotice,
} from './notice';

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | { type: 'section'; text?: { type: 'mrkdwn'; text: string }; fields?: { type: 'mrkdwn'; text: string }[] }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] }
  | { type: 'divider' };

export const SLACK_LIMITS = {
  text: 3000,
  header: 150,
  section: 3000,
  field: 2000,
  fields: 10,
  blocks: 50,
  contextElements: 10,
} as const;

export const AUDIENCE_NAMES: Record<EvidenceBundle['audience'], string> = {
  'vpsie-support': 'VPSie support',
  'platform-team': 'the platform team',
};

/** At most `max` characters; a cut never splits an escape such as `&amp;`. */
const fit = (s: string, max: number) =>
  s.length > max ? `${s.slice(0, max - 1).replace(/&[a-z]{0,3}$/, '')}…` : s;

/** Slack's mrkdwn needs &, < and > escaped; a ``` inside a code block would end it. */
export function mrkdwnEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
const code = (s: string) => `\`${mrkdwnEscape(s).replace(/`/g, "'")}\``;
const codeBlock = (lines: string[], max: number): string => {
  const body = lines.map((l) => mrkdwnEscape(l).replace(/```/g, "'''")).join('\n');
  return `\`\`\`${fit(body, max - 6)}\`\`\``;
};

/** Evidence may quote a zap JSON log line verbatim: such a line is shown as code, the rest as text. */
const prose = (s: string) => (/[{[]\s*"/.test(s) ? code(s) : mrkdwnEscape(s));

const section = (text: string): SlackBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: fit(text, SLACK_LIMITS.section) },
});

/** Lines under a bold title, as many whole lines as fit in one section. */
function listSection(title: string, lines: string[], more?: string): SlackBlock | null {
  if (lines.length === 0) return null;
  const head = `*${title}*`;
  let text = head;
  let shown = 0;
  for (const line of lines) {
    const next = `${text}\n• ${line}`;
    if (next.length > SLACK_LIMITS.section - 100) break;
    text = next;
    shown += 1;
  }
  if (shown < lines.length) text += `\n_… ${lines.length - shown} more${more ? ` ${more}` : ''}_`;
  return section(text);
}

const stepLine = (s: BundlePlanStep) =>
  `${code(s.id)} ${s.state}: ${prose(fit(s.target, 300))}${s.result ? ` — ${prose(fit(s.result, 300))}` : ''}`;

/** The escalation as a Slack message. */
export function slackEscalationMessage(b: EvidenceBundle): SlackMessage {
  const who = AUDIENCE_NAMES[b.audience];
  const ref = `${b.vpsieNode.namespace}/${b.vpsieNode.name}`;
  const text = fit(
    mrkdwnEscape(`Runbook escalated to ${who} (${b.severity}): ${b.summary}`),
    SLACK_LIMITS.text,
  );

  const machine =
    b.machine.status === 'ok'
      ? b.machine.value.vm
        ? `VM ${b.machine.value.vm.id} ${b.machine.value.vm.hostname}: ${b.machine.value.status}`
        : b.machine.value.clusterNode
          ? `cluster node ${b.machine.value.clusterNode.hostname}: ${b.machine.value.status}`
          : 'no machine found'
      : b.machine.status === 'error'
        ? `not read (${b.machine.type})`
        : `not read: ${b.machine.why}`;
  const node =
    b.node.status === 'ok'
      ? b.node.value
        ? `${b.node.value.node.name}: Ready ${b.node.value.node.readyStatus ?? 'unknown'}`
        : 'no Node registered'
      : b.node.status === 'error'
        ? `not read (${b.node.type})`
        : `not read: ${b.node.why}`;
  const fields = [
    `*For*\n${who}: ${mrkdwnEscape(b.routedBecause)}`,
    `*Cause*\n${b.cause ?? 'not classified'}`,
    `*Kind / step*\n${b.kind} / ${b.step ?? 'none'}`,
    `*Severity*\n${b.severity}`,
    `*NodeGroup*\n${mrkdwnEscape(b.nodeGroup ?? 'unknown')}`,
    `*VM in VPSie*\n${mrkdwnEscape(machine)}`,
    `*Node*\n${mrkdwnEscape(node)}`,
  ].map((t) => ({ type: 'mrkdwn' as const, text: fit(t, SLACK_LIMITS.field) }));

  const blocks: (SlackBlock | null)[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: fit(`Escalated: VPSieNode ${ref}`, SLACK_LIMITS.header) },
    },
    section(prose(b.reason)),
    { type: 'section', fields: fields.slice(0, SLACK_LIMITS.fields) },
    listSection(
      'Evidence',
      b.evidence.map((l) => prose(fit(l, 500))),
      'lines in the bundle',
    ),
    listSection('Plan so far', b.plan.map(stepLine)),
    listSection(
      'Decisions',
      b.decisions.map(
        (d) =>
          `${d.accepted ? '' : '(refused) '}${d.decision ?? '?'} ${d.stepId ? code(d.stepId) : ''} by ${mrkdwnEscape(d.approver ?? d.via)} at ${d.at}`,
      ),
    ),
    b.events.status === 'ok'
      ? listSection(
          'Events (latest last)',
          b.events.value.slice(-8).map(
            (e) =>
              // the controller's messages quote VPSie's JSON answers: those are shown as code
              `${mrkdwnEscape(`${e.type ?? ''} ${e.reason ?? ''}${e.count > 1 ? ` ×${e.count}` : ''}`)}: ${prose(fit(e.message ?? '', 300))}`,
          ),
        )
      : null,
    (() => {
      if (b.controllerLogs.status !== 'ok') return null;
      const lines = b.controllerLogs.value.pods.flatMap((p) => p.lines).slice(-10);
      if (lines.length === 0) return null;
      return section(
        `*Controller log (last lines)*\n${codeBlock(
          lines.map((l) => fit(l, 280)),
          SLACK_LIMITS.section - 40,
        )}`,
      );
    })(),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: fit(
            `Workflow ${code(b.workflowId)} run ${code(b.runId)}. The whole evidence (VPSieNode YAML, Events, logs): ${code(statusCommand(b.workflowId))}, or the webhook / PagerDuty incident.`,
            SLACK_LIMITS.section,
          ),
        },
      ],
    },
  ];
  return { text, blocks: blocks.filter((x): x is SlackBlock => x !== null).slice(0, SLACK_LIMITS.blocks) };
}

/**
 * The exact target under its title: as JSON when it fits one section (always, for the runbook's targets); a sweep's
 * list of machines too long for that is one line per machine, with the request that removes it, over as many
 * sections as `room` blocks allow, and says where every field is.
 */
function exactTargetBlocks(n: ApprovalNotice, room: number): SlackBlock[] {
  const json = JSON.stringify(n.target, null, 2) ?? 'none';
  const fits = mrkdwnEscape(json).length <= SLACK_LIMITS.section - 40;
  if (n.ref !== null || fits || !Array.isArray(n.target))
    return [section(`*Exact target*\n${codeBlock([json], SLACK_LIMITS.section - 20)}`)];
  const machines = n.target as Partial<OrphanMachine & { removal: string }>[];
  const lines = machines.map(
    (m) =>
      `${mrkdwnEscape(fit(describeNoticeTarget(m), 400))}, created ${mrkdwnEscape(m.createdOn ?? 'unknown')}: ${code(fit(m.removal ?? '', 400))}`,
  );
  const blocks: SlackBlock[] = [];
  let text = `*Exact target* (${machines.length} machines, each with the request that removes it; every field: ${code(statusCommand(n.workflowId))} or the webhook)`;
  let shown = 0;
  for (const line of lines) {
    const next = `${text}\n• ${line}`;
    if (next.length <= SLACK_LIMITS.section - 100) {
      text = next;
      shown += 1;
      continue;
    }
    if (blocks.length + 1 >= room) break;
    blocks.push(section(text));
    text = `• ${line}`;
    shown += 1;
  }
  if (shown < lines.length) text += `\n_… ${lines.length - shown} more machines in the status_`;
  blocks.push(section(text));
  return blocks;
}

/** A pending approval as a Slack message: the step, its exact target, the expiry and the commands. */
export function slackApprovalMessage(n: ApprovalNotice): SlackMessage {
  // The runbook's approvals are about a VPSieNode; the orphaned-VM sweep's (ref null) about machines in VPSie.
  const ref = n.ref ? `${n.ref.namespace}/${n.ref.name}` : null;
  const about = ref ? `on VPSieNode ${ref}` : `in ${SWEEP_SUBJECT}`;
  const target = describeNoticeTarget(n.target);
  const { approve, reject } = approvalCommands(n.workflowId, n.stepId);
  const text = fit(
    mrkdwnEscape(
      `Approval needed before ${n.stepId} ${about}${n.action ? `: ${n.action}` : ''}. Expires ${n.expiresAt}.`,
    ),
    SLACK_LIMITS.text,
  );
  const head: SlackBlock[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: fit(`Approval needed: ${n.stepId} ${ref ? `on ${ref}` : about}`, SLACK_LIMITS.header),
      },
    },
    section(prose(n.action ?? `${ref ? 'The runbook' : 'The sweep'} wants to run ${n.stepId} on ${target}.`)),
    {
      type: 'section',
      fields: [
        `*Step*\n${code(n.stepId)} (${n.kind})`,
        `*Target*\n${prose(target)}`,
        `*Expires*\n${n.expiresAt} (${ref ? 'then the run escalates and does nothing' : 'then the sweep removes nothing more and ends'})`,
        `*Who may approve*\n${n.approvers.length ? mrkdwnEscape(n.approvers.join(', ')) : 'anyone who may signal the workflow'}`,
      ].map((t) => ({ type: 'mrkdwn' as const, text: fit(t, SLACK_LIMITS.field) })),
    },
  ];
  const tail: SlackBlock[] = [
    section(`*Approve*\n${codeBlock([approve], SLACK_LIMITS.section - 20)}`),
    section(`*Reject*\n${codeBlock([reject], SLACK_LIMITS.section - 20)}`),
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: fit(`Workflow ${code(n.workflowId)}. Replace ${mrkdwnEscape('<you>')} with your name.`, 3000),
        },
      ],
    },
  ];
  const blocks = [...head, ...exactTargetBlocks(n, SLACK_LIMITS.blocks - head.length - tail.length), ...tail];
  return { text, blocks };
}

/** One POST to the incoming webhook; Slack answers 200 `ok`. */
export async function postToSlack(url: string, message: SlackMessage, opts: PostOptions): Promise<string> {
  const answer = await postJson('slack', url, message, opts);
  return `posted to Slack (HTTP ${answer.status})`;
}
