/**
 * Removing a machine from VPSie ("Manual VM Cleanup") against the VPSie simulator and the real kube-apiserver,
 * as the restricted identity: the removal re-reads the machine and refuses while anything in the cluster claims
 * it, or while a VPSieNode of its NodeGroup waits for VPSie to name its machine (the controller may adopt this
 * one). Names, hostnames and addresses are unique per test: other test files' objects share the cluster.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createMachineActivities } from '../../src/activities/machines';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { CREATION_REQUESTED_ANNOTATION } from '../../src/runbook';
import { rejectsWith } from '../support/expect-rejection';
import { ClusterCleanup, createTestNamespace, kubeConfigFor, VPSieNodeFixtures } from '../support/kube';
import { secret } from '../support/secrets';
import { VPSieSimulator } from '../support/vpsie-simulator';
import { VPSieClient } from '../../src/clients/vpsie';

const TOKEN = secret('vpsie-token');
const sim = new VPSieSimulator({ token: TOKEN });
const fixtures = new VPSieNodeFixtures();
const cleanup = new ClusterCleanup();
const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
let namespace: string;
let activities: ReturnType<typeof createMachineActivities>;

beforeAll(async () => {
  const baseUrl = await sim.start();
  namespace = await createTestNamespace('machines');
  activities = createMachineActivities(
    new KubernetesClient(kubeConfigFor('runbook')),
    new VPSieClient({ baseUrl, token: TOKEN, timeoutMs: 5_000 }),
  );
});
afterAll(async () => {
  await cleanup.deleteAll();
  await sim.stop();
});
beforeEach(() => sim.clearRequests());

const failure = (p: Promise<unknown>) => rejectsWith(p, ApplicationFailure);
const unique = () => randomUUID().slice(0, 8);
/** An address from TEST-NET-2 that no other test file uses. */
const uniqueIP = () => `198.51.${randomInt(0, 255)}.${randomInt(1, 254)}`;
const deletes = () => sim.requestsTo('DELETE');
/**
 * A VM whose id and addresses no other test file's VPSieNodes or Nodes carry: every simulator numbers its VMs from
 * the same start, and the apiserver is shared.
 */
const addVM = (hostname: string, extra: Parameters<typeof sim.addVM>[0] = {}) =>
  sim.addVM({
    id: randomInt(10_000_000, 2_000_000_000),
    hostname,
    default_ip: uniqueIP(),
    default_ipv6: `2001:db8:${randomInt(1, 0xffff).toString(16)}::1`,
    ...extra,
  });

describe('terminateVM', () => {
  it('terminates an unclaimed VM once; a retry is already-gone without another DELETE', async () => {
    const vm = addVM(`orphan-${unique()}`);
    const expected = { id: vm.id, identifier: vm.identifier, nodeGroup: `ng-${unique()}` };
    await expect(activities.terminateVM(expected)).resolves.toBe('terminated');
    await expect(activities.terminateVM(expected)).resolves.toBe('already-gone');
    expect(sim.hasVM(vm.id)).toBe(false);
    expect(deletes().map((r) => r.path)).toEqual([`/vm/${vm.id}`]);
  });

  it('refuses when the id now names another VM, and deletes nothing', async () => {
    const vm = addVM(`replacement-${unique()}`);
    const f = await failure(
      activities.terminateVM({ id: vm.id, identifier: '00000000-0000-4000-8000-000000000000' }),
    );
    expect(f).toMatchObject({ type: 'VMPreconditionFailed', nonRetryable: true });
    expect(sim.hasVM(vm.id)).toBe(true);
    expect(deletes()).toHaveLength(0);
  });

  it('keeps a VM a VPSieNode claims by instance id, naming the VPSieNode', async () => {
    const vm = addVM(`claimed-${unique()}`);
    const name = `ng-x-${unique()}`;
    await fixtures.vpsieNode(namespace, name, { spec: { vpsieInstanceID: vm.id } });
    const f = await failure(activities.terminateVM({ id: vm.id, identifier: vm.identifier }));
    expect(f).toMatchObject({ type: 'MachineClaimed', nonRetryable: true });
    expect(f.message).toContain(`VPSieNode ${namespace}/${name}: spec.vpsieInstanceID is ${vm.id}`);
    expect(sim.hasVM(vm.id)).toBe(true);
    expect(deletes()).toHaveLength(0);
  });

  it('keeps a VM whose hostname starts with a VPSieNode name (the discoverer would adopt it)', async () => {
    const name = `ng-p-${unique()}`;
    await fixtures.vpsieNode(namespace, name);
    const vm = addVM(`${name}-k8s-worker`);
    const f = await failure(activities.terminateVM({ id: vm.id, identifier: vm.identifier }));
    expect(f.type).toBe('MachineClaimed');
    expect(f.message).toContain('starts with the VPSieNode');
    expect(deletes()).toHaveLength(0);
  });

  it('keeps a VM whose address a Node has', async () => {
    const ip = uniqueIP();
    const vm = addVM(`noded-${unique()}`, { default_ip: ip });
    const nodeName = `node-${unique()}`;
    cleanup.addNodes(nodeName);
    await adminCore.createNode({ body: { metadata: { name: nodeName } } });
    await adminCore.replaceNodeStatus({
      name: nodeName,
      body: {
        metadata: { name: nodeName },
        status: { addresses: [{ type: 'InternalIP', address: ip }] },
      },
    });
    const f = await failure(activities.terminateVM({ id: vm.id, identifier: vm.identifier }));
    expect(f.message).toContain(`Node ${nodeName}: its address is ${ip}`);
    expect(sim.hasVM(vm.id)).toBe(true);
  });

  it('keeps a VM while a VPSieNode of its NodeGroup waits for a requested machine; another NodeGroup does not', async () => {
    const nodeGroup = `ng-w-${unique()}`;
    const waiting = `${nodeGroup}-${unique()}`;
    await fixtures.vpsieNode(namespace, waiting, {
      metadata: { annotations: { [CREATION_REQUESTED_ANNOTATION]: 'true' } },
      spec: { nodeGroupName: nodeGroup },
    });
    await fixtures.setStatus(
      { namespace, name: waiting },
      { phase: 'Provisioning', createdAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z') },
    );
    const vm = addVM(`fresh-${unique()}`);

    const f = await failure(activities.terminateVM({ id: vm.id, identifier: vm.identifier, nodeGroup }));
    expect(f.message).toContain(`VPSieNode ${namespace}/${waiting}: requested a machine`);
    expect(deletes()).toHaveLength(0);

    await expect(
      activities.terminateVM({ id: vm.id, identifier: vm.identifier, nodeGroup: `ng-other-${unique()}` }),
    ).resolves.toBe('terminated');
  });
});

describe('removeClusterNode', () => {
  const machine = () => {
    const cluster = sim.addK8sCluster();
    const group = sim.addK8sNodeGroup(cluster.identifier);
    const hostname = `k8s-w-${unique()}`;
    const node = sim.addK8sNode(cluster.identifier, { groupId: group.id, hostname, ip: uniqueIP() });
    return {
      cluster,
      node,
      // A NodeGroup of its own: pending creations other tests leave behind are not this machine's.
      expected: {
        resourceIdentifier: cluster.identifier,
        identifier: node.identifier,
        hostname,
        nodeGroup: `ng-${unique()}`,
      },
    };
  };

  it('removes the machine the way the autoscaler does, idempotently', async () => {
    const { cluster, node, expected } = machine();
    await expect(activities.removeClusterNode(expected)).resolves.toBe('removed');
    await expect(activities.removeClusterNode(expected)).resolves.toBe('already-gone');
    expect(deletes().map((r) => [r.path, r.body])).toEqual([
      [`/k8s/cluster/byId/${cluster.identifier}/delete/slave`, { identifier: node.identifier }],
    ]);
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toEqual([]);
  });

  it('refuses a machine whose hostname is not the diagnosed one, and deletes nothing', async () => {
    const { cluster, expected } = machine();
    const f = await failure(activities.removeClusterNode({ ...expected, hostname: 'other' }));
    expect(f).toMatchObject({ type: 'ClusterNodePreconditionFailed', nonRetryable: true });
    expect(deletes()).toHaveLength(0);
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toHaveLength(1);
  });

  it('keeps a machine a VPSieNode names by its identifier (a node still id 0)', async () => {
    const { cluster, node, expected } = machine();
    const name = `ng-i-${unique()}`;
    await fixtures.vpsieNode(namespace, name, { spec: { vpsieNodeIdentifier: node.identifier } });
    const f = await failure(activities.removeClusterNode(expected));
    expect(f.type).toBe('MachineClaimed');
    expect(f.message).toContain(`spec.vpsieNodeIdentifier is ${node.identifier}`);
    expect(deletes()).toHaveLength(0);
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toHaveLength(1);
  });
});
