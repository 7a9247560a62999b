import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type RetryPolicy } from '@temporalio/common';
import { createVPSieActivities } from '../../src/activities/vpsie';
import { VPSieClient } from '../../src/clients/vpsie';
import type { MachineQuery } from '../../src/runbook';
import { rejectsWith } from '../support/expect-rejection';
import { secret } from '../support/secrets';
import { TestWorker, uniqueTaskQueue, type TemporalTestContext } from '../support/temporal';
import { VPSieSimulator, capacityFault } from '../support/vpsie-simulator';

const TOKEN = secret('vpsie-token');
const sim = new VPSieSimulator({ token: TOKEN });
let activities: ReturnType<typeof createVPSieActivities>;

beforeAll(async () => {
  const baseUrl = await sim.start();
  activities = createVPSieActivities(new VPSieClient({ baseUrl, token: TOKEN, timeoutMs: 5_000 }));
});
afterAll(() => sim.stop());
beforeEach(() => {
  sim.clearFaults();
  sim.clearRequests();
});

const failure = (p: Promise<unknown>) => rejectsWith(p, ApplicationFailure);

function query(p: Partial<MachineQuery> & { resourceIdentifier: string | null }) {
  return {
    name: 'ng-a-7x2k',
    vpsieInstanceID: 0,
    vpsieNodeIdentifier: null,
    hostname: null,
    nodeName: null,
    ipAddress: null,
    ...p,
  };
}

describe('VPSie activities', () => {
  it('checkVM reduces a VM to its snapshot, and answers null for an id VPSie does not know', async () => {
    const vm = sim.addVM({ name: 'ng-a-1', status: 'running', default_ip: '185.1.2.3' });
    await expect(activities.checkVM(vm.id)).resolves.toMatchObject({
      id: vm.id,
      identifier: vm.identifier,
      name: 'ng-a-1',
      status: 'running',
      ipAddress: '185.1.2.3',
      offeringID: String(vm.boxsize_id),
    });
    await expect(activities.checkVM(987654)).resolves.toBeNull();
  });

  it('checkSSHKeys names the key ids the account does not know, by numeric id or identifier', async () => {
    const key = sim.addSSHKey({ name: 'oncall' });
    const result = await activities.checkSSHKeys([String(key.id), key.identifier, '999999', 'no-such-key']);
    expect(result).toEqual({ known: [String(key.id), key.identifier], unknown: ['999999', 'no-such-key'] });
  });

  it('checkCatalog finds unknown offerings and an unknown image', async () => {
    const [offering] = sim.offeringsList();
    const [dc] = sim.datacentersList();
    const result = await activities.checkCatalog({
      offeringIDs: [String(offering.id), '424242'],
      datacenterID: String(dc.id),
      osImageID: '777777',
    });
    expect(result).toEqual({
      unknownOfferings: ['424242'],
      unavailableOfferings: [],
      datacenter: 'ok',
      image: 'unknown',
    });
  });

  it('listVMs reports what the account holds', async () => {
    const vm = sim.addVM({ name: 'listed-1', status: 'error' });
    const vms = await activities.listVMs();
    expect(vms.find((v) => v.id === vm.id)).toMatchObject({ name: 'listed-1', status: 'error' });
    expect(vms).toHaveLength(sim.listVMs().length);
  });

  it('maps a revoked token to a non-retryable VPSieAuth failure that does not carry the token', async () => {
    sim.inject({ path: '/vm/:id', fault: { type: 'status', status: 401 } });
    const f = await failure(activities.checkVM(1));
    expect(f.type).toBe('VPSieAuth');
    expect(f.nonRetryable).toBe(true);
    expect(sim.requestsTo('GET', '/vm/:id')).toHaveLength(1);
    for (const text of [f.message, JSON.stringify(f.details), inspect(f, { depth: 10 })])
      expect(text).not.toContain(TOKEN);
  });

  it('maps a capacity message to a non-retryable VPSieCapacity failure, whatever the status', async () => {
    sim.inject({ path: '/vm', times: 1, fault: capacityFault(5) });
    sim.inject({ path: '/vm', times: 1, fault: capacityFault(5, 500) });
    for (let i = 0; i < 2; i++) {
      const f = await failure(activities.listVMs());
      expect(f).toMatchObject({ type: 'VPSieCapacity', nonRetryable: true });
      expect(f.message).toContain('Worker nodes count exceeds the allowed limit 5');
    }
  });

  it('leaves Retry-After to Temporal: retryable, with the API’s delay as the next retry delay', async () => {
    sim.inject({ path: '/sshkeys', fault: { type: 'status', status: 429, retryAfter: 20 } });
    const f = await failure(activities.checkSSHKeys(['1']));
    expect(f).toMatchObject({ type: 'VPSieRateLimited', nonRetryable: false });
    expect(f.nextRetryDelay).toBe(20_000);
    expect(sim.requests).toHaveLength(1);
  });

  it('follows a Retry-After only up to the retry policy’s longest interval (one minute)', async () => {
    sim.inject({ path: '/sshkeys', fault: { type: 'status', status: 429, retryAfter: 86_400 } });
    const f = await failure(activities.checkSSHKeys(['1']));
    expect(f).toMatchObject({ type: 'VPSieRateLimited', nonRetryable: false });
    expect(f.nextRetryDelay).toBe(60_000);
  });

  it('a bad argument is a non-retryable InvalidInput, before any request', async () => {
    const f = await failure(activities.checkVM(-1));
    expect(f).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(sim.requests).toHaveLength(0);
  });

  it('fails clearly when no credentials are configured', async () => {
    const f = await failure(createVPSieActivities(null).checkVM(1));
    expect(f.type).toBe('VPSieNotConfigured');
    expect(f.message).toMatch(/VPSIE_TOKEN_FILE.*VPSIE_CLIENT_ID/);
  });
});

describe('managed-Kubernetes activities', () => {
  it('listClusterNodes and listNodeGroups read the cluster; null when VPSie has no such cluster', async () => {
    const cluster = sim.addK8sCluster({ name: 'edge' });
    const group = sim.addK8sNodeGroup(cluster.identifier, { name: 'pool-a' });
    const node = sim.addK8sNode(cluster.identifier, {
      groupId: group.id,
      hostname: 'edge-pool-a-1',
      ip: '10.9.0.2',
    });

    const nodes = await activities.listClusterNodes(cluster.identifier);
    expect(nodes?.map((n) => [n.role, n.hostname])).toEqual([
      ['master', 'edge-master-1'],
      ['slave', 'edge-pool-a-1'],
    ]);
    expect(nodes?.[1]).toEqual({
      identifier: node.identifier,
      hostname: 'edge-pool-a-1',
      ip: '10.9.0.2',
      status: 'running',
      role: 'slave',
      createdOn: node.createdOn,
    });
    await expect(activities.listNodeGroups(cluster.identifier)).resolves.toEqual([
      { id: group.id, identifier: group.identifier, name: 'pool-a', nodesCount: 1 },
    ]);
    await expect(activities.listClusterNodes('no-such-cluster')).resolves.toBeNull();
    await expect(activities.listNodeGroups('no-such-cluster')).resolves.toBeNull();
  });

  it('findMachine matches a VPSieNode with vpsieInstanceID 0 to a machine that is not in GET /vm', async () => {
    const cluster = sim.addK8sCluster();
    const group = sim.addK8sNodeGroup(cluster.identifier);
    const { identifier } = (await new VPSieClient({ baseUrl: sim.baseUrl, token: TOKEN }).addK8sSlave(
      cluster.identifier,
      group.id,
    )) as { identifier: string };
    const [req] = sim.slaveRequests(cluster.identifier);
    const machine = sim.completeSlaveRequest(req.id, { hostname: 'k8s-w-81', ip: '10.2.0.81' });

    const byIdentifier = await activities.findMachine(
      query({ resourceIdentifier: cluster.identifier, vpsieNodeIdentifier: identifier }),
    );
    expect(byIdentifier).toMatchObject({
      cluster: 'found',
      matchedBy: 'identifier',
      node: { identifier: machine.identifier, hostname: 'k8s-w-81', ip: '10.2.0.81' },
      vm: null,
    });
    // The controller's discovery wrote only the IP (a K8s-managed node reaches Ready with id 0 and an IP).
    expect(
      await activities.findMachine(query({ resourceIdentifier: cluster.identifier, ipAddress: '10.2.0.81' })),
    ).toMatchObject({ matchedBy: 'ip', node: { identifier: machine.identifier } });
    // A machine VPSie also lists in GET /vm is matched to its VM as well.
    const listed = sim.addK8sNode(cluster.identifier, {
      groupId: group.id,
      hostname: 'ng-a-7x2k-w',
      inVmList: true,
    });
    expect(await activities.findMachine(query({ resourceIdentifier: cluster.identifier }))).toMatchObject({
      matchedBy: 'hostname-prefix',
      node: { identifier: listed.identifier },
      vm: { id: listed.vmId, hostname: 'ng-a-7x2k-w' },
    });
    expect(
      await activities.findMachine(
        query({ resourceIdentifier: 'no-such-cluster', vpsieNodeIdentifier: identifier }),
      ),
    ).toMatchObject({ cluster: 'unknown', node: null, matchedBy: null });
  });
});

describe('Temporal is the one retry layer', () => {
  const taskQueue = uniqueTaskQueue('vpsie-activities');
  let testWorker: TestWorker | undefined;
  let ctx: TemporalTestContext;

  beforeAll(async () => {
    // Built here: the activities exist only once the file's beforeAll has started the simulator.
    testWorker = new TestWorker({
      taskQueue,
      workflowsPath: require.resolve('../support/run-activity-workflow'),
      activities,
    });
    await testWorker.start();
    ctx = testWorker.ctx;
  }, 120_000);
  afterAll(() => testWorker?.stop());

  /** Runs one activity in the worker, under a retry policy far quicker than the delays VPSie asks for. */
  const run = (name: string, args: unknown[], retry: RetryPolicy = {}) =>
    ctx.client.workflow.execute('runActivity', {
      taskQueue,
      workflowId: `vpsie-activity-${randomUUID()}`,
      args: [
        name,
        args,
        {
          startToCloseTimeout: '30 seconds',
          retry: { initialInterval: '100 ms', backoffCoefficient: 1, maximumAttempts: 5, ...retry },
        },
      ],
    });

  it('a 429 with Retry-After is retried by Temporal after that delay; one request per attempt', async () => {
    const key = sim.addSSHKey({ name: 'after-429' });
    sim.inject({
      method: 'GET',
      path: '/sshkeys',
      times: 2,
      fault: { type: 'status', status: 429, retryAfter: 2 },
    });

    await expect(run('checkSSHKeys', [[key.identifier]])).resolves.toEqual({
      known: [key.identifier],
      unknown: [],
    });

    const requests = sim.requestsTo('GET', '/sshkeys');
    expect(requests.map((r) => r.status)).toEqual([429, 429, 200]);
    // The policy alone would have retried after 100 ms: the gaps are the API's 2 s.
    expect(requests[1].at - requests[0].at).toBeGreaterThanOrEqual(2_000);
    expect(requests[2].at - requests[1].at).toBeGreaterThanOrEqual(2_000);
  });

  it('a transient failure without Retry-After is retried on the policy: two requests, then the answer', async () => {
    const vm = sim.addVM({ name: 'after-503' });
    sim.inject({ method: 'GET', path: '/vm/:id', times: 1, fault: { type: 'status', status: 503 } });
    await expect(run('checkVM', [vm.id])).resolves.toMatchObject({ id: vm.id, name: 'after-503' });
    expect(sim.requestsTo('GET', '/vm/:id').map((r) => r.status)).toEqual([503, 200]);
  });

  it('a short list is refused and read whole on the next attempt', async () => {
    const before = sim.listVMs().length;
    sim.addVM();
    sim.addVM();
    sim.inject({ method: 'GET', path: '/vm', times: 1, fault: { type: 'short-list' } });
    const vms = (await run('listVMs', [])) as unknown[];
    expect(vms).toHaveLength(before + 2);
    expect(sim.requestsTo('GET', '/vm').map((r) => [r.query.page, r.fault ?? r.status])).toEqual([
      ['1', 'short-list'],
      ['2', 200],
      ['1', 200],
    ]);
  });

  it.each<[string, Parameters<typeof sim.inject>[0]['fault'], string]>([
    ['403', { type: 'status', status: 403 }, 'VPSieForbidden'],
    ['capacity', capacityFault(4), 'VPSieCapacity'],
  ])(
    'a permanent failure (%s) is not retried: one request, the run fails with its type',
    async (_n, fault, type) => {
      sim.inject({ method: 'GET', path: '/sshkeys', fault });
      const err = await rejectsWith(run('checkSSHKeys', [['1']]), WorkflowFailedError);
      const cause = (err.cause as { cause?: unknown }).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect(cause).toMatchObject({ type, nonRetryable: true });
      expect(sim.requestsTo('GET', '/sshkeys')).toHaveLength(1);
    },
  );
});
