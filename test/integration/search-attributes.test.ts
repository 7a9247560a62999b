import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
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
    'NodeGroup',
    'RunbookCause',
    'ApprovalPending',
  ]);
  const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
  const { IndexedValueType } = temporal.api.enums.v1;
  expect(listed.customAttributes).toMatchObject({
    VPSieNodeNamespace: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    VPSieNodeName: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    RunbookStage: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    RunbookOutcome: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    NodeGroup: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    RunbookCause: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    ApprovalPending: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  });
  await expect(ensureSearchAttributes(connection, 'default')).resolves.toEqual([]);
});
