/** Runs of one part's namespace, as visibility lists them (every run, closed ones too), and their clean-up. */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { pool } from '../alerts';

export async function listRuns(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const out: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query, pageSize: 1000 })) out.push(info);
  return out;
}

export async function countRuns(client: Client, query: string): Promise<number> {
  return (await client.workflow.count(query)).count;
}

/** Terminates every open run the query finds (a part's leftovers must not load the next part). */
export async function terminateOpen(client: Client, query: string, reason: string): Promise<number> {
  const open = await listRuns(client, `${query} AND ExecutionStatus = 'Running'`);
  await pool(open, 16, async (info) => {
    try {
      await client.workflow.getHandle(info.workflowId, info.runId).terminate(reason);
    } catch {
      // it ended meanwhile
    }
  });
  return open.length;
}
