/**
 * The product's alert receiver in a process of its own (as `npm run receiver` runs it), with the run options
 * of the part being measured (the demo's sandbox passes its own the same way). Prints its port when ready.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { Connection } from '@temporalio/client';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { startReceiver } from '../../src/receiver';
import type { RunbookOptions } from '../../src/runbook';
import { childConfig, fail, onStop, ready } from './child';

export interface ReceiverChildConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  kubeconfig: string;
  runOptions: RunbookOptions;
}

async function main(): Promise<void> {
  const c = childConfig<ReceiverChildConfig>();
  const connection = await Connection.connect({ address: c.address });
  const kc = new KubeConfig();
  kc.loadFromFile(c.kubeconfig);
  const receiver = await startReceiver({
    connection,
    namespace: c.namespace,
    taskQueue: c.taskQueue,
    kubernetes: new KubernetesClient(kc),
    host: '127.0.0.1',
    port: 0,
    runOptions: c.runOptions,
    log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  onStop(async () => {
    await receiver.close();
    await connection.close();
  });
  ready({ pid: process.pid, port: receiver.port });
}

main().catch(fail);
