/**
 * Recorded histories for the replay tests (test/workflows/replay.test.ts): a test that ends a run the way a
 * history should show calls `recordHistory`, which writes the run's history only when RECORD_HISTORIES is set
 * (`RECORD_HISTORIES=1 npx jest <file>`), in the JSON form the UI's and CLI's "download history" give.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTemporalCli } from '../../src/temporal/cli-binary';

/**
 * The dev server started by global setup. Not taken from ./temporal, which installs the worker Runtime: the
 * history scan after every file loads this module, and a file may install its own Runtime later.
 */
function devServerAddress(): string {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is unset: run the tests through jest (global setup)');
  return address;
}

export const HISTORY_DIR = join(__dirname, '..', 'fixtures', 'histories');

export async function recordHistory(workflowId: string, runId: string, file: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  const cli = await findTemporalCli();
  if (!cli) throw new Error('recording histories needs the Temporal CLI');
  const json = execFileSync(
    cli,
    [
      'workflow',
      'show',
      ...['--workflow-id', workflowId, '--run-id', runId],
      ...['--output', 'json', '--address', devServerAddress()],
    ],
    { encoding: 'utf8' },
  );
  writeFileSync(join(HISTORY_DIR, file), json);
}

/**
 * The text of a run's history with its payloads decoded: they are bytes, and searched as they are a secret in them
 * would never be found. For leak checks (which should also check that known text is found, proof the payloads
 * were read).
 */
export async function historyText(handle: { fetchHistory(): Promise<unknown> }): Promise<string> {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(await handle.fetchHistory());
  return out.join('\n');
}
