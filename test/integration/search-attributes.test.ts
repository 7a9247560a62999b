import { Connection } from '@temporalio/client';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server';
import { ensureSearchAttributes } from '../../src/temporal/search-attributes';

/**
 * A Temporal server the project did not start (docker compose, a team's cluster) lacks the project's search
 * attributes: the worker registers them on start-up, once.
 */
let server: DevServer;
let connection: Connection;

beforeAll(async () => {
  const binary = await findTemporalCli();
  server = await startDevServer({ ...(binary ? { binary } : {}) }); // no search attributes registered
  connection = await Connection.connect({ address: server.address });
});
afterAll(async () => {
  await connection?.close();
  await server?.stop();
});

it('registers the missing search attributes, then finds nothing left to do', async () => {
  await expect(ensureSearchAttributes(connection, 'default')).resolves.toEqual([
    'VPSieNodeNamespace',
    'VPSieNodeName',
    'RunbookStage',
    'RunbookOutcome',
  ]);
  const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
  expect(Object.keys(listed.customAttributes ?? {})).toEqual(
    expect.arrayContaining(['VPSieNodeNamespace', 'VPSieNodeName', 'RunbookStage', 'RunbookOutcome']),
  );
  await expect(ensureSearchAttributes(connection, 'default')).resolves.toEqual([]);
});
