/**
 * `npm run bench`: the product measured on this machine against the real Temporal dev server, the real etcd +
 * kube-apiserver and the simulated VPSie and autoscaler, each figure beside its floor from the same run.
 * Prints a table (stdout) and writes JSON; progress goes to stderr. Exit 0 when the bench ran (a missed target is
 * a measurement, printed MISS), 1 on an error, 2 on bad usage, 130 when stopped by a signal.
 *
 * Run from TypeScript like the demo (`node -r ./demo/register.js bench/main.ts`): the simulators live in
 * test/support/, which the product's build does not contain.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runDiagnosis } from './parts/diagnosis';
import { runStorm } from './parts/storm';
import { runWaiting } from './parts/waiting';
import { Stopped, type Figure, type PartContext } from './parts/context';
import { killChildren, REPO_ROOT, Stack } from './stack';
import { renderTable } from './table';

const PARTS = ['diagnosis', 'storm', 'waiting'] as const;
type Part = (typeof PARTS)[number];

export interface BenchOptions {
  runs: number;
  warmup: number;
  diagnosisGroups: number;
  stormNotifications: number;
  stormNodes: number;
  stormGroups: number;
  stormConcurrency: number;
  stormSettle: number;
  waiting: number;
  waitingGroups: number;
  steadySeconds: number;
  listRepeats: number;
  simTickMs: number;
  only: Part[];
  json: string;
  keep: boolean;
}

const whole = (min: number, max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min || n > max)
    throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}, got "${v}"`);
  return n;
};

function parseArgs(argv: string[]): BenchOptions {
  const program = new Command('npm run bench --')
    .description(
      'Measures vpsie-runbook on this machine (real Temporal dev server, etcd + kube-apiserver, simulated VPSie and autoscaler), each figure beside its floor from the same run; prints a table and writes JSON.',
    )
    .option('--runs <n>', 'alert→diagnosis runs measured (part 1; also part 2)', whole(1, 100_000), 200)
    .option('--warmup <n>', 'rounds run first and not measured', whole(0, 1000), 10)
    .option(
      '--diagnosis-groups <n>',
      "NodeGroups the diagnosis runs' VPSieNodes are spread over",
      whole(1, 1000),
      10,
    )
    .option(
      '--storm-notifications <n>',
      'notifications posted in the alert storm (part 3)',
      whole(1, 1_000_000),
      10_000,
    )
    .option('--storm-nodes <n>', 'distinct Failed VPSieNodes the storm is about', whole(1, 100_000), 500)
    .option('--storm-groups <n>', 'NodeGroups they belong to', whole(1, 10_000), 20)
    .option('--storm-concurrency <n>', 'notifications in flight at once', whole(1, 10_000), 64)
    .option(
      '--storm-settle <seconds>',
      "how long the storm's runs get to finish before they are read",
      whole(10, 3600),
      240,
    )
    .option('--waiting <n>', 'runs waiting for approval at once (part 4)', whole(1, 100_000), 1000)
    .option('--waiting-groups <n>', 'NodeGroups they belong to', whole(1, 10_000), 20)
    .option(
      '--steady-seconds <n>',
      "how long the worker's memory is sampled once all wait",
      whole(1, 3600),
      30,
    )
    .option('--list-repeats <n>', 'timings of `list --pending-approval`', whole(1, 1000), 20)
    .option(
      '--sim-tick-ms <ms>',
      'how often the simulated autoscaler lists its objects (it lists everything; upstream watches)',
      whole(50, 60_000),
      2000,
    )
    .addOption(
      new Option(
        '--only <part>',
        'run only this part (repeat, or a,b): diagnosis (with API economy), storm, waiting',
      ).argParser((v: string, prev: Part[] = []) => {
        const parts = v.split(',').map((p) => p.trim());
        for (const p of parts)
          if (!PARTS.includes(p as Part))
            throw new InvalidArgumentError(`must be one of ${PARTS.join(', ')}, got "${p}"`);
        return [...prev, ...(parts as Part[])];
      }),
    )
    .option('--json <file>', 'where the JSON results go', 'bench-results/bench.json')
    .option('--keep', "keep the bench's temporary directory (logs of the servers and processes)", false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  program.parse(argv, { from: 'user' });
  const o = program.opts<Omit<BenchOptions, 'only'> & { only?: Part[] }>();
  return { ...o, only: o.only?.length ? o.only : [...PARTS], json: resolve(o.json) };
}

const progress = (line: string): void =>
  void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseArgs(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const dir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-bench-'));
  let stopRequested = false;
  const stack = new Stack(dir, progress);
  const cleanup = () => {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanup);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested) {
      progress(`${signal} again: killing everything`);
      killChildren();
      process.exit(130);
    }
    stopRequested = true;
    progress(`${signal}: stopping (again to force)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The SDK's own lines (this process only runs clients) stay quiet; signals are ours.
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });

  const started = new Date();
  const loadBefore = loadavg();
  const figures: Figure[] = [];
  const details: Record<string, unknown> = {};
  const ctx: PartContext = { stack, progress, stopping: () => stopRequested };
  const resultOf = (partial = false) => ({
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    ...(partial ? { partial: true } : {}),
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryMB: Math.round(totalmem() / 1048576),
      loadAverageBefore: loadBefore.map((x) => Math.round(x * 100) / 100),
      loadAverageAfter: loadavg().map((x) => Math.round(x * 100) / 100),
      node: process.version,
    },
    options: { ...o, json: undefined },
    figures,
    details,
  });
  const writeResult = (result: ReturnType<typeof resultOf>): void => {
    mkdirSync(dirname(o.json), { recursive: true });
    writeFileSync(o.json, `${JSON.stringify(result, null, 2)}\n`);
  };
  let code = 0;
  try {
    progress(`starting the servers in ${dir}`);
    await stack.start();
    for (const part of PARTS) {
      if (!o.only.includes(part)) continue;
      if (stopRequested) throw new Stopped();
      const t0 = Date.now();
      const result =
        part === 'diagnosis'
          ? await runDiagnosis(ctx, {
              runs: o.runs,
              warmup: o.warmup,
              groups: o.diagnosisGroups,
              simTickMs: o.simTickMs,
            })
          : part === 'storm'
            ? await runStorm(ctx, {
                notifications: o.stormNotifications,
                nodes: o.stormNodes,
                groups: o.stormGroups,
                concurrency: o.stormConcurrency,
                settleSeconds: o.stormSettle,
                simTickMs: o.simTickMs,
              })
            : await runWaiting(ctx, {
                runs: o.waiting,
                groups: o.waitingGroups,
                steadySeconds: o.steadySeconds,
                listRepeats: o.listRepeats,
                simTickMs: o.simTickMs,
              });
      figures.push(...result.figures);
      details[part] = { ...result.details, tookSeconds: Math.round((Date.now() - t0) / 100) / 10 };
      progress(`${part} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      // what is measured so far, in case a later part fails (marked partial until the end)
      writeResult(resultOf(true));
    }
  } catch (err) {
    if (err instanceof Stopped || stopRequested) {
      code = 130;
    } else {
      progress(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      code = 1;
    }
  } finally {
    progress('stopping the servers');
    await stack.stop();
  }
  if (code !== 0) {
    if (o.keep) progress(`logs kept in ${dir}`);
    return code;
  }

  const result = resultOf();
  writeResult(result);
  process.stdout.write(`\n${renderTable(figures)}\n\n`);
  const missed = figures.filter((f) => f.pass === false);
  process.stdout.write(
    `${missed.length ? `MISS: ${missed.map((f) => f.label).join('; ')}` : 'every target met'}\n` +
      `load average before ${result.machine.loadAverageBefore.join(' ')}, after ${result.machine.loadAverageAfter.join(' ')} (${result.machine.cpus} CPUs)\n` +
      `JSON: ${o.json.startsWith(REPO_ROOT) ? o.json.slice(REPO_ROOT.length + 1) : o.json}\n`,
  );
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      progress(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}
