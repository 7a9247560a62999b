/**
 * The product's worker as an OS process of its own, for the tests that SIGKILL it (test/e2e/fault-worker-kill.test.ts).
 *
 * As a script (`node -r ./demo/register.js test/support/worker-process.ts`) it runs the real worker: configuration
 * from the environment through the product's own `loadConfig` (TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, KUBECONFIG,
 * VPSIE_API_URL, VPSIE_TOKEN_FILE, CONTROLLER_LABEL_SELECTOR, the escalation channels, ...; secrets only in files),
 * the real `createActivities` and `createRunbookWorker` on the prebuilt workflow bundle
 * (VPSIE_TEST_WORKFLOW_BUNDLE). It prints `ready` once the worker exists, starts polling when a line `run` arrives
 * on stdin (so a replacement can be made ready while the one it replaces still runs), then prints `running`.
 *
 * WORKER_REQUEST_LOG: a file to which every HTTP(S) request the process sends is appended (method, host, path) as
 * a JSON line, synchronously before it leaves, so that a SIGKILL cannot lose it: the Kubernetes requests the
 * product made, across every process a test killed. Observed through Node's diagnostics channel; nothing of the
 * product is replaced.
 *
 * WORKER_FREEZE_AFTER (`METHOD path` part, e.g. `DELETE /vpsienodes/`): fault injection, see {@link freezeAfter}.
 *
 * As a module it exports {@link WorkerProcess}, the test's handle on one such process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(__dirname, '..', '..');

/** One request the product's process sent, as WORKER_REQUEST_LOG records it. */
export interface LoggedRequest {
  pid: number;
  /** ms since the epoch */
  at: number;
  method: string;
  host: string;
  path: string;
}

/** The handle on one worker process: made ready, then run, then killed (or stopped). */
export class WorkerProcess {
  private readonly lines: string[] = [];
  private readonly waiters: { match: string; resolve: () => void }[] = [];
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly stderr: string[] = [];

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const w of this.waiters.filter((x) => x.match === line)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Starts a worker process with `env` (added to PATH and HOME only: nothing else of the test's environment leaks
   * in) and resolves once it printed `ready`: connected, worker created, not yet polling.
   */
  static async prepare(env: Record<string, string>): Promise<WorkerProcess> {
    const child = spawn(
      process.execPath,
      ['--enable-source-maps', '-r', join(ROOT, 'demo', 'register.js'), __filename],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const p = new WorkerProcess(child);
    await p.printed('ready');
    return p;
  }

  /** Starts polling; resolves once the worker runs. */
  async run(): Promise<void> {
    const running = this.printed('running');
    this.child.stdin!.write('run\n');
    await running;
  }

  /** SIGKILL: no shutdown, no goodbye to the server; resolves once the process is gone. */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    const { signal } = await this.exited;
    if (signal !== 'SIGKILL') throw new Error(`worker ${this.pid} exited (${signal}) before it was killed`);
  }

  /** A clean stop: stdin closed (a running worker finishes its tasks, a ready one exits); SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves when the process prints `match` as a line; rejects, with its stderr, if it exits first. */
  printed(match: string): Promise<void> {
    if (this.lines.includes(match)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ match, resolve });
      void this.exited.then(({ code, signal }) =>
        reject(
          new Error(
            `worker process ${this.child.pid} exited (${code ?? signal}) before "${match}": ${this.stderr.join('\n')}`,
          ),
        ),
      );
    });
  }
}

/** Every request in a WORKER_REQUEST_LOG file. */
export function readRequestLog(text: string): LoggedRequest[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LoggedRequest);
}

// ---------------------------------------------------------------------------------------------------------
// The process itself

/** Appends each outgoing HTTP(S) request to `file`, before it is sent. */
function logRequests(file: string): void {
  subscribe('http.client.request.start', (message) => {
    const req = (message as { request: ClientRequest }).request;
    const line: LoggedRequest = {
      pid: process.pid,
      at: Date.now(),
      method: req.method,
      host: String(req.getHeader('host') ?? req.host),
      path: req.path,
    };
    appendFileSync(file, `${JSON.stringify(line)}\n`);
  });
}

/**
 * Fault injection: the first request whose `METHOD path` contains `what` gets its answer, and then the process
 * freezes (its JavaScript never runs again) after printing `frozen`, so that a test can kill it knowing the act
 * was done and its result never reported. `mark` is created on the first freeze: later processes of the same test
 * do not freeze.
 */
function freezeAfter(what: string, mark: string): void {
  subscribe('http.client.response.finish', (message) => {
    const req = (message as { request: ClientRequest }).request;
    if (!`${req.method} ${req.path}`.includes(what)) return;
    try {
      closeSync(openSync(mark, 'wx'));
    } catch {
      return; // frozen once already
    }
    writeSync(1, 'frozen\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
}

async function main(): Promise<void> {
  // Loaded here, not at the top: the test imports this module for WorkerProcess alone.
  const { DefaultLogger, NativeConnection, Runtime } = await import('@temporalio/worker');
  const { createActivities } = await import('../../src/activities');
  const { KubernetesClient, loadKubeConfig } = await import('../../src/clients/kubernetes');
  const { vpsieClientFromConfig } = await import('../../src/clients/vpsie-config');
  const { loadConfig } = await import('../../src/config');
  const { createRunbookWorker } = await import('../../src/worker');

  const requestLog = process.env.WORKER_REQUEST_LOG;
  if (requestLog) logRequests(requestLog);
  const freeze = process.env.WORKER_FREEZE_AFTER;
  if (freeze) freezeAfter(freeze, process.env.WORKER_FREEZE_MARK ?? `${requestLog ?? 'worker'}.frozen`);
  const codePath = process.env.VPSIE_TEST_WORKFLOW_BUNDLE;
  if (!codePath)
    throw new Error('VPSIE_TEST_WORKFLOW_BUNDLE is unset: the prebuilt workflow bundle is needed');
  const config = loadConfig(process.env);
  if (!config.temporal.address) throw new Error('TEMPORAL_ADDRESS is unset');
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await createRunbookWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    activities: createActivities({
      kubernetes: new KubernetesClient(loadKubeConfig(config.kubernetes)),
      vpsie: vpsieClientFromConfig(config.vpsie)?.client ?? null,
      controller: config.controller,
      channels: config.channels,
    }),
    workflowBundle: { codePath },
  });
  process.stdout.write('ready\n');
  // The test drives this process through stdin: `run` starts polling; stdin closing (the test's process gone)
  // stops it, so that no worker outlives its test.
  const rl = createInterface({ input: process.stdin });
  const go = await new Promise<boolean>((resolve) => {
    rl.on('line', (l) => {
      if (l.trim() === 'run') resolve(true);
    });
    rl.on('close', () => resolve(false));
  });
  if (!go) {
    await connection.close();
    return;
  }
  rl.on('close', () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
  });
  const running = worker.run();
  process.stdout.write('running\n');
  await running;
  await connection.close();
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(
        `worker-process: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exit(1);
    },
  );
}
