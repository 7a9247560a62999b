/**
 * Runbook step 3 end to end: the simulated controller's log lines travel apiserver → kubelet (the simulator's
 * fake kubelet) and the runbook reads them as its restricted identity, from the pods it finds by upstream's
 * label, filtered like the runbook's grep.
 */
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { kubeConfigFor } from '../support/kube';
import { SimTest, uniq } from '../support/cluster/test-helpers';

jest.setTimeout(120_000);

const activities = createKubernetesActivities(new KubernetesClient(kubeConfigFor('runbook')));
const t = new SimTest();

beforeAll(() => t.start('logs'));
afterAll(() => t.stop());

it('reads the controller lines about a VPSieNode whose VM could not be created', async () => {
  const name = uniq('ng-logs');
  await t.sim.stage(name, 'vm-creation-fails', {
    status: 422,
    error: 'Offering not available in this datacenter',
  });
  await t.createVN(name);
  // The controller logs the failure before it writes lastError: once lastError is there, so are the lines.
  const snapshot = await t.waitFor('lastError', async () => {
    const s = await activities.checkVPSieNode({ namespace: t.ns, name });
    return s?.lastError ? s : undefined;
  });
  expect(snapshot.phase).toBe('Provisioning');
  t.sim.appendLog('level=info msg="unrelated reconcile of nodegroup other-pool done"');

  const evidence = await activities.readControllerLogs({ namespace: t.ns, name }, { tailLines: 200 });
  expect(evidence).toMatchObject({
    namespace: 'kube-system',
    labelSelector: 'app=vpsie-autoscaler',
    container: 'controller',
  });
  const ours = evidence.pods.find((p) => p.pod === t.sim.controllerPod.name);
  expect(ours?.error).toBeNull();
  expect(
    ours?.lines.some(
      (l) =>
        l.includes(name) &&
        l.includes('Failed to create K8s node via VPSie API') &&
        l.includes('Offering not available'),
    ),
  ).toBe(true);
  // The runbook's grep: this node's name, "provision" or "failed", nothing else.
  expect(ours?.lines.some((l) => l.includes('unrelated reconcile'))).toBe(false);
  expect(ours?.lines.every((l) => /provision|failed/i.test(l) || l.includes(name))).toBe(true);

  // --tail reaches the kubelet: asking for the last line gives at most one line per pod.
  const tail = await activities.readControllerLogs({ namespace: t.ns, name }, { tailLines: 1 });
  expect(tail.pods.find((p) => p.pod === t.sim.controllerPod.name)?.lines.length).toBeLessThanOrEqual(1);
});
