/**
 * The activities that act on VPSieNodes and machines, run as the restricted identity while the simulated
 * autoscaler works on the same objects through the real apiserver: it rewrites a node's status on every
 * requeue, creates machines asynchronously and adopts them later, and removes the machine of a deleted
 * VPSieNode before letting the object go.
 */
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { createMachineActivities } from '../../src/activities/machines';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { VPSieClient } from '../../src/clients/vpsie';
import { registrationTargetOf } from '../../src/runbook';
import { ANNOTATION_CREATION_REQUESTED, CONTROLLER_USER_AGENT } from '../support/cluster';
import { SimTest, uniq } from '../support/cluster/test-helpers';
import { rejectsWith } from '../support/expect-rejection';
import { kubeConfigFor } from '../support/kube';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(120_000);

const t = new SimTest();
let kube: ReturnType<typeof createKubernetesActivities>;
let machines: ReturnType<typeof createMachineActivities>;

beforeAll(async () => {
  await t.start('livectl');
  const client = new KubernetesClient(kubeConfigFor('runbook'));
  kube = createKubernetesActivities(client);
  machines = createMachineActivities(
    client,
    new VPSieClient({ baseUrl: t.vpsie.baseUrl, token: VPSieSimulator.DEFAULT_TOKEN, timeoutMs: 5_000 }),
  );
});
afterAll(() => t.stop());
afterEach(() => expect(t.sim.errors).toEqual([]));

/** What the product (not the simulated controller) asked VPSie to delete. */
const productDeletes = () =>
  t.vpsie.requestsTo('DELETE').filter((r) => r.userAgent !== CONTROLLER_USER_AGENT);

test('deleteVPSieNode deletes by UID a node whose status the controller keeps rewriting; the controller then removes its machine', async () => {
  const name = uniq('churn');
  const ref = { namespace: t.ns, name };
  await t.sim.stage(name, 'never-registers', { answer: 'sync' });
  await t.createVN(name);
  await t.phase(name, 'Joining');
  const diagnosed = await kube.checkVPSieNode(ref);
  // Wait for proof that the controller rewrote status after the diagnosis (its timestamps are whole seconds,
  // so that is the next second's requeue): a resourceVersion precondition would fail from here on.
  const now = await t.waitFor('the controller to rewrite status', async () => {
    const read = await kube.checkVPSieNode(ref);
    return read?.resourceVersion !== diagnosed?.resourceVersion ? read : undefined;
  });
  expect(now?.uid).toBe(diagnosed?.uid);
  expect(now?.phase).toBe('Joining');
  const machine = t.sim.machineOf(name);
  expect(machine).toBeDefined();

  const result = await kube.deleteVPSieNode(ref, { uid: diagnosed?.uid ?? '' });
  expect(result.outcome).toBe('deleted');
  await t.gone(name);
  // The controller's finalizer held the object until its machine was removed the autoscaler's way.
  expect(
    t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine?.identifier),
  ).toBe(false);
  // ... by the controller: the product itself asked VPSie to delete nothing.
  expect(
    t.vpsie
      .requestsTo('DELETE', /\/delete\/slave$/)
      .filter((r) => r.userAgent === CONTROLLER_USER_AGENT)
      .map((r) => r.body),
  ).toContainEqual({ identifier: machine?.identifier });
  expect(productDeletes()).toEqual([]);
});

test('terminateVM keeps a VM while a VPSieNode of its NodeGroup waits for the machine it requested', async () => {
  const name = uniq('waiting');
  await t.sim.stage(name, 'creation-never-completes');
  await t.createVN(name);
  const waiting = await t.waitFor('the creation request', async () => {
    const vn = await t.getVN(name);
    return vn?.metadata.annotations?.[ANNOTATION_CREATION_REQUESTED] === 'true' ? vn : undefined;
  });
  expect(waiting.spec.vpsieInstanceID).toBe(0);
  // A machine VPSie made meanwhile, that nothing claims yet: the discoverer may adopt it at its next look.
  const stray = t.vpsie.addVM({ id: 1_900_000_001, hostname: uniq('stray'), default_ip: '203.0.113.77' });

  const f = await rejectsWith(
    machines.terminateVM({
      id: stray.id,
      identifier: stray.identifier,
      nodeGroup: waiting.spec.nodeGroupName,
    }),
    ApplicationFailure,
  );
  expect(f.type).toBe('MachineClaimed');
  expect(f.message).toContain(`VPSieNode ${t.ns}/${name}: requested a machine`);
  expect(t.vpsie.hasVM(stray.id)).toBe(true);
  expect(productDeletes()).toEqual([]);

  // A waiting VPSieNode adopts whatever unclaimed Node registers next, the next test's included: clear it away.
  await t.deleteVN(name);
  await t.gone(name);
});

test('a K8s-managed node (Ready with id 0 and an IP) is found by IP, and its machine is never removed', async () => {
  // Upstream's discoverer only looks at Nodes while GET /vm lists at least one running VM.
  t.vpsie.addVM({ name: uniq('unrelated'), status: 'running' });
  const name = uniq('managed');
  await t.sim.stage(name, 'k8s-managed');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  const node = await kube.checkVPSieNode({ namespace: t.ns, name });
  expect(node).toMatchObject({ vpsieInstanceID: 0, creationRequested: true });
  expect(node?.ipAddress).toBeTruthy();

  const registration = await kube.checkNodeRegistration(registrationTargetOf(node!));
  expect(registration?.matchedBy).toBe('ip');
  expect(registration?.node.internalIP).toBe(node?.ipAddress);

  const machine = t.sim.machineOf(name);
  expect(machine).toBeDefined();
  const f = await rejectsWith(
    machines.removeClusterNode({
      resourceIdentifier: t.sim.vpsieCluster,
      identifier: machine!.identifier,
      hostname: machine!.hostname,
      nodeGroup: node?.nodeGroupName ?? null,
    }),
    ApplicationFailure,
  );
  expect(f.type).toBe('MachineClaimed');
  expect(f.message).toContain(`VPSieNode ${t.ns}/${name}`);
  expect(
    t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine!.identifier),
  ).toBe(true);
  expect(productDeletes()).toEqual([]);
});
