/**
 * The whole product end to end, for one test file: the simulated VPSie and autoscaler (SimTest), the product's
 * worker with its real activities (restricted Kubernetes identity, VPSie client pointed at the simulator) on the
 * shared workflow bundle, and runs started the way an alert starts them. Reads go through the `status` query;
 * decisions through the `decide` update or the signals, as a person sends them.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import type { ChannelsConfig } from '../../src/channels';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { VPSieClient } from '../../src/clients/vpsie';
import type {
  DecisionResult,
  DiagnosisReport,
  PendingApproval,
  RunbookOptions,
  RunbookStatus,
} from '../../src/runbook';
import { startRunbook } from '../../src/temporal/start-runbook';
import { createRunbookWorker } from '../../src/worker';
import { approveSignal, decideUpdate, rejectSignal, statusQuery } from '../../src/workflows/messages';
import type { provisioningFailedRunbook } from '../../src/workflows/provisioning-failed';
import { LABEL_SIMULATOR, type VPSieNodeObj } from './cluster';
import { SimTest, uniq } from './cluster/test-helpers';
import type { ClusterSimulatorOptions } from './cluster/types';
import { kubeConfigFor } from './kube';
import { connectTemporal, uniqueTaskQueue, type TemporalTestContext } from './temporal';
import { VPSieSimulator, type RecordedRequest } from './vpsie-simulator';

export type RunbookHandle = WorkflowHandle<typeof provisioningFailedRunbook>;

/**
 * The controller's limits as the simulator plays them in these tests (it fails or times out nodes after these),
 * and the same limits given to the runbook, so that it stops waiting when the controller would have. A healthy
 * replacement must provision and join within them too, on a loaded machine: 5 s was seen to time one out with two
 * test runs sharing the two cores, and 10 s (a replacement at 10.6 s) with a test run and a second full run beside it.
 */
export const SIM_LIMIT_MS = 15_000;

/**
 * Short waits: the input's minimum for each (10 s), so that an expiry test waits 10 s, not minutes. Waits that
 * are met end at the first look that sees it (looks start at 1 s apart).
 */
export const FAST_OPTIONS: RunbookOptions = {
  provisioningLimit: `${SIM_LIMIT_MS}ms`,
  joiningLimit: `${SIM_LIMIT_MS}ms`,
  recheckInterval: '10s',
  approvalRecheckInterval: '10s',
  registrationWait: '10s',
  goneWait: '1m',
  replacementWait: '1m',
  readyWait: '2m',
  approvalTtl: '10m',
};

export class RunbookE2E {
  readonly t = new SimTest();
  ctx!: TemporalTestContext;
  readonly taskQueue: string;
  private worker?: Worker;
  private running?: Promise<void>;
  private readonly scenarios: Promise<unknown>[] = [];

  constructor(prefix: string) {
    this.taskQueue = uniqueTaskQueue(prefix);
  }

  /**
   * Starts the simulators and the worker; call in beforeAll. `channels`: the escalation channels the worker's
   * activities use (unset: escalations are Kubernetes Events only).
   */
  async start(
    prefix: string,
    simOptions: Partial<ClusterSimulatorOptions> = {},
    channels?: ChannelsConfig,
  ): Promise<void> {
    await this.t.start(prefix, {
      ...simOptions,
      timings: { provisioningTimeoutMs: SIM_LIMIT_MS, joiningTimeoutMs: SIM_LIMIT_MS, ...simOptions.timings },
    });
    this.ctx = await connectTemporal();
    const codePath = process.env.VPSIE_TEST_WORKFLOW_BUNDLE;
    this.worker = await createRunbookWorker({
      connection: this.ctx.nativeConnection,
      namespace: 'default',
      taskQueue: this.taskQueue,
      activities: createActivities({
        kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
        vpsie: new VPSieClient({
          baseUrl: this.t.vpsie.baseUrl,
          token: VPSieSimulator.DEFAULT_TOKEN,
          timeoutMs: 5_000,
        }),
        // only this file's simulated controller: parallel test files run their own in kube-system too
        controller: { labelSelector: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${this.t.sim.id}` },
        ...(channels ? { channels } : {}),
      }),
      ...(codePath ? { workflowBundle: { codePath } } : {}),
    });
    this.running = this.worker.run();
  }

  /** Stops the product's worker only (the servers and simulators go on); `stop` still ends the rest. */
  async stopWorker(): Promise<void> {
    this.worker?.shutdown();
    this.worker = undefined;
    await this.running;
  }

  /**
   * Scenarios staged at once (in beforeAll), each awaited by its own test: one a test never awaits (a run with
   * -t) raises no unhandled rejection, and `stop` first waits for them all. Answers `scenarios`.
   */
  staged<T extends Record<string, Promise<unknown>>>(scenarios: T): T {
    for (const p of Object.values(scenarios)) {
      p.catch(() => undefined);
      this.scenarios.push(p);
    }
    return scenarios;
  }

  /** Call in afterAll. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.scenarios);
    await this.stopWorker();
    await this.ctx?.close();
    await this.t.stop();
  }

  /**
   * A new NodeGroup whose one VPSieNode gets a machine that never boots (ProvisioningTimeout once the limit
   * passes); resolves once the VPSieNode has its VM id.
   */
  async stuckNode(prefix: string): Promise<{ ng: string; vn: VPSieNodeObj }> {
    const ng = uniq(prefix);
    await this.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
    await this.t.sim.createNodeGroup(ng);
    const [vn] = await this.t.waitFor(`${ng}'s VPSieNode with its VM id`, async () => {
      const vns = await this.t.listVNs(ng);
      return vns.length === 1 && vns[0].spec.vpsieInstanceID > 0 ? vns : undefined;
    });
    return { ng, vn };
  }

  /** What an alert does: starts (or joins) the run for a VPSieNode of this file's namespace. */
  async alert(name: string, options: RunbookOptions = {}): Promise<RunbookHandle> {
    const { handle } = await startRunbook(
      this.ctx.client,
      { namespace: this.t.ns, name, options: { ...FAST_OPTIONS, ...options } },
      { taskQueue: this.taskQueue },
    );
    return handle as RunbookHandle;
  }

  status(handle: RunbookHandle): Promise<RunbookStatus> {
    return handle.query(statusQuery);
  }

  /** Polls `status` until `ok`; fails naming `what` and showing the last status. */
  async statusWhen(
    handle: RunbookHandle,
    what: string,
    ok: (s: RunbookStatus) => boolean,
    timeoutMs = 90_000,
  ): Promise<RunbookStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: RunbookStatus | undefined;
    let error: unknown;
    for (;;) {
      try {
        last = await this.status(handle);
        if (ok(last)) return last;
        if (last.stage === 'completed')
          throw new Error(`run completed (${last.outcome}) before ${what}: ${JSON.stringify(last, null, 1)}`);
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('run completed')) throw err;
        error = err; // a query can reach a run before its first workflow task completed
      }
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; last status ${JSON.stringify(last, null, 1)}${error ? `; ${String(error)}` : ''}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until the run asks for approval of `stepId`, and answers what it shows the approver. */
  async pending(handle: RunbookHandle, stepId: string, timeoutMs?: number): Promise<PendingApproval> {
    const s = await this.statusWhen(
      handle,
      `approval of ${stepId}`,
      (x) => x.pendingApproval?.stepId === stepId,
      timeoutMs,
    );
    return s.pendingApproval!;
  }

  /** A person's decision through the `decide` update: answers the recorded decision, or rejects with why. */
  decide(
    handle: RunbookHandle,
    stepId: string,
    decision: 'approve' | 'reject',
    approver = 'alice',
    reason?: string,
  ): Promise<DecisionResult> {
    return handle.executeUpdate(decideUpdate, {
      args: [{ stepId, decision, approver, ...(reason !== undefined ? { reason } : {}) }],
    });
  }

  /** The same through a signal (fire and forget). */
  signal(
    handle: RunbookHandle,
    stepId: string,
    decision: 'approve' | 'reject',
    approver = 'alice',
  ): Promise<void> {
    return handle.signal(decision === 'approve' ? approveSignal : rejectSignal, { stepId, approver });
  }

  result(handle: RunbookHandle): Promise<DiagnosisReport> {
    return handle.result();
  }

  /** Requests the product made to VPSie (the simulated controller's carry its own User-Agent). */
  productRequests(method?: string, path?: string | RegExp): RecordedRequest[] {
    return this.t.vpsie
      .requestsTo(method, path)
      .filter((r) => (r.userAgent ?? '').startsWith('vpsie-runbook/'));
  }

  /** The last VPSie request so far: requests after it belong to whoever took the mark. */
  mark(): number {
    return this.t.vpsie.requestsTo().at(-1)?.seq ?? 0;
  }

  /** What the product changed in VPSie since `since` (anything but a read), as `METHOD path`. */
  productWrites(since = 0): string[] {
    return this.productRequests()
      .filter((r) => r.seq > since && r.method !== 'GET')
      .map((r) => `${r.method} ${r.path}`);
  }

  /**
   * Deletes of a machine VPSie received since `since`, by anyone, as `DELETE path by product|controller`: the
   * controller removes a deleted VPSieNode's machine through `…/delete/slave` with its identifier in the body,
   * or `DELETE /vm/{id}`; the product's "Manual VM Cleanup" does the same.
   */
  machineDeletes(machine: { identifier: string; vmId?: number | null }, since = 0): string[] {
    return this.t.vpsie
      .requestsTo('DELETE')
      .filter(
        (r) =>
          r.seq > since &&
          ((!!machine.vmId && r.path === `/vm/${machine.vmId}`) ||
            (r.body as { identifier?: string } | undefined)?.identifier === machine.identifier),
      )
      .map(
        (r) =>
          `${r.method} ${r.path} by ${(r.userAgent ?? '').startsWith('vpsie-runbook/') ? 'product' : 'controller'}`,
      );
  }
}

/** Each plan step's id and state, in order: what a person sees of a run's progress. */
export const stepStates = (s: { plan?: readonly { id: string; state: string }[] | null }) =>
  (s.plan ?? []).map((x) => [x.id, x.state]);

/**
 * The states of a delete and recreate (ending at the VPSieNode's deletion and the replacement) whose
 * replacement came within the first wait, so the forced reconciliation was skipped.
 */
export const RECREATED_AT_ONCE: readonly [string, string][] = [
  ['wait-vpsienode-gone', 'done'],
  ['wait-replacement', 'done'],
  ['reconcile-nodegroup', 'skipped'],
  ['wait-replacement-after-reconcile', 'skipped'],
  ['wait-replacement-ready', 'done'],
];
