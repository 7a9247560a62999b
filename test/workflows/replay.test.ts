import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';

// Replay workers log every state change at INFO; only warnings and errors are worth a line here.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}

/**
 * Histories recorded from the real server (RECORD_HISTORIES=1 npm run test:jest) replay against today's workflow
 * code. A change that breaks one must go behind `patched()`, or old runs would fail on the next worker deploy.
 */
const dir = join(__dirname, '..', 'fixtures', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('recorded histories replay against the current workflow code', () => {
  it('has recorded histories to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(join(dir, file), 'utf8')));
    const codePath = process.env.VPSIE_TEST_WORKFLOW_BUNDLE;
    await Worker.runReplayHistory(
      codePath ? { workflowBundle: { codePath } } : { workflowsPath: require.resolve('../../src/workflows') },
      history,
      `replay-${file}`,
    );
  });
});
