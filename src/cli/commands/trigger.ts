/** `trigger <ns>/<name>`: starts the runbook for a VPSieNode, or joins the run already open for it. */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { InvalidInputError, resolveInput, workflowIdFor, type RunbookInput } from '../../runbook/input';
import { startRunbook } from '../../temporal/start-runbook';
import { parseObjectRef } from '../args';
import type { CommandContext } from '../context';
import { usageError } from '../errors';
import { collect, inFlagTerms, RUNBOOK_FLAGS, runbookOptionsFromFlags } from '../input-flags';

export interface TriggerResult {
  workflowId: string;
  runId: string;
  /** `started` a new run, or `joined` the one open for the VPSieNode (its input stays as it was). */
  result: 'started' | 'joined';
  taskQueue: string;
}

export function registerTrigger(program: Command, context: (cmd: Command) => CommandContext): void {
  const cmd = program
    .command('trigger')
    .summary('start or join the runbook for a VPSieNode')
    .description(
      'Start the runbook for a VPSieNode, as an alert does; joins the run already open for it (whose options then stay as they are).',
    )
    .argument('<ns/name>', 'the VPSieNode, as <namespace>/<name>');
  for (const f of RUNBOOK_FLAGS)
    if (f.kind === 'list') cmd.option(f.flags, f.description, collect, []);
    else cmd.option(f.flags, f.description);
  cmd.action(async (target: string, opts: Record<string, unknown>, self: Command) => {
    const c = context(self);
    const ref = parseObjectRef(target, 'argument <ns/name>');
    const input: RunbookInput = { ...ref, options: runbookOptionsFromFlags(opts) };
    // The runbook's own checks, before anything connects: a bad value is refused naming its flag.
    try {
      resolveInput(input);
    } catch (err) {
      if (err instanceof InvalidInputError)
        throw usageError(inFlagTerms(err.message, RUNBOOK_FLAGS, 'options'));
      throw err;
    }
    const out = await c.temporal(async (t) => {
      const workflowId = workflowIdFor(ref);
      // Which run is open now, to tell a join from a start: the start answers with the open run's id.
      let open: string | null = null;
      try {
        const d = await t.client.workflow.getHandle(workflowId).describe();
        if (d.status.name === 'RUNNING') open = d.runId;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      const started = await startRunbook(t.client, input, {
        taskQueue: t.settings.taskQueue,
        origin: { source: 'cli' },
      });
      const result: TriggerResult = {
        workflowId: started.workflowId,
        runId: started.runId,
        result: open !== null && open === started.runId ? 'joined' : 'started',
        taskQueue: t.settings.taskQueue,
      };
      return result;
    });
    c.result(out, () =>
      out.result === 'joined'
        ? `joined ${out.workflowId} (run ${out.runId}), already open; its options stay as they were`
        : `started ${out.workflowId} (run ${out.runId}) on task queue ${out.taskQueue}`,
    );
    c.io.progress(`follow it with: vpsie-runbook status ${ref.namespace}/${ref.name}`);
  });
}
