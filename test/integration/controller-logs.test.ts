/**
 * Runbook step 3 end to end: the controller's log lines travel apiserver → kubelet (the simulator's fake
 * kubelet) and the runbook reads them as its restricted identity, filtered like the runbook's grep.
 */
import { randomBytes } from 'node:crypto';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { ClusterSimulator } from '../support/cluster-simulator';
import { createTestNamespace, kubeConfigFor, VPSieNodeFixtures } from '../support/kube';
import { VPSieSimulator } from '../support/vpsie-simulator';

const activities = createKubernetesActivities(new KubernetesClient(kubeConfigFor('runbook')));
const fixtures = new VPSieNodeFixtures();
let ns: string;
let vpsie: VPSieSimulator;
let sim: ClusterSimulator;

beforeAll(async () => {
  ns = await createTestNamespace('logs');
  vpsie = new VPSieSimulator();
  await vpsie.start();
  sim = new ClusterSimulator({ kubeConfig: kubeConfigFor('admin'), vpsie, namespace: ns, tickMs: 50 });
  await sim.start();
});
afterAll(async () => {
  await sim?.stop();
  await vpsie?.stop();
});

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; simulator errors: ${sim.errors}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('reads the controller lines about a VPSieNode whose VM could not be created', async () => {
  const name = `ng-logs-${randomBytes(3).toString('hex')}`;
  await sim.stage(name, 'vm-creation-fails', { error: 'HTTP 422: VM quota exceeded' });
  await fixtures.create(
    { namespace: ns, name },
    {
      instanceType: '101',
      datacenterID: '1',
      osImageID: '201',
      kubernetesVersion: sim.clusterVersion,
      sshKeyIDs: ['301'],
    },
  );
  await until(
    'phase Failed',
    async () => (await activities.checkVPSieNode({ namespace: ns, name }))?.phase === 'Failed',
  );
  sim.appendLog('level=info msg="unrelated reconcile of nodegroup other-pool done"');

  const evidence = await activities.readControllerLogs({ namespace: ns, name }, { tailLines: 200 });
  expect(evidence).toMatchObject({ namespace: 'kube-system', deployment: 'vpsie-autoscaler' });
  const ours = evidence.pods.find((p) => p.pod === sim.controllerPod.name);
  expect(ours).toBeDefined();
  expect(ours?.error).toBeNull();
  expect(
    ours?.lines.some(
      (l) => l.includes(name) && l.includes('failed to create VM: HTTP 422: VM quota exceeded'),
    ),
  ).toBe(true);
  // The runbook's grep: this node's name, "provision" or "failed" — nothing else.
  expect(ours?.lines.some((l) => l.includes('unrelated reconcile'))).toBe(false);
  expect(ours?.lines.every((l) => /provision|failed/i.test(l) || l.includes(name))).toBe(true);

  // --tail reaches the kubelet: asking for the last line only gives at most one line per pod.
  const tail = await activities.readControllerLogs({ namespace: ns, name }, { tailLines: 1 });
  expect(tail.pods.find((p) => p.pod === sim.controllerPod.name)?.lines.length).toBeLessThanOrEqual(1);
});
