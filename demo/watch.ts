/**
 * Follows the demo's runs on the Temporal server and says what a person would want to hear: the cause each run
 * named, each approval it asks for with the commands that answer it, and how it ended. It reads what the UI
 * shows (the search attributes of `describe`), plus the `status` query for a pending approval and the result of
 * a closed run.
 */
import type { Client } from '@temporalio/client';
import type { DiagnosisReport } from '../src/runbook';
import { describeTarget, type StepTarget } from '../src/runbook/plan';
import { statusQuery } from '../src/workflows/messages';
import { ApprovalPending, RunbookCause, RunbookOutcome } from '../src/workflows/search-attributes';
import type { StagedFailure } from './causes';
import type { Commands } from './commands';

export interface TrackedRun {
  failure: StagedFailure;
  /** `namespace/name`, what the CLI takes. */
  ref: string;
  workflowId: string;
}

interface Seen {
  cause?: string;
  pendingStep?: string;
  ended?: boolean;
}

const targetWords = (target: unknown): string => {
  try {
    return describeTarget(target as StepTarget);
  } catch {
    return JSON.stringify(target);
  }
};

export class RunWatcher {
  private readonly seen = new Map<string, Seen>();
  private lastError = '';

  constructor(
    private readonly client: Client,
    private readonly commands: Commands,
    private readonly print: (line: string) => void,
  ) {}

  /** Looks at every run once and prints what changed since the last look. */
  async poll(runs: readonly TrackedRun[]): Promise<void> {
    for (const run of runs) {
      const seen = this.seen.get(run.workflowId) ?? {};
      this.seen.set(run.workflowId, seen);
      if (seen.ended) continue;
      try {
        await this.look(run, seen);
        this.lastError = '';
      } catch (err) {
        // Said once, not at every look: Temporal may be restarting, or the run not started yet.
        const message = err instanceof Error ? err.message : String(err);
        if (message !== this.lastError) this.print(`${run.ref}: cannot read its run (${message})`);
        this.lastError = message;
      }
    }
  }

  private async look(run: TrackedRun, seen: Seen): Promise<void> {
    const handle = this.client.workflow.getHandle(run.workflowId);
    const d = await handle.describe();
    const cause = d.typedSearchAttributes.get(RunbookCause);
    if (cause && cause !== seen.cause) {
      seen.cause = cause;
      const staged = run.failure.cause;
      this.print(
        `${run.ref}: diagnosed ${cause}${cause === staged ? '' : ` (the demo staged ${staged})`}  ${this.commands.uiRun(run.workflowId)}`,
      );
    }
    if (d.status.name !== 'RUNNING' && d.status.name !== 'CONTINUED_AS_NEW') {
      seen.ended = true;
      const outcome = d.typedSearchAttributes.get(RunbookOutcome);
      let why = '';
      if (d.status.name === 'COMPLETED') {
        const report = (await handle.result()) as DiagnosisReport;
        if (report.escalation) why = `: ${report.escalation.reason}`;
      }
      this.print(`${run.ref}: ended ${outcome ?? d.status.name}${why}`);
      return;
    }
    if (d.typedSearchAttributes.get(ApprovalPending) !== true) {
      if (seen.pendingStep) await this.decided(run, seen.pendingStep);
      seen.pendingStep = undefined;
      return;
    }
    const pending = (await handle.query(statusQuery)).pendingApproval;
    if (!pending || pending.stepId === seen.pendingStep) return;
    if (seen.pendingStep) await this.decided(run, seen.pendingStep);
    seen.pendingStep = pending.stepId;
    const c = this.commands;
    this.print(
      [
        `${run.ref}: waits for approval of ${pending.stepId}: ${pending.action ?? targetWords(pending.target)} (expires ${pending.expiresAt})`,
        `    approve:  ${c.approve(run.ref, pending.stepId)}`,
        `    reject:   ${c.reject(run.ref, pending.stepId)}`,
        `    temporal: ${c.temporalDecide(run.workflowId, pending.stepId, 'approve')}`,
        `    web UI:   ${c.uiSignal(pending.stepId)}`,
      ].join('\n'),
    );
  }

  /** Says who decided the step the run waited for (or that it stopped waiting), and what the run does now. */
  private async decided(run: TrackedRun, stepId: string): Promise<void> {
    const s = await this.client.workflow.getHandle(run.workflowId).query(statusQuery);
    const d = [...s.decisions].reverse().find((x) => x.stepId === stepId && x.accepted);
    const now = s.currentStep ? `; now ${s.currentStep}` : s.stage === 'completed' ? '' : `; now ${s.stage}`;
    this.print(
      d
        ? `${run.ref}: ${d.decision === 'approve' ? 'approved' : 'rejected'} ${stepId} (${d.approver ?? 'autoApprove'} via ${d.via})${now}`
        : `${run.ref}: no longer waits for ${stepId}${now}`,
    );
  }
}
