/**
 * Part 4: waiting at scale. `runs` Failed VPSieNodes, each alert starting a real run (not dryRun) that
 * diagnoses ProvisioningTimeout and waits for a person to approve `delete-vpsienode`, all at once, with the
 * production defaults for the wait (approval TTL 1 h, a look at the VPSieNode every 5 minutes). The NodeGroup
 * lease would call more than 3 failures of a group within 15 minutes a storm and end the runs escalated, so the
 * runs carry the lease policy option `nodeGroupLease.stormThreshold` 1000 (the bound): this part measures
 * waiting, not the storm (part 3 does). Then, with every run waiting:
 * - the worker's resident memory (its own process, fresh for this part; /proc/<pid>/status VmRSS every 0.5 s):
 *   the peak while the runs arrive and diagnose, and the median over `steadySeconds` once all wait;
 * - the `status` query of every run, one after another (as people and the CLI ask it), p50/p99;
 * - `vpsie-runbook list --pending-approval` (the CLI's code, in this process, as it runs: connect, visibility
 *   query, each row's pending step from the run's memo), p50/p99, default limit (100) and `--limit 1000`; and
 *   once as the real CLI process.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { run as runCli } from '../../src/cli/main';
import { statusQuery } from '../../src/workflows/messages';
import { failedNotification, Poster, pool } from '../alerts';
import { Fleet } from '../fleet';
import { MemorySampler, readMemory } from '../memory';
import { PRODUCT_TASK_QUEUE } from '../stack';
import { nowMs, percentile, summarize } from '../stats';
import { BENCH_LIMIT_MS, sleep, Stopped, type Figure, type PartContext } from './context';
import { countRuns, listRuns } from './runs';

export interface WaitingOptions {
  /** The simulated controller's tick (bench/fleet.ts). */
  simTickMs: number;
  runs: number;
  groups: number;
  steadySeconds: number;
  listRepeats: number;
}

async function timeList(address: string, extra: string[]): Promise<{ ms: number; rows: number }> {
  let out = '';
  const t0 = nowMs();
  const code = await runCli(
    [
      'list',
      '--pending-approval',
      '--address',
      address,
      '--task-queue',
      PRODUCT_TASK_QUEUE,
      '-o',
      'json',
      ...extra,
    ],
    { out: (t) => void (out += t), progress: () => undefined, env: {}, now: () => Date.now() },
  );
  const ms = nowMs() - t0;
  if (code !== 0) throw new Error(`list --pending-approval exited ${code}`);
  return { ms, rows: (JSON.parse(out) as unknown[]).length };
}

export async function runWaiting(ctx: PartContext, o: WaitingOptions) {
  const { stack, progress } = ctx;
  const client = stack.client!;
  progress(`part 4: waiting at scale (${o.runs} runs waiting for approval, ${o.groups} NodeGroups)`);
  // A fresh worker: its memory is that of these runs, not of the parts before.
  const worker = await stack.startWorker();
  const sampler = new MemorySampler(worker.pid);
  sampler.start();
  const fleet = new Fleet({
    admin: stack.admin,
    vpsie: stack.vpsie!,
    prefix: 'bench-waiting',
    groups: o.groups,
    nodes: o.runs,
    limitMs: BENCH_LIMIT_MS,
    tickMs: o.simTickMs,
    progress,
    stopping: ctx.stopping,
  });
  try {
    await fleet.stage();
    const idleMB = readMemory(worker.pid).rssMB;
    const url = await stack.startReceiver({
      ...fleet.limitOptions,
      nodeGroupLease: { stormThreshold: 1000 },
    });
    const poster = new Poster(url, 16);
    const startsAt = new Date();
    const partStart = Date.now();
    await pool(fleet.nodes, 16, async (node) => {
      if (ctx.stopping()) throw new Stopped();
      const a = await poster.post(failedNotification(node, startsAt));
      if (a.status !== 200)
        throw new Error(`the receiver answered ${a.status}: ${JSON.stringify(a.body).slice(0, 300)}`);
    });
    poster.close();
    const waitingQuery = `VPSieNodeNamespace = '${fleet.namespace}' AND ApprovalPending = true AND ExecutionStatus = 'Running'`;
    // generous: on a loaded machine new runs wait seconds for their first workflow task (see the report)
    const deadline = Date.now() + 600_000 + 1_000 * o.runs;
    let waiting = 0;
    for (;;) {
      waiting = await countRuns(client, waitingQuery);
      if (waiting >= o.runs) break;
      if (ctx.stopping()) throw new Stopped();
      if (Date.now() > deadline) {
        const open = await countRuns(
          client,
          `VPSieNodeNamespace = '${fleet.namespace}' AND ExecutionStatus = 'Running'`,
        );
        throw new Error(
          `only ${waiting} of ${o.runs} runs wait for approval (${open} open) after ${Math.round((Date.now() - partStart) / 1000)} s`,
        );
      }
      progress(`  ${waiting}/${o.runs} runs waiting for approval`);
      await sleep(2_000);
    }
    const allWaitingAt = Date.now();
    progress(
      `  all ${o.runs} runs wait for approval (${((allWaitingAt - partStart) / 1000).toFixed(1)} s after the first alert); sampling memory for ${o.steadySeconds} s`,
    );
    await sleep(o.steadySeconds * 1000);
    const steadyEnd = Date.now();

    // status, each run once, one at a time
    const runs = await listRuns(client, waitingQuery);
    const statusMs: number[] = [];
    let notPending = 0;
    // A query that fails (the server's query timeout, under load) is counted and reported, not fatal: it is
    // part of what a person asking for status would have seen.
    const failedQueries: string[] = [];
    for (const r of runs) {
      if (ctx.stopping()) throw new Stopped();
      const t0 = nowMs();
      try {
        const s = await client.workflow.getHandle(r.workflowId, r.runId).query(statusQuery);
        if (s.pendingApproval?.stepId !== 'delete-vpsienode') notPending += 1;
      } catch (err) {
        failedQueries.push(`${r.workflowId}: ${err instanceof Error ? err.message : String(err)}`);
      }
      statusMs.push(nowMs() - t0);
    }
    // list --pending-approval, in process
    const listDefault: number[] = [];
    let defaultRows = 0;
    for (let i = 0; i < o.listRepeats; i++) {
      const l = await timeList(stack.address, []);
      listDefault.push(l.ms);
      defaultRows = l.rows;
    }
    const listAll: number[] = [];
    let allRows = 0;
    for (let i = 0; i < Math.max(1, Math.ceil(o.listRepeats / 4)); i++) {
      const l = await timeList(stack.address, ['--limit', '1000']);
      listAll.push(l.ms);
      allRows = l.rows;
    }
    // the real CLI process, once: `vpsie-runbook` as built (package.json bin), its start-up included
    const cliArgs = [
      'list',
      '--pending-approval',
      '--address',
      stack.address,
      '--task-queue',
      PRODUCT_TASK_QUEUE,
      '-o',
      'json',
    ];
    const c0 = nowMs();
    const cli = spawnSync(process.execPath, [join(stack.productRoot, 'dist', 'cli', 'main.js'), ...cliArgs], {
      cwd: stack.productRoot,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '' },
    });
    const cliMs = nowMs() - c0;
    if (cli.status !== 0)
      throw new Error(`the CLI process exited ${cli.status}: ${cli.stderr.slice(0, 500)}`);
    sampler.stop();
    const { hwmMB } = readMemory(worker.pid);
    const during = sampler.between(partStart);
    const steady = sampler.between(allWaitingAt, steadyEnd);
    const peakMB = Math.max(...during);
    const steadyMB = percentile(steady, 50);
    const st = summarize(statusMs);
    const ld = summarize(listDefault);
    const la = summarize(listAll);
    const r1 = (x: number) => Math.round(x * 10) / 10;
    const figures: Figure[] = [
      {
        id: 'waiting.rss.peak',
        part: 'waiting',
        label: `worker RSS peak (${o.runs} waiting)`,
        value: r1(peakMB),
        unit: 'MB',
        floor: { label: 'idle worker', value: r1(idleMB) },
        target: '< 400 MB',
        pass: peakMB < 400,
      },
      {
        id: 'waiting.rss.steady',
        part: 'waiting',
        label: `worker RSS steady (${o.runs} waiting)`,
        value: r1(steadyMB),
        unit: 'MB',
        floor: { label: 'idle worker', value: r1(idleMB) },
        target: '< 400 MB',
        pass: steadyMB < 400,
      },
      { id: 'waiting.status.p50', part: 'waiting', label: 'status query p50', value: st.p50, unit: 'ms' },
      {
        id: 'waiting.status.p99',
        part: 'waiting',
        label: 'status query p99',
        value: st.p99,
        unit: 'ms',
        target: '< 200 ms',
        pass: st.p99 < 200,
      },
      {
        id: 'waiting.list.p50',
        part: 'waiting',
        label: `list --pending-approval p50 (${defaultRows} rows)`,
        value: ld.p50,
        unit: 'ms',
      },
      {
        id: 'waiting.list.p99',
        part: 'waiting',
        label: `list --pending-approval p99 (${defaultRows} rows)`,
        value: ld.p99,
        unit: 'ms',
      },
      {
        id: 'waiting.listAll.p50',
        part: 'waiting',
        label: `list --pending-approval --limit 1000 p50 (${allRows} rows)`,
        value: la.p50,
        unit: 'ms',
      },
      {
        id: 'waiting.cliProcess',
        part: 'waiting',
        label: 'list --pending-approval, the CLI process',
        value: r1(cliMs),
        unit: 'ms',
      },
    ];
    return {
      figures,
      details: {
        namespace: fleet.namespace,
        runsWaiting: waiting,
        secondsUntilAllWaiting: (allWaitingAt - partStart) / 1000,
        statusQueriesWithoutPendingDeleteApproval: notPending,
        statusQueriesFailed: failedQueries.length,
        statusQueryFailures: failedQueries.slice(0, 10),
        worker: {
          pid: worker.pid,
          idleMB: r1(idleMB),
          peakSampledMB: r1(peakMB),
          steadyMedianMB: r1(steadyMB),
          vmHWMMB: r1(hwmMB),
          samples: sampler.samples.length,
        },
        statusQueryMs: st,
        listPendingApprovalMs: { ...ld, rows: defaultRows },
        listPendingApprovalLimit1000Ms: { ...la, rows: allRows },
        cliProcess: {
          ms: r1(cliMs),
          how: 'node dist/cli/main.js list --pending-approval (src/ built with swc)',
        },
      },
    };
  } finally {
    sampler.stop();
    await fleet.stop();
  }
}
