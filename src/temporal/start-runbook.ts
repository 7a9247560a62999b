import {
  compileWorkflowOptions,
  WorkflowClient,
  type Client,
  type WorkflowHandle,
  type WorkflowOptions,
} from '@temporalio/client';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
} from '@temporalio/common';
import { DEFAULT_TASK_QUEUE } from '../config';
import { InvalidInputError, resolveInput, workflowIdFor, type RunbookInput } from '../runbook';
import type { provisioningFailedRunbook } from '../workflows';

/**
 * One run per VPSieNode, whoever starts it:
 * - while a run for the VPSieNode is open (waiting for the controller, or continued as new), a second start
 *   starts nothing and answers with that run (USE_EXISTING): a re-sent alert joins the run in progress;
 * - once it closed, however it ended, a start begins a new run (ALLOW_DUPLICATE): the node is in trouble again,
 *   which is a new incident.
 */
export const RUNBOOK_START_POLICIES = {
  workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
  workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
} as const;

/** Who started a run and why: shown in the Temporal UI (static summary and details) and kept in its memo. */
export interface RunOrigin {
  /** `alertmanager` (the receiver), `cli`, or `api` (a program calling startRunbook). */
  source: 'alertmanager' | 'cli' | 'api';
  /** The alert that started it (`alertname`), when one did. */
  alertName?: string;
  /** The VPSieNode's NodeGroup, when the starter knows it (the alert's `nodegroup` label). */
  nodeGroup?: string;
  /** The alert's labels and annotations, shown in the run's details. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The alert's identity: Alertmanager's fingerprint and `startsAt` (one firing). */
  fingerprint?: string;
  startsAt?: string;
}

/** The memo key that holds a run's {@link RunOrigin}: the receiver reads it to tell a repeat from a new firing. */
export const ORIGIN_MEMO_KEY = 'origin';
/** The runbook's text and the project's README, linked from every run's details. */
export const RUNBOOK_LINKS = {
  runbook: 'https://github.com/vpsieinc/vpsie-k8s-autoscaler/blob/main/docs/runbooks/provisioning-failed.md',
} as const;

/** `VPSieNode ns/name, NodeGroup ng, alert A`: one line for the UI's list of runs. */
export function runSummary(input: { namespace: string; name: string }, origin: RunOrigin): string {
  return [
    `VPSieNode ${input.namespace}/${input.name}`,
    `NodeGroup ${origin.nodeGroup ?? 'unknown'}`,
    origin.alertName ? `alert ${origin.alertName}` : `started by ${origin.source}`,
  ].join(', ');
}

/** The run's details (Markdown, as the UI renders them): the alert's labels and annotations, and the links. */
export function runDetails(origin: RunOrigin): string {
  const table = (title: string, kv: Record<string, string> | undefined): string[] =>
    kv && Object.keys(kv).length
      ? [
          `**${title}**`,
          '',
          ...Object.keys(kv)
            .sort()
            .map((k) => `- \`${k}\`: ${kv[k].replace(/\s+/g, ' ').slice(0, 500)}`),
          '',
        ]
      : [];
  const runbookUrl = origin.annotations?.runbook_url;
  return [
    `Started by ${origin.source}${origin.alertName ? ` for alert ${origin.alertName}` : ''}${
      origin.startsAt ? `, firing since ${origin.startsAt}` : ''
    }.`,
    '',
    ...table('Labels', origin.labels),
    ...table('Annotations', origin.annotations),
    `Runbook: ${runbookUrl ?? RUNBOOK_LINKS.runbook}`,
  ].join('\n');
}

export interface StartRunbookOptions {
  /** Default `vpsie-runbook`, the worker's default. */
  taskQueue?: string;
  /** Who starts it; default `{source: 'api'}`. */
  origin?: RunOrigin;
}

export interface StartedRunbook {
  workflowId: string;
  /** The run that handles this VPSieNode now: the one just started, or the open one a repeated start joined. */
  runId: string;
  /**
   * Follows the VPSieNode's runs by workflow id: `status` asks the current run, `result()` waits for the end of
   * the chain (continue-as-new included).
   */
  handle: WorkflowHandle<typeof provisioningFailedRunbook>;
  /** True when this call created the run; false when it joined the run already open (the server's answer). */
  started: boolean;
}

/**
 * The SDK's WorkflowClient, also answering the start response's `started`: with USE_EXISTING its `start` hides
 * whether the call created the run or joined the open one, which a starter would otherwise have to read from the
 * run's history (the receiver counts both, and answers Alertmanager with which). The request is the one `start`
 * builds; the client's interceptors are not run (the project configures none).
 */
class StartReportingClient extends WorkflowClient {
  async startReporting(
    workflowType: string,
    options: WorkflowOptions & { args: unknown[] },
  ): Promise<{ runId: string; started: boolean }> {
    const request = await this.createStartWorkflowRequest({
      workflowType,
      headers: {},
      options: compileWorkflowOptions(options),
    });
    try {
      const response = await this.workflowService.startWorkflowExecution(request);
      // `started` came with the conflict policies (USE_EXISTING) these starts rely on: a server that takes them says
      return { runId: response.runId, started: response.started === true };
    } catch (err) {
      // as `start` does (gRPC status 6: ALREADY_EXISTS)
      if ((err as { code?: unknown }).code === 6)
        throw new WorkflowExecutionAlreadyStartedError(
          'Workflow execution already started',
          options.workflowId,
          workflowType,
        );
      this.rethrowGrpcError(err, 'Failed to start Workflow', { workflowId: options.workflowId });
    }
  }
}

const reportingClients = new WeakMap<Client, StartReportingClient>();

function reportingClientOf(client: Client): StartReportingClient {
  let c = reportingClients.get(client);
  if (!c) {
    c = new StartReportingClient({
      connection: client.connection,
      namespace: client.options.namespace,
      identity: client.options.identity,
      dataConverter: client.options.dataConverter,
    });
    reportingClients.set(client, c);
  }
  return c;
}

/**
 * Starts the "Provisioning Failed" runbook for one VPSieNode, or joins the run already open for it. The input is
 * checked before anything is sent, so bad input never becomes a run: InvalidInputError names the field.
 */
export async function startRunbook(
  client: Client,
  input: RunbookInput,
  opts: StartRunbookOptions = {},
): Promise<StartedRunbook> {
  if ((input as unknown as Record<string, unknown> | null)?.continuation !== undefined) {
    throw new InvalidInputError('continuation is set only by the workflow itself when it continues as new');
  }
  const { ref } = resolveInput(input);
  const workflowId = workflowIdFor(ref);
  const origin = opts.origin ?? { source: 'api' };
  const { runId, started } = await reportingClientOf(client).startReporting('provisioningFailedRunbook', {
    taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
    workflowId,
    args: [input],
    staticSummary: runSummary(ref, origin),
    staticDetails: runDetails(origin),
    memo: { [ORIGIN_MEMO_KEY]: origin },
    ...RUNBOOK_START_POLICIES,
  });
  // The start's own handle is tied to the first run it names, which for a joined chain may not be the first
  // run; a handle by id alone follows whatever run is current.
  return { workflowId, runId, handle: client.workflow.getHandle(workflowId), started };
}
