/**
 * What `status`, `list`, `approve`/`reject` and `cleanup-orphans` print for people (`--output text`). Pure: the
 * caller passes the clock, so the unit tests read the exact lines.
 */
import type { DecisionRecord, PendingApproval } from '../runbook/approval';
import { formatDuration } from '../runbook/duration';
import type { OrphanMachine, OrphanSweepStatus } from '../runbook/orphans';
import { describeTarget, type StepTarget } from '../runbook/plan';
import { unclassified, type DiagnosisReport, type RunbookStatus } from '../runbook/report';
import type { RunRow } from './runs';

export const CLI_NAME = 'vpsie-runbook';

/** The run as the CLI names it back: what the person typed, and the workflow behind it. */
export interface RunMeta {
  /** What to type to name this run again: `ns/name` for a VPSieNode's run, else the workflow id. */
  arg: string;
  workflowId: string;
  runId: string;
  /** Temporal's execution status (`Running`, `Completed`, …). */
  execution: string;
}

const LABEL = 12;
const line = (label: string, text: string): string => `${label.padEnd(LABEL)}${text}`;
const indent = (text: string, by = 2): string => `${' '.repeat(by)}${text}`;

/** A time and how far it is from now: `2025-01-01T10:00:00.000Z (in 9m 58s)`, `(3m ago)`. */
export function when(iso: string, nowMs: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = t - nowMs;
  return `${iso} (${d >= 0 ? `in ${formatDuration(d)}` : `${formatDuration(-d)} ago`})`;
}

const TARGET_KINDS = new Set(['VPSieNode', 'VM', 'ClusterNode', 'NodeGroup', 'Replacement', 'Escalation']);

/** A plan step's target in words when the runbook's shape is known; else its JSON (a sweep's machines). */
export function targetText(target: unknown): string {
  const kind = (target as { kind?: unknown } | null)?.kind;
  if (typeof kind === 'string' && TARGET_KINDS.has(kind)) return describeTarget(target as StepTarget);
  return JSON.stringify(target);
}

/** A shell word: quoted when it has anything a shell would read. */
export const shellWord = (s: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

/** The commands that approve and reject the step, as the person types them. */
export function decisionCommands(arg: string, stepId: string): { approve: string; reject: string } {
  const base = (verb: string) =>
    `${CLI_NAME} ${verb} ${shellWord(arg)} --step ${shellWord(stepId)} --as <you>`;
  return { approve: base('approve'), reject: `${base('reject')} --reason '<why>'` };
}

function pendingLines(p: PendingApproval, approvers: string[], arg: string, nowMs: number): string[] {
  const cmd = decisionCommands(arg, p.stepId);
  return [
    'Waiting for approval',
    indent(line('step', `${p.stepId} (${p.kind})`)),
    indent(line('target', targetText(p.target))),
    indent(line('exactly', JSON.stringify(p.target))),
    ...(p.action ? [indent(line('action', p.action))] : []),
    indent(line('asked', p.requestedAt)),
    indent(line('expires', when(p.expiresAt, nowMs))),
    indent(line('who', approvers.length ? approvers.join(', ') : 'anyone allowed to signal this workflow')),
    indent(line('approve', cmd.approve)),
    indent(line('reject', cmd.reject)),
  ];
}

function decisionLine(d: DecisionRecord): string {
  const what = `${d.decision ?? '?'} ${d.stepId ?? '?'} by ${d.approver ?? (d.via === 'auto' ? 'autoApprove' : '?')}`;
  const why = d.reason ? `: ${d.reason}` : '';
  return `- ${d.at} ${what} via ${d.via}${why}: ${d.accepted ? 'accepted' : `refused (${d.refusal})`}`;
}

/** The `status` query's answer for a person. */
export function renderRunbookStatus(s: RunbookStatus, run: RunMeta, nowMs: number): string {
  const out: string[] = [
    line('Run', `${run.workflowId} (run ${run.runId}, ${run.execution})`),
    line('VPSieNode', `${s.ref.namespace}/${s.ref.name}`),
    line(
      'Started',
      `${s.startedAt}; ${s.checks} check${s.checks === 1 ? '' : 's'}, run ${s.run} of the chain`,
    ),
    line('Stage', `${s.stage} since ${s.stageSince}`),
  ];
  if (s.dryRun) out.push(line('Dry run', 'yes: diagnose and plan only'));
  if (s.progress) out.push(line('Progress', `${s.progress.kind}: ${s.progress.reason}`));
  if (s.nextCheckAt) out.push(line('Next check', when(s.nextCheckAt, nowMs)));
  if (s.cause)
    out.push(
      line('Cause', `${s.cause}${s.also.length ? ` (the evidence also shows ${s.also.join(', ')})` : ''}`),
    );
  if (s.reasons.length) {
    out.push('Reasons');
    for (const r of s.reasons)
      out.push(indent(`- ${r.says} [${r.source} ${r.field}: ${JSON.stringify(r.value)}]`));
  }
  if (s.plan.length) {
    out.push('Plan');
    const stateWidth = Math.max(...s.plan.map((p) => p.state.length));
    const idWidth = Math.max(...s.plan.map((p) => p.id.length));
    for (const p of s.plan) {
      const extra = [
        p.destructive ? 'needs approval' : '',
        p.wait ? `until ${p.wait.until}` : '',
        p.result ? `result: ${p.result}` : '',
      ].filter(Boolean);
      out.push(
        indent(
          `${p.state.padEnd(stateWidth)}  ${p.id.padEnd(idWidth)}  ${p.why}${extra.length ? ` (${extra.join('; ')})` : ''}`,
        ),
      );
    }
  }
  if (s.pendingApproval) out.push(...pendingLines(s.pendingApproval, s.approvers, run.arg, nowMs));
  // `decisions` holds every decision received, refused ones too (`refusedDecisions` is their subset).
  if (s.decisions.length) {
    out.push('Decisions');
    for (const d of s.decisions) out.push(indent(decisionLine(d)));
  }
  if (s.escalation) {
    const e = s.escalation;
    out.push(line('Escalation', `${e.kind}${e.step ? ` at ${e.step}` : ''}: ${e.reason}`));
    for (const ev of e.evidence) out.push(indent(`- ${ev}`));
    for (const c of e.record?.channels ?? [])
      out.push(indent(`${c.channel}: ${c.ok ? 'sent' : 'not sent'} (${c.detail})`));
  }
  if (s.replacement)
    out.push(
      line('Replacement', `${s.replacement.namespace}/${s.replacement.name} (uid ${s.replacement.uid})`),
    );
  if (s.error) out.push(line('Error', `${s.error.step}: ${s.error.type}: ${s.error.message}`));
  // Runs from before the receiver noted resolved alerts have no such field.
  if (s.alertResolved)
    out.push(
      line(
        'Alert',
        `${s.alertResolved.alertName} resolved at ${s.alertResolved.endsAt} (noted; the run goes on)`,
      ),
    );
  if (s.outcome) out.push(line('Outcome', `${s.outcome}${s.conclusion ? `: ${s.conclusion}` : ''}`));
  return out.join('\n');
}

/** A finished run's report read as a status, for runs whose `status` query no worker answers. */
export function statusFromReport(r: DiagnosisReport): RunbookStatus {
  return {
    ...unclassified(),
    ref: r.ref,
    stage: 'completed',
    stageSince: r.finishedAt,
    startedAt: r.startedAt,
    run: r.runs,
    checks: r.checks,
    progress: r.progress,
    nextCheckAt: null,
    outcome: r.outcome,
    error: r.error,
    cause: r.cause ?? null,
    reasons: r.reasons ?? [],
    plan: r.plan ?? [],
    decisions: r.decisions ?? [],
    escalation: r.escalation ?? null,
    replacement: r.replacement ?? null,
    conclusion: r.conclusion ?? null,
  };
}

const machineText = (m: OrphanMachine): string =>
  `${m.kind} ${m.hostname || m.identifier} (id ${m.id}, identifier ${m.identifier}${m.resourceIdentifier ? `, cluster ${m.resourceIdentifier}` : ''}${m.nodeGroup ? `, NodeGroup ${m.nodeGroup.namespace}/${m.nodeGroup.name}` : ''})`;

/** The sweep's `status` for a person: what it found, what it waits for, what it did. */
export function renderSweepStatus(s: OrphanSweepStatus, run: RunMeta, nowMs: number): string {
  const out: string[] = [
    line('Sweep', `${run.workflowId} (run ${run.runId}, ${run.execution})`),
    line('Started', s.startedAt),
    line('Stage', s.stage),
    line(
      'Options',
      `grace ${s.grace}, mode ${s.mode}${s.dryRun ? ', dry run' : ''}, approvers ${s.approvers.length ? s.approvers.join(', ') : 'anyone'}`,
    ),
    line(
      'Tally',
      `${s.candidates.length} orphan${s.candidates.length === 1 ? '' : 's'}, ${s.removed.length} removed, ${s.kept.length} kept, ${s.refused.length} refused, ${s.failed.length} failed`,
    ),
  ];
  const verdicts = (title: string, list: { machine: OrphanMachine; why: string }[]) => {
    if (!list.length) return;
    out.push(title);
    for (const v of list) out.push(indent(`- ${machineText(v.machine)}: ${v.why}`));
  };
  verdicts('Orphans', s.candidates);
  if (s.removed.length) {
    out.push('Removed');
    for (const r of s.removed) out.push(indent(`- ${machineText(r.machine)}: ${r.result} at ${r.at}`));
  }
  verdicts('Refused', s.refused);
  verdicts('Failed', s.failed);
  if (s.current) out.push(line('Removing', machineText(s.current)));
  if (s.pendingApproval) out.push(...pendingLines(s.pendingApproval, s.approvers, run.arg, nowMs));
  if (s.decisions.length) {
    out.push('Decisions');
    for (const d of s.decisions) out.push(indent(decisionLine(d)));
  }
  for (const n of s.notes) out.push(line('Note', n));
  if (s.error) out.push(line('Error', `${s.error.step}: ${s.error.type}: ${s.error.message}`));
  if (s.outcome) out.push(line('Outcome', s.outcome));
  return out.join('\n');
}

/** `list`'s table: one run per line; with pending approvals, the step and when it expires. */
export function renderRows(rows: RunRow[], nowMs: number): string {
  const table = rows.map((r) => [
    r.workflowId,
    r.status,
    r.stage ?? '-',
    r.cause ?? '-',
    r.outcome ?? '-',
    r.nodeGroup ?? '-',
    r.startTime,
    r.pendingApproval
      ? `${r.pendingApproval.stepId} until ${when(r.pendingApproval.expiresAt, nowMs)}`
      : r.approvalPending && r.status === 'Running'
        ? 'yes'
        : '-',
  ]);
  const head = ['WORKFLOW ID', 'STATUS', 'STAGE', 'CAUSE', 'OUTCOME', 'NODEGROUP', 'STARTED', 'APPROVAL'];
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...table.map(fmt)].join('\n');
}

/** What an accepted decision prints. */
export function renderDecision(d: DecisionRecord, workflowId: string): string {
  return `${d.decision === 'approve' ? 'approved' : 'rejected'} ${d.stepId} of ${workflowId} as ${d.approver} at ${d.at}${d.reason ? ` (${d.reason})` : ''}`;
}
