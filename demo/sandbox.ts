/**
 * The sandbox's pieces, started in the order they need each other (the slow, independent ones at once) and
 * stopped in reverse: the real etcd + kube-apiserver (test/support/control-plane.ts, with the project's CRDs and
 * RBAC), the Temporal dev server with its Web UI and the project's search attributes, the simulated VPSie API and
 * autoscaler (test/support/), the product's worker (its real activities, as the restricted identity
 * `vpsie-runbook`) and its alert receiver. Everything listens on 127.0.0.1.
 */
import { createWriteStream, writeFileSync, type WriteStream } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { KubernetesClient } from '../src/clients/kubernetes';
import { VPSieClient } from '../src/clients/vpsie';
import { DEFAULT_TASK_QUEUE } from '../src/config';
import { startReceiver, WEBHOOK_PATH, type ReceiverServer } from '../src/receiver';
import type { RunbookOptions } from '../src/runbook';
import { startDevServer, type DevServer } from '../src/temporal/dev-server';
import { freePort } from '../src/temporal/free-port';
import { createRunbookWorker } from '../src/worker';
import { SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';
import { ClusterSimulator } from '../test/support/cluster';
import { kubeconfigYaml, startControlPlane, type ControlPlane } from '../test/support/control-plane';
import { VPSieSimulator } from '../test/support/vpsie-simulator';
import { SANDBOX_NAMESPACE } from './causes';
import type { PortChoice } from './options';

/**
 * The simulated controller's limits (production: 10 minutes to provision, 15 to join), as the end-to-end tests
 * play them (test/support/runbook-e2e.ts SIM_LIMIT_MS): a failure shows within seconds.
 */
export const SANDBOX_LIMIT_MS = 10_000;

/**
 * Options of every run the receiver starts: the same limits as the simulated controller's, so a run stops
 * waiting when the controller would have, and the inputs' shortest waits (the tests' FAST_OPTIONS). Approvals
 * wait an hour, for a person (the controller deletes a Failed VPSieNode 30 minutes after it failed, though, as
 * upstream does: a run still waiting then ends VPSieNodeGone).
 */
export const SANDBOX_RUN_OPTIONS: RunbookOptions = {
  provisioningLimit: `${SANDBOX_LIMIT_MS}ms`,
  joiningLimit: `${SANDBOX_LIMIT_MS}ms`,
  recheckInterval: '10s',
  registrationWait: '10s',
  goneWait: '1m',
  replacementWait: '1m',
  readyWait: '2m',
  approvalTtl: '1h',
};

export const SANDBOX_TEMPORAL_NAMESPACE = 'default';

export interface SandboxOptions {
  dir: string;
  temporalCli: string;
  temporalPort: PortChoice;
  uiPort: PortChoice;
  receiverPort: PortChoice;
  /** A progress line: a piece is up (what, where, how long it took). */
  piece: (name: string, detail: string, ms: number) => void;
  /** Any other line for the person. */
  say: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Whether nothing listens on 127.0.0.1:port (a server there, or one on every address, refuses the bind). */
async function portFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export class Sandbox {
  controlPlane?: ControlPlane;
  temporal?: DevServer;
  vpsie?: VPSieSimulator;
  sim?: ClusterSimulator;
  receiver?: ReceiverServer;
  client?: Client;
  adminKubeConfig = new KubeConfig();
  readonly kubeconfig: string;
  readonly runbookKubeconfig: string;
  private readonly stops: { name: string; stop: () => Promise<unknown> }[] = [];
  private readonly logs = new Map<string, WriteStream>();
  /** The simulator's problems from before the stop (after it, requests to a stopping apiserver fail). */
  private simErrorsAtStop = 0;

  constructor(private readonly o: SandboxOptions) {
    this.kubeconfig = join(o.dir, 'kubeconfig');
    this.runbookKubeconfig = join(o.dir, 'kubeconfig-vpsie-runbook');
  }

  get receiverUrl(): string {
    if (!this.receiver) throw new Error('the receiver is not running');
    return `http://127.0.0.1:${this.receiver.port}${WEBHOOK_PATH}`;
  }

  /** A port for `flag`: the one asked for, or the default when free, else any free port (said so). */
  private async port(flag: string, choice: PortChoice): Promise<number> {
    if (choice.port === 0) return freePort();
    if (await portFree(choice.port)) return choice.port;
    if (choice.explicit) throw new Error(`${flag} ${choice.port}: something already listens on that port`);
    const port = await freePort();
    this.o.say(`port ${choice.port} is taken: using ${port} instead (${flag} picks one)`);
    return port;
  }

  /** A log file in the sandbox's directory, for what the person does not need on the terminal. */
  logFile(name: string): (line: string) => void {
    let stream = this.logs.get(name);
    if (!stream) {
      stream = createWriteStream(join(this.o.dir, name), { flags: 'a' });
      this.logs.set(name, stream);
    }
    const s = stream;
    return (line) => void (s.writable && s.write(`${new Date().toISOString()} ${line}\n`));
  }

  private async timed<T>(name: string, start: () => Promise<T>, detail: (v: T) => string): Promise<T> {
    const t0 = Date.now();
    const value = await start();
    this.o.piece(name, detail(value), Date.now() - t0);
    return value;
  }

  /** Starts every piece. On failure, what did start is stopped by {@link stop}, which the caller calls anyway. */
  async start(stopping: () => boolean): Promise<void> {
    const { o } = this;
    // All three first: a port given with a flag that is taken fails the demo before anything starts.
    const temporalPort = await this.port('--temporal-port', o.temporalPort);
    const uiPort = await this.port('--ui-port', o.uiPort);
    const receiverPort = await this.port('--receiver-port', o.receiverPort);

    const vpsie = this.timed(
      'VPSie API (simulated)',
      async () => {
        const v = new VPSieSimulator();
        await v.start();
        this.stops.push({ name: 'VPSie API (simulated)', stop: () => v.stop() });
        return (this.vpsie = v);
      },
      (v) => v.baseUrl,
    );
    const temporal = this.timed(
      'Temporal dev server + Web UI',
      async () => {
        const server = await startDevServer({
          binary: o.temporalCli,
          port: temporalPort,
          uiPort,
          namespace: SANDBOX_TEMPORAL_NAMESPACE,
          searchAttributes: SEARCH_ATTRIBUTES,
        });
        this.stops.push({ name: 'Temporal dev server', stop: () => server.stop() });
        return (this.temporal = server);
      },
      (s) => `${s.address}, UI ${s.uiUrl}, search attributes registered`,
    );
    const controlPlane = this.timed(
      'etcd + kube-apiserver',
      async () => {
        const cp = await startControlPlane({ workDir: join(o.dir, 'control-plane') });
        this.stops.push({ name: 'etcd + kube-apiserver', stop: () => cp.stop() });
        return (this.controlPlane = cp);
      },
      (cp) => `${cp.server}, CRDs and RBAC applied`,
    );
    const bundle = this.timed(
      'workflow bundle',
      async () => {
        const { code } = await bundleWorkflowCode({
          workflowsPath: require.resolve('../src/workflows'),
          logger: quietLogger(this.logFile('worker.log')),
        });
        const codePath = join(o.dir, 'workflow-bundle.js');
        writeFileSync(codePath, code);
        return codePath;
      },
      (p) => p,
    );
    const settled = await Promise.allSettled([vpsie, temporal, controlPlane, bundle]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (stopping()) return;
    const cp = await controlPlane;
    const server = await temporal;

    // kubeconfigs: the person's (admin) and the worker's (the restricted identity of deploy/kubernetes).
    const adminYaml = kubeconfigYaml(cp, cp.adminToken, { user: 'admin', namespace: SANDBOX_NAMESPACE });
    const runbookYaml = kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser });
    writeFileSync(this.kubeconfig, adminYaml, { mode: 0o600 });
    writeFileSync(this.runbookKubeconfig, runbookYaml, { mode: 0o600 });
    this.adminKubeConfig.loadFromString(adminYaml);
    const runbookKubeConfig = new KubeConfig();
    runbookKubeConfig.loadFromString(runbookYaml);

    const v = await vpsie;
    await this.timed(
      'autoscaler (simulated)',
      async () => {
        const sim = new ClusterSimulator({
          kubeConfig: this.adminKubeConfig,
          vpsie: v,
          namespace: SANDBOX_NAMESPACE,
          tickMs: 100,
          timings: { provisioningTimeoutMs: SANDBOX_LIMIT_MS, joiningTimeoutMs: SANDBOX_LIMIT_MS },
        });
        await sim.start();
        // Its objects go with the control plane: no cleanup calls to an apiserver that may be stopping already
        // (a Ctrl-C in a terminal signals etcd and kube-apiserver too).
        // Its loop finishes the tick in flight; when the apiserver went first, that tick's requests hang, so
        // it gets a few seconds, then the process's exit ends it.
        this.stops.push({
          name: 'autoscaler (simulated)',
          stop: () => Promise.race([sim.stop({ keepObjects: true }), sleep(3_000)]),
        });
        this.sim = sim;
      },
      () => `NodeGroups in ${SANDBOX_NAMESPACE}, controller pod ${this.sim?.controllerPod.name}`,
    );
    if (stopping()) return;

    const connection = await Connection.connect({ address: server.address });
    this.stops.push({ name: 'Temporal client', stop: () => connection.close() });
    this.client = new Client({ connection, namespace: SANDBOX_TEMPORAL_NAMESPACE });

    const codePath = await bundle;
    await this.timed(
      'worker',
      async () => {
        const native = await NativeConnection.connect({ address: server.address });
        const worker = await createRunbookWorker({
          connection: native,
          namespace: SANDBOX_TEMPORAL_NAMESPACE,
          taskQueue: DEFAULT_TASK_QUEUE,
          activities: createActivities({
            kubernetes: new KubernetesClient(runbookKubeConfig),
            vpsie: new VPSieClient({ baseUrl: v.baseUrl, token: VPSieSimulator.DEFAULT_TOKEN }),
          }),
          workflowBundle: { codePath },
        });
        const running = worker.run();
        running.catch((err: unknown) => o.say(`the worker stopped: ${(err as Error).message}`));
        this.stops.push({
          name: 'worker',
          stop: async () => {
            if (worker.getState() === 'RUNNING') worker.shutdown();
            await running.catch(() => undefined);
            await native.close();
          },
        });
      },
      () => `task queue ${DEFAULT_TASK_QUEUE}, as ${cp.runbookUser} (deploy/kubernetes)`,
    );
    if (stopping()) return;

    await this.timed(
      'alert receiver',
      async () => {
        const receiver = await startReceiver({
          connection,
          namespace: SANDBOX_TEMPORAL_NAMESPACE,
          taskQueue: DEFAULT_TASK_QUEUE,
          kubernetes: new KubernetesClient(runbookKubeConfig),
          host: '127.0.0.1',
          port: receiverPort,
          runOptions: SANDBOX_RUN_OPTIONS,
          log: this.logFile('receiver.log'),
        }).catch((err: unknown) => {
          throw new Error(`--receiver-port ${receiverPort}: ${(err as Error).message}`);
        });
        this.stops.push({ name: 'alert receiver', stop: () => receiver.close() });
        this.receiver = receiver;
      },
      () => `POST ${this.receiverUrl}`,
    );
  }

  /** Stops what started, last started first; each failure is said and the rest still stop. */
  async stop(): Promise<void> {
    this.simErrorsAtStop = this.sim?.errors.length ?? 0;
    for (const { name, stop } of this.stops.splice(0).reverse()) {
      const t0 = Date.now();
      try {
        await stop();
        if (name !== 'Temporal client') this.o.piece(`stopped ${name}`, '', Date.now() - t0);
      } catch (err) {
        this.o.say(`stopping ${name} failed: ${(err as Error).message}`);
      }
    }
    const simErrors = this.sim?.errors.slice(0, this.simErrorsAtStop) ?? [];
    if (simErrors.length)
      this.o.say(`the simulated autoscaler noted problems:\n    ${simErrors.slice(0, 10).join('\n    ')}`);
    const logs = [...this.logs.values()];
    this.logs.clear();
    await Promise.all(logs.map((s) => new Promise<void>((resolve) => s.end(() => resolve()))));
  }
}

/** The bundler's info lines are for the log file; warnings too, errors also reach the terminal via throw. */
function quietLogger(log: (line: string) => void) {
  const drop = () => undefined;
  return {
    log: drop,
    trace: drop,
    debug: drop,
    info: drop,
    warn: (m: string) => log(`workflow bundle: ${m}`),
    error: (m: string) => log(`workflow bundle: ${m}`),
  };
}
