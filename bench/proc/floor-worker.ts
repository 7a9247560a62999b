/**
 * The worker of the floor workflows (bench/floor-workflows.ts) with their no-op local activities, on a task
 * queue of its own, in a process of its own as the product's worker is (`node dist/main.js`, see stack.ts).
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { floorActivities } from '../floor-activities';
import { childConfig, fail, onStop, ready } from './child';

export interface FloorWorkerConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  bundlePath: string;
}

async function main(): Promise<void> {
  const c = childConfig<FloorWorkerConfig>();
  Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
  const connection = await NativeConnection.connect({ address: c.address });
  const worker = await Worker.create({
    connection,
    namespace: c.namespace,
    taskQueue: c.taskQueue,
    activities: floorActivities,
    workflowBundle: { codePath: c.bundlePath },
  });
  const running = worker.run();
  onStop(async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
  });
  ready({ pid: process.pid });
  await running;
}

main().catch(fail);
