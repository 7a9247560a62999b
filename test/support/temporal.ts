import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { RunbookActivities } from '../../src/activities';
import { createRunbookWorker } from '../../src/worker';

// Workers log their state changes at INFO; in tests only warnings and errors are worth a line.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // already installed in this process
}

/** The dev server started by global setup. */
export function temporalAddress(): string {
  const address = process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('TEMPORAL_TEST_ADDRESS is unset: run the tests through jest (global setup)');
  return address;
}

/** Each test file gets its own task queue, so workers of parallel files never pick up each other's tasks. */
export function uniqueTaskQueue(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export interface TemporalTestContext {
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  close(): Promise<void>;
}

export async function connectTemporal(): Promise<TemporalTestContext> {
  const address = temporalAddress();
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    client: new Client({ connection }),
    connection,
    nativeConnection,
    async close() {
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** A worker on the shared workflow bundle, running until `fn` settles. */
export async function withWorker<T>(
  ctx: TemporalTestContext,
  taskQueue: string,
  activities: RunbookActivities,
  fn: (worker: Worker) => Promise<T>,
): Promise<T> {
  const codePath = process.env.VPSIE_TEST_WORKFLOW_BUNDLE;
  const worker = await createRunbookWorker({
    connection: ctx.nativeConnection,
    namespace: 'default',
    taskQueue,
    activities,
    ...(codePath ? { workflowBundle: { codePath } } : {}),
  });
  return worker.runUntil(() => fn(worker));
}

/**
 * A worker for a test-only workflow module, running for a whole test file: `start()` in beforeAll, `stop()` in
 * afterAll. `ctx` is its connection, for the client side of the test.
 */
export class TestWorker {
  ctx!: TemporalTestContext;
  private worker?: Worker;
  private running?: Promise<void>;

  constructor(private readonly options: { taskQueue: string; workflowsPath: string; activities?: object }) {}

  async start(): Promise<void> {
    this.ctx = await connectTemporal();
    this.worker = await Worker.create({
      connection: this.ctx.nativeConnection,
      namespace: 'default',
      taskQueue: this.options.taskQueue,
      workflowsPath: this.options.workflowsPath,
      ...(this.options.activities ? { activities: this.options.activities } : {}),
    });
    this.running = this.worker.run();
  }

  async stop(): Promise<void> {
    this.worker?.shutdown();
    await this.running;
    await this.ctx?.close();
  }
}
