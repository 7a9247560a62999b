/**
 * The servers and processes of one bench run, started once and stopped in reverse order: the real etcd +
 * kube-apiserver (test/support/control-plane.ts, with an audit log of the product's identity), the Temporal
 * dev server (SQLite file, as `npm start` keeps its state), the simulated VPSie API, the two workflow bundles,
 * and the child processes: the product's worker, the floor worker and the receiver (each its own process, so
 * the bench's own load does not share their event loop, and the worker's memory is its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { RunbookOptions } from '../src/runbook';
import { findTemporalCli } from '../src/temporal/cli-binary';
import { freePort } from '../src/temporal/free-port';
import { startDevServer, type DevServer } from '../src/temporal/dev-server';
import { SEARCH_ATTRIBUTES } from '../src/workflows/search-attributes';
import { kubeconfigYaml, startControlPlane, type ControlPlane } from '../test/support/control-plane';
import { VPSieSimulator } from '../test/support/vpsie-simulator';
import { auditArgs, writeAuditPolicy } from './audit';
import { buildProduct } from './build';
import { REPO_ROOT } from './paths';
import { READY_PREFIX } from './proc/child';
import type { ReceiverChildConfig } from './proc/receiver';
import type { FloorWorkerConfig } from './proc/floor-worker';

export { REPO_ROOT };
export const PRODUCT_TASK_QUEUE = 'vpsie-runbook-bench';
export const FLOOR_TASK_QUEUE = 'vpsie-runbook-bench-floor';
export const TEMPORAL_NAMESPACE = 'default';

export interface Child {
  name: string;
  pid: number;
  process: ChildProcess;
  details: Record<string, unknown>;
  stop(): Promise<void>;
}

/** Every child process started by this bench run, so that SIGINT and errors can kill what is left. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** Kills every child process still running (SIGKILL): the last resort of a forced stop. */
export function killChildren(): void {
  for (const c of children) c.kill('SIGKILL');
}

const quiet = () => undefined;
const bundleLogger = { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };

export class Stack {
  controlPlane?: ControlPlane;
  temporal?: DevServer;
  vpsie?: VPSieSimulator;
  client?: Client;
  connection?: Connection;
  admin = new KubeConfig();
  runbookKubeconfig = '';
  auditLog = '';
  /** The product built as `npm run build` lays it out: `<productRoot>/dist/main.js`, `dist/cli/main.js`. */
  productRoot = '';
  floorBundle = '';
  worker?: Child;
  floorWorker?: Child;
  receiver?: Child;
  private readonly stops: { name: string; stop: () => Promise<unknown> }[] = [];

  constructor(
    readonly dir: string,
    private readonly progress: (line: string) => void,
  ) {}

  get address(): string {
    if (!this.temporal) throw new Error('Temporal is not running');
    return this.temporal.address;
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    const temporalCli = await findTemporalCli();
    if (!temporalCli)
      throw new Error('no Temporal CLI found: run `npm run setup` once (it builds the Temporal CLI)');
    const policy = writeAuditPolicy(this.dir);
    this.auditLog = join(this.dir, 'kube-apiserver-audit.log');

    const vpsie = (async () => {
      const v = new VPSieSimulator();
      await v.start();
      this.stops.push({ name: 'VPSie simulator', stop: () => v.stop() });
      this.vpsie = v;
    })();
    const temporal = (async () => {
      const server = await startDevServer({
        binary: temporalCli,
        dbFile: join(this.dir, 'temporal.sqlite'),
        namespace: TEMPORAL_NAMESPACE,
        searchAttributes: SEARCH_ATTRIBUTES,
      });
      this.stops.push({ name: 'Temporal dev server', stop: () => server.stop() });
      this.temporal = server;
    })();
    const controlPlane = (async () => {
      const cp = await startControlPlane({
        workDir: join(this.dir, 'control-plane'),
        extraApiServerArgs: auditArgs(policy, this.auditLog),
      });
      this.stops.push({ name: 'etcd + kube-apiserver', stop: () => cp.stop() });
      this.controlPlane = cp;
    })();
    const bundles = (async () => {
      this.productRoot = await buildProduct(join(this.dir, 'build'));
      const floor = await bundleWorkflowCode({
        workflowsPath: require.resolve('./floor-workflows'),
        logger: bundleLogger,
      });
      this.floorBundle = join(this.dir, 'floor-bundle.js');
      writeFileSync(this.floorBundle, floor.code);
    })();
    const settled = await Promise.allSettled([vpsie, temporal, controlPlane, bundles]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.progress(
      `servers up, the product built, the floor workflows bundled in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    const cp = this.controlPlane!;
    this.admin.loadFromString(kubeconfigYaml(cp, cp.adminToken, { user: 'admin' }));
    this.runbookKubeconfig = join(this.dir, 'kubeconfig-vpsie-runbook');
    writeFileSync(this.runbookKubeconfig, kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }), {
      mode: 0o600,
    });
    this.connection = await Connection.connect({ address: this.address });
    this.stops.push({ name: 'Temporal client', stop: () => this.connection!.close() });
    this.client = new Client({ connection: this.connection, namespace: TEMPORAL_NAMESPACE });
    await Promise.all([this.startWorker(), this.startFloorWorker()]);
  }

  /**
   * The product's worker, `node dist/main.js` as `npm start` runs it (configured by its environment variables:
   * the restricted identity's kubeconfig, the simulated VPSie, its /metrics on, no receiver: the receiver runs
   * in its own process), in a fresh process (again: the previous one is stopped first). It loads the
   * workflow bundle built beside it, as deployed.
   */
  async startWorker(): Promise<Child> {
    await this.worker?.stop();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TEMPORAL_ADDRESS: this.address,
      TEMPORAL_NAMESPACE: TEMPORAL_NAMESPACE,
      TEMPORAL_TASK_QUEUE: PRODUCT_TASK_QUEUE,
      KUBECONFIG: this.runbookKubeconfig,
      VPSIE_API_URL: this.vpsie!.baseUrl,
      VPSIE_TOKEN: VPSieSimulator.DEFAULT_TOKEN,
      RECEIVER_PORT: 'off',
      METRICS_HOST: '127.0.0.1',
      METRICS_PORT: String(await freePort()),
      // glibc's allocator tuning as the Dockerfile and `npm start` set it (or as given to the bench)
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
      // the worker's cache bound, as a deployment may set it
      ...(process.env.WORKER_MAX_CACHED_WORKFLOWS
        ? { WORKER_MAX_CACHED_WORKFLOWS: process.env.WORKER_MAX_CACHED_WORKFLOWS }
        : {}),
    };
    // Node's and V8's flags for the worker, as a deployment may give them (e.g. --max-semi-space-size=4)
    const flags = (process.env.BENCH_WORKER_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    const script = join(this.productRoot, 'dist', 'main.js');
    this.worker = await this.spawnChild('worker', [...flags, script], env, (line) =>
      /worker polling task queue/.test(line) ? {} : undefined,
    );
    return this.worker;
  }

  private async startFloorWorker(): Promise<void> {
    const config: FloorWorkerConfig = {
      address: this.address,
      namespace: TEMPORAL_NAMESPACE,
      taskQueue: FLOOR_TASK_QUEUE,
      bundlePath: this.floorBundle,
    };
    this.floorWorker = await this.registered('floor-worker', 'proc/floor-worker.ts', config);
  }

  /** The receiver, in a fresh process, starting runs with `runOptions` (each part has its own). */
  async startReceiver(runOptions: RunbookOptions): Promise<string> {
    await this.receiver?.stop();
    const config: ReceiverChildConfig = {
      address: this.address,
      namespace: TEMPORAL_NAMESPACE,
      taskQueue: PRODUCT_TASK_QUEUE,
      kubeconfig: this.runbookKubeconfig,
      runOptions,
    };
    this.receiver = await this.registered('receiver', 'proc/receiver.ts', config);
    return `http://127.0.0.1:${this.receiver.details.port as number}/webhooks/alertmanager`;
  }

  /** `node -r ./demo/register.js bench/<script>` with its configuration in the environment, ready at READY. */
  private registered(name: string, script: string, config: object): Promise<Child> {
    return this.spawnChild(
      name,
      ['--enable-source-maps', '-r', './demo/register.js', join('bench', script)],
      { ...process.env, BENCH_CHILD_CONFIG: JSON.stringify(config) },
      (line) =>
        line.startsWith(READY_PREFIX)
          ? (JSON.parse(line.slice(READY_PREFIX.length)) as Record<string, unknown>)
          : undefined,
    );
  }

  /**
   * A node process; resolves once `ready` recognises a line of its stdout. Its stdout and stderr go to
   * `<name>.log` in the bench's directory.
   */
  private spawnChild(
    name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    ready: (line: string) => Record<string, unknown> | undefined,
  ): Promise<Child> {
    const log = join(this.dir, `${name}.log`);
    const fd = openSync(log, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', fd, 'ipc'] });
    } finally {
      closeSync(fd);
    }
    children.add(child);
    const out = createWriteStream(log, { flags: 'a' });
    const exited = new Promise<void>((r) =>
      child.once('exit', () => {
        children.delete(child);
        r();
      }),
    );
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      out.end();
    };
    this.stops.push({ name, stop });
    return new Promise<Child>((resolveReady, reject) => {
      let isReady = false;
      const lines = createInterface({ input: child.stdout! });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start within 180 s (see ${log})`));
      }, 180_000);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        if (!isReady)
          reject(new Error(`${name} exited with ${signal ?? code} before it was ready (see ${log})`));
      });
      lines.on('line', (line) => {
        out.write(`${line}\n`);
        if (isReady) return;
        const details = ready(line);
        if (!details) return;
        isReady = true;
        clearTimeout(timer);
        resolveReady({ name, pid: child.pid!, process: child, details, stop });
      });
    });
  }

  /** Stops what started, last started first; each failure is said and the rest still stop. */
  async stop(): Promise<void> {
    for (const { name, stop } of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.progress(`stopping ${name} failed: ${(err as Error).message}`);
      }
    }
  }
}
