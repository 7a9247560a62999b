/**
 * `npm run demo`: vpsie-runbook without a cluster. Brings up a sandbox on loopback (demo/sandbox.ts), stages a
 * failure of each cause of the runbook (demo/causes.ts), sends each alert through the receiver as Alertmanager
 * would (demo/alerts.ts), prints where to watch the runs and the commands that answer them (demo/commands.ts),
 * then follows the runs (demo/watch.ts) until Ctrl-C, which stops every piece, children included.
 *
 * Run from TypeScript through demo/register.js (swc), because the simulators live in test/support/, which the
 * product's build does not contain: `node -r ./demo/register.js demo/main.ts [flags]`.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import { DEFAULT_TASK_QUEUE } from '../src/config';
import { findTemporalCli } from '../src/temporal/cli-binary';
import { findControlPlaneBinaries } from '../test/support/control-plane';
import { VPSieSimulator } from '../test/support/vpsie-simulator';
import { alertFor, notification, postNotification } from './alerts';
import { SCENARIOS, stageFailure, type DemoCause } from './causes';
import { Commands, PENDING_QUERY, RUNS_QUERY, runRef } from './commands';
import { DemoUsage, parseDemoArgs, type DemoOptions } from './options';
import { Sandbox, SANDBOX_LIMIT_MS, SANDBOX_TEMPORAL_NAMESPACE } from './sandbox';
import { RunWatcher, type TrackedRun } from './watch';

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const piece = (name: string, detail: string, ms: number): void =>
  say(`  ✓ ${name.padEnd(30)} ${detail ? `${detail}  ` : ''}(${seconds(ms)})`);
const clock = (): string => new Date().toTimeString().slice(0, 8);

/** How often the runs are looked at for the progress lines. */
const WATCH_INTERVAL_MS = 1_000;
/**
 * A second signal this soon after the first is the same Ctrl-C: the terminal signals the whole process group,
 * and npm (or a shell that exec'd us) forwards the one it got as well.
 */
const SAME_CTRL_C_MS = 500;

/** Stopping: set by the first signal; `wake` ends the current wait at once. */
const stop = {
  requested: false,
  at: 0,
  wakers: new Set<() => void>(),
  request(): void {
    this.requested = true;
    this.at = Date.now();
    for (const w of this.wakers) w();
  },
  /** Waits `ms`, or less when a stop is requested. */
  sleep(ms: number): Promise<void> {
    if (this.requested) return Promise.resolve();
    return new Promise((r) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        r();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  },
};

function onPath(dir: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && resolve(d) === resolve(dir));
}

/** Every server the sandbox needs is installed; the demo never installs or downloads anything. */
async function preflight(): Promise<string> {
  const temporalCli = await findTemporalCli();
  if (!temporalCli)
    throw new Error(
      'no Temporal CLI found (TEMPORAL_CLI, PATH, the Go bin directory): run `npm run setup` once, which builds it',
    );
  try {
    findControlPlaneBinaries();
  } catch (err) {
    throw new Error(`${(err as Error).message}\n(\`npm run setup\` installs etcd and kube-apiserver once)`);
  }
  return temporalCli;
}

function workDir(o: DemoOptions): { dir: string; own: boolean } {
  if (!o.workDir) return { dir: mkdtempSync(join(tmpdir(), 'vpsie-runbook-demo-')), own: true };
  const dir = resolve(o.workDir);
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0)
    throw new DemoUsage(`--work-dir ${o.workDir} is not empty: give a new or empty directory\n`, 2);
  return { dir, own: false };
}

/** The SDK's own lines (warnings and errors) go to the worker's log file, not over the demo's output. */
function installRuntime(log: (line: string) => void): void {
  const write = (entry: LogEntry): void => {
    let meta = '';
    try {
      meta = entry.meta && Object.keys(entry.meta).length ? ` ${JSON.stringify(entry.meta)}` : '';
    } catch {
      // meta that does not serialise is left out
    }
    log(`${entry.level} ${entry.message}${meta}`);
  };
  // Signals are the demo's: it stops the worker before the servers the worker needs.
  Runtime.install({ logger: new DefaultLogger('WARN', write), shutdownSignals: [] });
}

/** Stages every failure asked for, each alert sent as soon as its VPSieNode exists; answers the runs to follow. */
async function stageAndAlert(sandbox: Sandbox, o: DemoOptions): Promise<TrackedRun[]> {
  const sim = sandbox.sim!;
  const custom = sandbox.adminKubeConfig.makeApiClient(CustomObjectsApi);
  const jobs: { cause: DemoCause; n: number }[] = o.causes.flatMap((cause) =>
    Array.from({ length: o.count }, (_, i) => ({ cause, n: i + 1 })),
  );
  const runs = await Promise.all(
    jobs.map(async ({ cause, n }): Promise<TrackedRun | null> => {
      try {
        const failure = await stageFailure({ sim, custom, stopping: () => stop.requested }, cause, n);
        const { ref, workflowId } = runRef(failure.namespace, failure.vpsieNode);
        const alert = notification(alertFor(failure, new Date()));
        const answer = await postNotification(sandbox.receiverUrl, alert, { stopping: () => stop.requested });
        const run = answer.runs.find((r) => r.workflowId === workflowId);
        if (answer.status !== 200 || !run) {
          say(`  ✗ ${cause}: the receiver answered ${answer.status} for ${ref}: ${answer.message}`);
          return null;
        }
        say(
          `  ✓ ${cause.padEnd(26)} ${failure.alertName} for ${ref} → ${run.action} ${workflowId}  (${SCENARIOS[cause].staged})`,
        );
        return { failure, ref, workflowId };
      } catch (err) {
        if (!stop.requested) say(`  ✗ ${cause} #${n}: ${(err as Error).message}`);
        return null;
      }
    }),
  );
  return runs.filter((r): r is TrackedRun => r !== null);
}

function printReady(sandbox: Sandbox, runs: TrackedRun[], c: Commands, took: number): void {
  const temporal = sandbox.temporal!;
  const vpsie = sandbox.vpsie!;
  const asking = runs.find((r) => !['SSHKeyInvalid', 'Unknown'].includes(r.failure.cause)) ?? runs[0];
  const withGroup = runs.find((r) => r.failure.cause === 'SSHKeyInvalid' && r.failure.nodeGroup);
  const lines = [
    '',
    `Sandbox ready in ${seconds(took)}: ${runs.length} run${runs.length === 1 ? '' : 's'} started by alerts through the receiver.`,
    `The simulated autoscaler gives up on a node after ${SANDBOX_LIMIT_MS / 1000} s (10 and 15 minutes on a cluster), and so do the runs.`,
    '',
    `Temporal Web UI: ${c.uiQuery(RUNS_QUERY)}`,
    `  waiting for a person: ${c.uiQuery(PENDING_QUERY)}`,
    `Temporal:        ${temporal.address} (namespace ${SANDBOX_TEMPORAL_NAMESPACE}, task queue ${DEFAULT_TASK_QUEUE})`,
    `Alert receiver:  POST ${sandbox.receiverUrl}`,
    `Kubernetes API:  ${sandbox.controlPlane!.server}`,
    `Kubeconfig:      ${sandbox.kubeconfig} (admin; the worker runs as vpsie-runbook: ${sandbox.runbookKubeconfig})`,
    `VPSie API:       ${vpsie.baseUrl} (simulated; token ${VPSieSimulator.DEFAULT_TOKEN})`,
    `Logs:            ${dirname(sandbox.kubeconfig)} (worker.log, receiver.log, control-plane/)`,
    '',
    'The CLI (vpsie-runbook):',
    `  ${c.list()}`,
    `  ${c.list(true)}`,
    ...(asking
      ? [`  ${c.status(asking.ref)}`, `  ${c.approve(asking.ref)}`, `  ${c.reject(asking.ref)}`]
      : []),
    ...(withGroup?.failure.nodeGroup
      ? [
          `  ${c.validateNodeGroup(`${withGroup.failure.namespace}/${withGroup.failure.nodeGroup}`, {
            KUBECONFIG: sandbox.runbookKubeconfig,
            VPSIE_API_URL: vpsie.baseUrl,
            VPSIE_TOKEN: VPSieSimulator.DEFAULT_TOKEN,
          })}`,
        ]
      : []),
    'The Temporal CLI:',
    `  ${c.temporalList(PENDING_QUERY)}`,
    ...(asking ? [`  ${c.temporalStatus(asking.workflowId)}`] : []),
    'kubectl:',
    `  kubectl --kubeconfig ${sandbox.kubeconfig} get vpsienodes,nodegroups -A`,
    '',
    'Runs (each approval a run asks for is printed with the commands that answer it; Ctrl-C stops the sandbox):',
    ...runs.map((r) => `  ${r.failure.cause.padEnd(26)} ${r.ref}: ${SCENARIOS[r.failure.cause].expect}`),
  ];
  say(lines.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  let o: DemoOptions;
  let dir: { dir: string; own: boolean };
  let temporalCli: string;
  try {
    o = parseDemoArgs(argv);
    temporalCli = await preflight();
    dir = workDir(o);
  } catch (err) {
    if (err instanceof DemoUsage) {
      (err.exitCode === 0 ? process.stdout : process.stderr).write(err.message);
      return err.exitCode;
    }
    process.stderr.write(`vpsie-runbook demo: ${(err as Error).message}\n`);
    return 1;
  }
  // Even a forced stop (a second Ctrl-C) removes the temporary directory; the servers' own exit hooks kill them.
  process.once('exit', () => {
    if (dir.own) rmSync(dir.dir, { recursive: true, force: true });
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.requested) {
      if (Date.now() - stop.at < SAME_CTRL_C_MS) return;
      say(`${signal} again: stopping at once`);
      process.exit(130);
    }
    say(`\n${signal}: stopping the sandbox (Ctrl-C again to force)`);
    stop.request();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const t0 = Date.now();
  say(`vpsie-runbook demo: starting a sandbox in ${dir.dir} (Ctrl-C stops it)`);
  const sandbox = new Sandbox({
    dir: dir.dir,
    temporalCli,
    temporalPort: o.temporalPort,
    uiPort: o.uiPort,
    receiverPort: o.receiverPort,
    piece,
    say: (line) => say(`  ${line}`),
  });
  installRuntime(sandbox.logFile('worker.log'));
  let code = 0;
  try {
    await sandbox.start(() => stop.requested);
    if (stop.requested) return 0;
    const temporal = sandbox.temporal!;
    const commands = new Commands({
      temporal: temporal.address,
      ui: temporal.uiUrl!,
      namespace: SANDBOX_TEMPORAL_NAMESPACE,
      cli: o.cli,
      temporalCli:
        basename(temporalCli) === 'temporal' && onPath(dirname(temporalCli)) ? 'temporal' : temporalCli,
      approver: o.approver,
    });
    say(`Staging ${o.causes.length * o.count} failure(s) and sending their alerts:`);
    const runs = await stageAndAlert(sandbox, o);
    if (stop.requested) return 0;
    printReady(sandbox, runs, commands, Date.now() - t0);
    const watcher = new RunWatcher(sandbox.client!, commands, (line) => say(`${clock()} ${line}`));
    while (!stop.requested) {
      await watcher.poll(runs);
      await stop.sleep(WATCH_INTERVAL_MS);
    }
  } catch (err) {
    if (!stop.requested) {
      say(`vpsie-runbook demo: ${err instanceof Error ? err.message : String(err)}`);
      code = 1;
    }
  } finally {
    await sandbox.stop();
    if (!dir.own) say(`the sandbox's files stay in ${dir.dir}`);
    say(code === 0 ? 'sandbox stopped' : 'sandbox stopped after an error');
  }
  return code;
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
