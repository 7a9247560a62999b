/**
 * The compose stack's one-shot set-up (deploy/compose/setup-temporal.sh, service temporal-setup), run as the
 * admin-tools image runs it (`/bin/sh` with the `temporal` CLI on PATH) against the real Temporal dev server, in
 * a namespace of its own: it creates the namespace and registers the project's search attributes with their
 * types, and a second run changes nothing and still succeeds (a restarted stack runs it again).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';
import { connectTemporal, temporalAddress, type TemporalTestContext } from '../support/temporal';

const { IndexedValueType } = temporal.api.enums.v1;
const SCRIPT = join(__dirname, '..', '..', 'deploy', 'compose', 'setup-temporal.sh');

let ctx: TemporalTestContext;
let cli: string;
beforeAll(async () => {
  ctx = await connectTemporal();
  const found = await findTemporalCli({ install: false });
  if (!found) throw new Error('no Temporal CLI (the global setup needs one too): run `npm run setup`');
  cli = found;
});
afterAll(() => ctx?.close());

async function runScript(
  namespace: string,
  { attempts = 30, delay = 1 } = {},
): Promise<{ code: number | null; output: string }> {
  const child = spawn('sh', [SCRIPT], {
    env: {
      PATH: `${dirname(cli)}:${process.env.PATH ?? ''}`,
      HOME: process.env.HOME ?? '/tmp',
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_NAMESPACE: namespace,
      SETUP_DELAY: String(delay),
      SETUP_ATTEMPTS: String(attempts),
    },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

/** The custom search attributes of a namespace, by name, as Temporal names their types. */
async function customAttributes(namespace: string): Promise<Record<string, string>> {
  const res = await ctx.connection.operatorService.listSearchAttributes({ namespace });
  return Object.fromEntries(
    Object.entries(res.customAttributes ?? {}).map(([name, type]) => [name, IndexedValueType[type]]),
  );
}

const expected = Object.fromEntries(
  SEARCH_ATTRIBUTES.map((k) => [k.name, `INDEXED_VALUE_TYPE_${k.type === 'BOOL' ? 'BOOL' : 'KEYWORD'}`]),
);

it('creates the namespace and registers every search attribute of the project with its type; a second run is a no-op', async () => {
  const namespace = `compose-setup-${randomUUID().slice(0, 8)}`;
  await expect(ctx.connection.workflowService.describeNamespace({ namespace })).rejects.toThrow(/not found/i);

  const first = await runScript(namespace);
  expect([first.code, first.output]).toEqual([0, expect.stringContaining(`namespace ${namespace} is ready`)]);
  const ns = await ctx.connection.workflowService.describeNamespace({ namespace });
  expect(ns.namespaceInfo?.name).toBe(namespace);
  const attributes = await customAttributes(namespace);
  expect(attributes).toEqual(expect.objectContaining(expected));
  // nothing else of ours: every custom attribute there is one of the project's
  expect(Object.keys(attributes).sort()).toEqual(Object.keys(expected).sort());

  const second = await runScript(namespace);
  expect([second.code, second.output]).toEqual([
    0,
    expect.stringContaining(`namespace ${namespace} is ready`),
  ]);
  expect(await customAttributes(namespace)).toEqual(attributes);
});

it('fails, naming the cause, when an attribute exists with another type', async () => {
  const namespace = `compose-setup-${randomUUID().slice(0, 8)}`;
  await ctx.connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  // ApprovalPending as a Keyword: the runs' `ApprovalPending = true` would never match
  const add = () =>
    ctx.connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: { ApprovalPending: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD },
    });
  // a namespace just registered is known to the operator service a moment later
  for (let i = 0; ; i++) {
    try {
      await add();
      break;
    } catch (err) {
      if (i >= 50 || !/not found/i.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const run = await runScript(namespace, { attempts: 2, delay: 0 });
  expect(run.code).toBe(1);
  expect(run.output).toMatch(/ApprovalPending already exists and has different type/);
  expect(run.output).toMatch(/gave up on search attributes after 2 attempts/);
});
