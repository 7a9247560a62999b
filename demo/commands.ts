/**
 * The commands and links the demo prints, so that each one works as pasted against the sandbox: the
 * `vpsie-runbook` CLI and the Temporal CLI with `--address`, the Web UI with a visibility query. Pure.
 */
import { workflowIdFor } from '../src/runbook';

/** A word as a POSIX shell reads it back: quoted when it holds anything the shell would interpret. */
export const shellWord = (s: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

export const RUNBOOK_WORKFLOW_TYPE = 'provisioningFailedRunbook';
/** The runs of this demo's worker, newest first, as the UI lists them. */
export const RUNS_QUERY = `WorkflowType = "${RUNBOOK_WORKFLOW_TYPE}"`;
/** The on-call's inbox (README "Readable in the Temporal UI"). */
export const PENDING_QUERY = 'ApprovalPending = true AND ExecutionStatus = "Running"';

export interface Endpoints {
  /** Temporal frontend, host:port. */
  temporal: string;
  /** Web UI base URL, e.g. http://127.0.0.1:8233. */
  ui: string;
  namespace: string;
  /** The `vpsie-runbook` CLI as typed, e.g. `node dist/cli/main.js`. */
  cli: string;
  /** The Temporal CLI as typed: `temporal`, or its path when it is not on PATH. */
  temporalCli: string;
  /** Who decides in the printed approve / reject commands. */
  approver: string;
}

export class Commands {
  constructor(private readonly e: Endpoints) {}

  /** The UI's list of workflows filtered by a visibility query. */
  uiQuery(query: string): string {
    return `${this.e.ui}/namespaces/${encodeURIComponent(this.e.namespace)}/workflows?query=${encodeURIComponent(query)}`;
  }

  /** One run in the UI (its latest run). */
  uiRun(workflowId: string): string {
    return `${this.e.ui}/namespaces/${encodeURIComponent(this.e.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  }

  private cli(...words: string[]): string {
    return [this.e.cli, ...words.map(shellWord), '--address', this.e.temporal].join(' ');
  }

  list(pendingOnly = false): string {
    return pendingOnly ? this.cli('list', '--pending-approval') : this.cli('list');
  }

  status(ref: string): string {
    return this.cli('status', ref);
  }

  approve(ref: string, stepId?: string): string {
    return this.cli('approve', ref, ...(stepId ? ['--step', stepId] : []), '--as', this.e.approver);
  }

  reject(ref: string, stepId?: string): string {
    return this.cli(
      'reject',
      ref,
      ...(stepId ? ['--step', stepId] : []),
      '--as',
      this.e.approver,
      '--reason',
      'not now',
    );
  }

  validateNodeGroup(ref: string, env: Record<string, string>): string {
    const vars = Object.entries(env).map(([k, v]) => `${k}=${shellWord(v)}`);
    return [...vars, this.cli('validate-nodegroup', ref)].join(' ');
  }

  private temporal(...words: string[]): string {
    return [this.e.temporalCli, 'workflow', ...words.map(shellWord), '--address', this.e.temporal].join(' ');
  }

  temporalList(query: string): string {
    return this.temporal('list', '--query', query);
  }

  temporalStatus(workflowId: string): string {
    return this.temporal('query', '--workflow-id', workflowId, '--type', 'status');
  }

  temporalDecide(workflowId: string, stepId: string, decision: 'approve' | 'reject'): string {
    const input = {
      stepId,
      decision,
      approver: this.e.approver,
      ...(decision === 'reject' ? { reason: 'not now' } : {}),
    };
    return this.temporal(
      'update',
      'execute',
      '--workflow-id',
      workflowId,
      '--name',
      'decide',
      '--input',
      JSON.stringify(input),
    );
  }

  /** What the UI's "Send a Signal" takes to approve or reject (the `approve` / `reject` signals). */
  uiSignal(stepId: string): string {
    return `send the signal approve (or reject) with input ${JSON.stringify({ stepId, approver: this.e.approver })}`;
  }
}

/** `kube-system/ng-a-1` and its workflow id. */
export function runRef(namespace: string, name: string): { ref: string; workflowId: string } {
  return { ref: `${namespace}/${name}`, workflowId: workflowIdFor({ namespace, name }) };
}
