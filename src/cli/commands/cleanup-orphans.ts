/**
 * `cleanup-orphans`: starts the orphaned-VM sweep (workflow orphanedVmCleanup, as its Schedule does) and prints
 * where it waits: the orphans it found, and the approval it asks for with the commands that answer it.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { InvalidInputError } from '../../runbook/input';
import { resolveOrphanSweepInput, type OrphanSweepStatus } from '../../runbook/orphans';
import { parseCliDuration } from '../args';
import type { CommandContext } from '../context';
import { failure, usageError } from '../errors';
import { collect, inFlagTerms, SWEEP_FLAGS, sweepInputFromFlags } from '../input-flags';
import { renderSweepStatus } from '../render';
import { rowOf, SWEEP_TYPE } from '../runs';
import { quote } from '../visibility';

/** Sweeps started here: `orphaned-vm-cleanup/cli-20250101-120000-ab12` (the Schedule's are `orphaned-vm-cleanup-<time>`). */
export function sweepWorkflowId(nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `orphaned-vm-cleanup/cli-${stamp}-${randomBytes(2).toString('hex')}`;
}

const POLL_MS = 500;

export function registerCleanupOrphans(program: Command, context: (cmd: Command) => CommandContext): void {
  const cmd = program
    .command('cleanup-orphans')
    .summary('start the orphaned-VM sweep and show where it waits')
    .description(
      "Start the orphaned-VM sweep: find this cluster's machines in VPSie that nothing claims, ask a person before removing each; prints where it waits and how to approve. Refused while another sweep is open on the task queue.",
    );
  for (const f of SWEEP_FLAGS)
    if (f.kind === 'list') cmd.option(f.flags, f.description, collect, []);
    else cmd.option(f.flags, f.description);
  cmd
    .option(
      '--wait <duration>',
      'how long to wait for the sweep to reach its first question or its end',
      '2m',
    )
    .action(async (opts: Record<string, unknown>, self: Command) => {
      const c = context(self);
      const input = sweepInputFromFlags(opts);
      try {
        resolveOrphanSweepInput(input);
      } catch (err) {
        if (err instanceof InvalidInputError)
          throw usageError(inFlagTerms(err.message, SWEEP_FLAGS, 'input'));
        throw err;
      }
      const waitMs = parseCliDuration(String(opts.wait), '--wait', 1_000, 3_600_000);
      const out = await c.temporal(async (t) => {
        // One sweep at a time, as the Schedule's overlap policy: two would ask about the same machines.
        const open = `WorkflowType = ${quote(SWEEP_TYPE)} AND ExecutionStatus = 'Running' AND TaskQueue = ${quote(t.settings.taskQueue)}`;
        for await (const info of t.client.workflow.list({ query: open, pageSize: 1 })) {
          const row = rowOf(info);
          throw failure(
            `an orphaned-VM sweep is already open on task queue ${t.settings.taskQueue}: ${row.workflowId} (stage ${row.stage ?? 'unknown'}, started ${row.startTime}); see: vpsie-runbook status ${row.workflowId}`,
          );
        }
        const workflowId = sweepWorkflowId(c.io.now());
        const handle = await t.client.workflow.start(SWEEP_TYPE, {
          taskQueue: t.settings.taskQueue,
          workflowId,
          args: [input],
          staticSummary: `Orphaned-VM sweep started by cli${input.dryRun ? ' (dry run)' : ''}`,
        });
        c.io.progress(`started ${workflowId}; waiting for it to read the cluster and VPSie`);
        const deadline = c.io.now() + waitMs;
        let status: OrphanSweepStatus | null = null;
        for (;;) {
          try {
            status = await t.within(10_000, () => handle.query<OrphanSweepStatus>('status'));
          } catch {
            status = null; // the first workflow task may not have run yet
          }
          if (status && status.stage !== 'finding') break;
          if (c.io.now() > deadline) {
            c.io.progress(
              `the sweep is still finding after ${opts.wait}; follow it with: vpsie-runbook status ${workflowId}`,
            );
            break;
          }
          await new Promise((r) => setTimeout(r, POLL_MS));
        }
        const d = await handle.describe();
        return {
          workflowId,
          runId: handle.firstExecutionRunId,
          execution: rowOf(d).status,
          taskQueue: t.settings.taskQueue,
          status,
        };
      });
      c.result(out, () =>
        [
          `started ${out.workflowId} (run ${out.runId}) on task queue ${out.taskQueue}`,
          ...(out.status
            ? [
                renderSweepStatus(
                  out.status,
                  {
                    arg: out.workflowId,
                    workflowId: out.workflowId,
                    runId: out.runId,
                    execution: out.execution,
                  },
                  c.io.now(),
                ),
              ]
            : []),
        ].join('\n'),
      );
    });
}
