import http from 'node:http';
import util from 'node:util';

import { VPSieApiError, VPSieClient, isCapacityMessage, parseRetryAfter } from '../../src/clients/vpsie';
import type { VPSieClientOptions } from '../../src/clients/vpsie';
import { rejectsWith } from '../support/expect-rejection';
import { VPSieSimulator, capacityFault, capacityMessage } from '../support/vpsie-simulator';

const TOKEN = 'tok-7d3f0b9c5a1e4f2d8b6a0c9e7f5d3b1a';
const CREDENTIALS = { clientId: 'runbook-client-41', clientSecret: 'cs-9b8a7c6d5e4f3a2b1c0d' };

let sim: VPSieSimulator;
let baseUrl: string;

beforeEach(async () => {
  sim = new VPSieSimulator({ token: TOKEN, credentials: CREDENTIALS });
  baseUrl = await sim.start();
});

afterEach(async () => {
  await sim.stop();
});

function client(overrides: Partial<VPSieClientOptions> = {}): VPSieClient {
  return new VPSieClient({ baseUrl, token: TOKEN, timeoutMs: 2_000, ...overrides });
}

function credentialsClient(overrides: Partial<VPSieClientOptions> = {}): VPSieClient {
  return new VPSieClient({ baseUrl, credentials: { ...CREDENTIALS }, timeoutMs: 2_000, ...overrides });
}

const failure = (p: Promise<unknown>) => rejectsWith(p, VPSieApiError);

/** Waits for a condition the simulator reaches (never a fixed sleep). */
async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function expectNoSecret(err: unknown, secret = TOKEN): void {
  const e = err as Error;
  const renderings = [
    String(e),
    e.message,
    e.stack ?? '',
    JSON.stringify(e),
    util.inspect(e, { depth: 10, showHidden: true }),
  ];
  for (const text of renderings) expect(text).not.toContain(secret);
  expect(e).not.toHaveProperty('cause');
  expect(e).not.toHaveProperty('config');
  expect(e).not.toHaveProperty('request');
  expect(e).not.toHaveProperty('response');
}

describe('VMs, catalog and SSH keys', () => {
  test('listVMs follows pagination until it holds `total` items', async () => {
    const ids = Array.from({ length: 7 }, () => sim.addVM().id);
    const vms = await client({ pageSize: 3 }).listVMs();

    expect(vms.map((v) => v.id)).toEqual(ids);
    const gets = sim.requestsTo('GET', '/vm');
    expect(gets.map((r) => r.query)).toEqual([
      { page: '1', per_page: '3' },
      { page: '2', per_page: '3' },
      { page: '3', per_page: '3' },
    ]);
    expect(gets.every((r) => r.auth === 'valid' && r.status === 200)).toBe(true);
    // Field names as §3.
    expect(Object.keys(vms[0])).toEqual(
      expect.arrayContaining([
        'id',
        'identifier',
        'name',
        'hostname',
        'status',
        'cpu',
        'ram',
        'ssd',
        'default_ip',
        'default_ipv6',
        'boxsize_id',
        'datacenter_id',
        'os_name',
        'os_version',
        'created_on',
        'last_updated',
        'tags',
        'notes',
      ]),
    );
  });

  test('listVMs of an empty account is one request and an empty list', async () => {
    expect(await client().listVMs()).toEqual([]);
    expect(sim.requests).toHaveLength(1);
  });

  test('a list in the SDK shape ({data, total}) is read too; without any total the answer is the whole list', async () => {
    const vm = { id: 7, identifier: 'u-7', hostname: 'a', status: 'running' };
    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'json', body: { error: false, data: [vm], total: 2 } },
    });
    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'json', body: { error: false, data: [{ ...vm, id: 8, identifier: 'u-8' }], total: 2 } },
    });
    expect((await client().listVMs()).map((v) => v.id)).toEqual([7, 8]);
    sim.clearRequests();
    sim.inject({ path: '/vm', times: 1, fault: { type: 'json', body: { data: [vm] } } });
    expect((await client().listVMs()).map((v) => v.id)).toEqual([7]);
    expect(sim.requests).toHaveLength(1);
  });

  test('getVM answers the VM, and null for an unknown id (one request)', async () => {
    const vm = sim.addVM({ name: 'ng-a-1', status: 'provisioning' });
    const c = client();
    expect(await c.getVM(vm.id)).toMatchObject({ id: vm.id, name: 'ng-a-1', status: 'provisioning' });
    sim.clearRequests();
    expect(await c.getVM(999_999)).toBeNull();
    expect(sim.requests.map((r) => [r.method, r.path, r.status])).toEqual([['GET', '/vm/999999', 404]]);
  });

  test('deleteVM twice: the second is alreadyGone, two DELETEs seen, onDelete fired once', async () => {
    const vm = sim.addVM();
    const deleted: number[] = [];
    sim.onDelete((v) => deleted.push(v.id));
    const c = client();

    expect(await c.deleteVM(vm.id)).toEqual({ alreadyGone: false });
    expect(await c.deleteVM(vm.id)).toEqual({ alreadyGone: true });

    const deletes = sim.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path, r.status])).toEqual([
      [`/vm/${vm.id}`, 200],
      [`/vm/${vm.id}`, 404],
    ]);
    expect(sim.hasVM(vm.id)).toBe(false);
    expect(deleted).toEqual([vm.id]);
  });

  test('vmAction sends {action} and changes the VM; unknown VM is a permanent not-found', async () => {
    const vm = sim.addVM({ status: 'running' });
    const c = client();
    await c.vmAction(vm.id, 'stop');
    expect(sim.getVM(vm.id)?.status).toBe('stopped');
    await c.vmAction(vm.id, 'start');
    expect(sim.getVM(vm.id)?.status).toBe('running');
    expect(sim.requestsTo('POST', '/vm/:id/action').map((r) => r.body)).toEqual([
      { action: 'stop' },
      { action: 'start' },
    ]);

    sim.clearRequests();
    const err = await failure(c.vmAction(424_242, 'restart'));
    expect(err).toMatchObject({ kind: 'not-found', status: 404, permanent: true, method: 'POST' });
    expect(sim.requests).toHaveLength(1);
  });

  test('catalog and SSH keys: field names, ids normalised to strings, 404 → null', async () => {
    sim.addOffering({ id: 104, cpu: 16, ram: 32768, available: false });
    const key = sim.addSSHKey({ name: 'deploy' });
    const c = client({ pageSize: 2 });

    const offerings = await c.listOfferings();
    expect(offerings.map((o) => [o.id, o.available])).toEqual([
      ['101', true],
      ['102', true],
      ['103', true],
      ['104', false],
    ]);
    expect(offerings[0]).toMatchObject({ cpu: 2, ram: 4096, disk: 80, datacenter_id: '1' });
    expect(sim.requestsTo('GET', '/offerings')).toHaveLength(2);
    expect(await c.getOffering('102')).toMatchObject({ id: '102', cpu: 4 });
    expect(await c.getOffering(999)).toBeNull();

    expect((await c.listDatacenters()).map((d) => [d.id, d.code, d.available])).toEqual([
      ['1', 'nyc1', true],
      ['2', 'fra1', true],
    ]);
    expect((await c.listImages()).map((i) => [i.id, i.distribution, i.version])).toEqual([
      ['201', 'ubuntu', '22.04'],
      ['202', 'debian', '12'],
    ]);

    const keys = await c.listSSHKeys();
    expect(keys.map((k) => k.name)).toEqual(['ops', 'deploy']);
    expect(keys[1]).toEqual({
      id: key.id,
      identifier: key.identifier,
      name: 'deploy',
      created_on: key.created_on,
    });
    expect(await c.getSSHKey(key.identifier)).toMatchObject({ id: key.id, name: 'deploy' });
    expect(await c.getSSHKey('00000000-0000-4000-8000-000000000000')).toBeNull();
  });

  test('sends the bearer token and a User-Agent; the simulator never records the token', async () => {
    await client({ userAgent: 'runbook-test/1' }).listVMs();
    expect(sim.requests[0]).toMatchObject({ auth: 'valid', userAgent: 'runbook-test/1' });
    expect(JSON.stringify(sim.requests)).not.toContain(TOKEN);
  });
});

describe('managed Kubernetes', () => {
  function seedCluster() {
    const cluster = sim.addK8sCluster({ name: 'prod-k8s' });
    const group = sim.addK8sNodeGroup(cluster.identifier, { id: 31, name: 'workers' });
    return { cluster, group };
  }

  test('listK8sClusters: every cluster with its identifier and name', async () => {
    const { cluster } = seedCluster();
    const other = sim.addK8sCluster({ name: 'staging-k8s' });
    const clusters = await client().listK8sClusters();
    expect(clusters.map((c) => [c.identifier, c.cluster_name])).toEqual([
      [cluster.identifier, 'prod-k8s'],
      [other.identifier, 'staging-k8s'],
    ]);
    expect(clusters[0]).toMatchObject({ managerCount: 1, slaveCount: 0, kube_version: expect.any(String) });
    expect(sim.requests.map((r) => [r.method, r.path])).toEqual([['GET', '/k8s/cluster/all']]);
  });

  test('getK8sCluster: the cluster with its nodes (master and workers); null for an unknown cluster', async () => {
    const { cluster, group } = seedCluster();
    const worker = sim.addK8sNode(cluster.identifier, {
      groupId: group.id,
      hostname: 'prod-k8s-w-1',
      ip: '10.1.0.5',
    });
    const c = client();

    const info = await c.getK8sCluster(cluster.identifier);
    expect(info).toMatchObject({
      identifier: cluster.identifier,
      cluster_name: 'prod-k8s',
      status: 'running',
    });
    expect(info?.nodes.map((n) => [n.role, n.hostname])).toEqual([
      ['master', 'prod-k8s-master-1'],
      ['slave', 'prod-k8s-w-1'],
    ]);
    expect(info?.nodes[1]).toEqual({
      identifier: worker.identifier,
      hostname: 'prod-k8s-w-1',
      ip: '10.1.0.5',
      status: 'running',
      role: 'slave',
      cpu: expect.any(Number),
      ram: expect.any(Number),
      disk: expect.any(Number),
      created_on: worker.createdOn,
    });

    sim.clearRequests();
    expect(await c.getK8sCluster('no-such-cluster')).toBeNull();
    expect(sim.requests.map((r) => [r.path, r.status])).toEqual([['/k8s/cluster/byId/no-such-cluster', 404]]);
  });

  test('getK8sCluster also reads machines listed as masters/slaves (the older answer)', async () => {
    const node = (identifier: string, role: string) => ({
      identifier,
      hostname: identifier,
      ip: null,
      status: 'running',
      role,
    });
    sim.inject({
      path: '/k8s/cluster/byId/:id',
      fault: {
        type: 'json',
        body: {
          error: false,
          data: { identifier: 'c-1', masters: [node('m-1', 'master')], slaves: [node('s-1', 'slave')] },
        },
      },
    });
    const info = await client().getK8sCluster('c-1');
    expect(info?.nodes.map((n) => n.identifier)).toEqual(['s-1', 'm-1']);
  });

  test('listK8sNodeGroups: numeric ids and names; null for an unknown cluster', async () => {
    const { cluster } = seedCluster();
    sim.addK8sNodeGroup(cluster.identifier, { id: 32, name: 'gpu' });
    const c = client();
    const groups = await c.listK8sNodeGroups(cluster.identifier);
    expect(groups?.map((g) => [g.id, g.group_name, g.nodes_count])).toEqual([
      [31, 'workers', 0],
      [32, 'gpu', 0],
    ]);
    expect(await c.listK8sNodeGroups('no-such-cluster')).toBeNull();
  });

  test('addK8sSlave, asynchronous with an identifier: id 0, the identifier; the machine appears once VPSie completes it', async () => {
    const { cluster, group } = seedCluster();
    const requested: number[] = [];
    sim.onSlaveRequested((r) => requested.push(r.id));
    const c = client();

    const added = await c.addK8sSlave(cluster.identifier, group.id);
    expect(added).toEqual({ id: 0, identifier: expect.any(String), hostname: '', status: '' });
    expect(added.identifier).not.toBe('');
    const [req] = sim.slaveRequests(cluster.identifier);
    expect(req).toMatchObject({ groupId: group.id, identifier: added.identifier });
    expect(requested).toEqual([req.id]);
    expect(sim.requests.map((r) => [r.method, r.path])).toEqual([
      ['POST', `/k8s/cluster/byId/${cluster.identifier}/add/slave/group/${group.id}`],
    ]);
    // Not there yet.
    expect((await c.getK8sCluster(cluster.identifier))?.nodes.filter((n) => n.role === 'slave')).toEqual([]);

    const made = sim.completeSlaveRequest(req.id, { hostname: 'prod-k8s-workers-x1', ip: '10.1.0.9' });
    expect(made).toMatchObject({ identifier: added.identifier, vmId: 0 });
    const nodes = (await c.getK8sCluster(cluster.identifier))?.nodes ?? [];
    expect(nodes.find((n) => n.identifier === added.identifier)).toMatchObject({
      hostname: 'prod-k8s-workers-x1',
      ip: '10.1.0.9',
    });
    // A machine made this way is not in GET /vm unless VPSie lists it there.
    expect(await c.listVMs()).toEqual([]);
    expect(sim.slaveRequests()).toEqual([]);
  });

  test('addK8sSlave answered {data: true}: accepted, nothing known yet', async () => {
    const { cluster, group } = seedCluster();
    sim.setAddSlaveAnswer('async-true');
    expect(await client().addK8sSlave(cluster.identifier, group.id)).toEqual({
      id: 0,
      identifier: '',
      hostname: '',
      status: 'provisioning',
    });
    const [req] = sim.slaveRequests();
    const node = sim.completeSlaveRequest(req.id, { inVmList: true });
    expect(node.identifier).not.toBe('');
    expect(sim.getVM(node.vmId)).toMatchObject({ hostname: node.hostname, default_ip: node.ip });
    expect((await client().listVMs()).map((v) => v.hostname)).toEqual([node.hostname]);
  });

  test('addK8sSlave answered at once: the machine with its VM id', async () => {
    const { cluster, group } = seedCluster();
    sim.setAddSlaveAnswer('sync');
    const added = await client().addK8sSlave(cluster.identifier, group.id);
    expect(added.id).toBeGreaterThan(0);
    expect(sim.getVM(added.id)).toMatchObject({ hostname: added.hostname, status: added.status });
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toEqual([
      expect.objectContaining({ identifier: added.identifier, vmId: added.id }),
    ]);
  });

  test('addK8sSlave to an unknown cluster or group: permanent not-found', async () => {
    const { cluster } = seedCluster();
    const c = client();
    expect(await failure(c.addK8sSlave('no-such-cluster', 31))).toMatchObject({
      kind: 'not-found',
      permanent: true,
    });
    const err = await failure(c.addK8sSlave(cluster.identifier, 99));
    expect(err).toMatchObject({ kind: 'not-found', permanent: true, status: 404 });
    expect(err.message).toContain('Node group 99 not found');
    expect(sim.slaveRequests()).toEqual([]);
  });

  test('a cluster at its worker limit answers HTTP 500 with the capacity message: permanent "capacity"', async () => {
    const { cluster, group } = seedCluster();
    sim.setK8sWorkerLimit(cluster.identifier, 1);
    const c = client();
    await c.addK8sSlave(cluster.identifier, group.id);
    const err = await failure(c.addK8sSlave(cluster.identifier, group.id));
    expect(err).toMatchObject({ kind: 'capacity', permanent: true, status: 500, code: '500' });
    expect(err.apiMessage).toBe(capacityMessage(1));
    expect(sim.slaveRequests()).toHaveLength(1);
  });

  test('deleteK8sNode: DELETE with the identifier in the body; the machine and its VM go; a second is alreadyGone', async () => {
    const { cluster, group } = seedCluster();
    const node = sim.addK8sNode(cluster.identifier, { groupId: group.id, inVmList: true });
    const deleted: string[] = [];
    sim.onK8sNodeDeleted((id, n) => deleted.push(`${id}/${n.identifier}`));
    const c = client();

    expect(await c.deleteK8sNode(cluster.identifier, node.identifier)).toEqual({ alreadyGone: false });
    expect(await c.deleteK8sNode(cluster.identifier, node.identifier)).toEqual({ alreadyGone: true });

    expect(sim.requests.map((r) => [r.method, r.path, r.body, r.status])).toEqual([
      [
        'DELETE',
        `/k8s/cluster/byId/${cluster.identifier}/delete/slave`,
        { identifier: node.identifier },
        200,
      ],
      [
        'DELETE',
        `/k8s/cluster/byId/${cluster.identifier}/delete/slave`,
        { identifier: node.identifier },
        404,
      ],
    ]);
    expect(deleted).toEqual([`${cluster.identifier}/${node.identifier}`]);
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toEqual([]);
    expect(sim.hasVM(node.vmId)).toBe(false);
  });

  test('bad identifiers are caller bugs: RangeError before any request', async () => {
    const c = client();
    await expect(c.getK8sCluster('')).rejects.toThrow(RangeError);
    await expect(c.addK8sSlave('c', 0)).rejects.toThrow(RangeError);
    await expect(c.deleteK8sNode('c', '')).rejects.toThrow(RangeError);
    expect(sim.requests).toHaveLength(0);
  });
});

describe('{"error": true} in a 2xx answer is an error', () => {
  test.each([
    ['Worker nodes count exceeds the allowed limit 5'],
    ['Resource quota exceeded for this project'],
    ['Your plan does not allow more than 3 clusters'],
    ['Maximum number of VMs reached for your account'],
    ['CPU limit reached for this datacenter'],
    ['Your subscription does not allow this operation'],
  ])('capacity: "%s" is permanent', async (message) => {
    expect(isCapacityMessage(message.toUpperCase())).toBe(true);
    const { identifier } = sim.addK8sCluster();
    sim.inject({ path: '/k8s/cluster/byId/:id/add/slave/group/:gid', fault: { type: 'api-error', message } });
    const err = await failure(client().addK8sSlave(identifier, 1));
    expect(err).toMatchObject({ kind: 'capacity', permanent: true, status: 200, apiMessage: message });
    expect(err.message).toContain('failed: HTTP 200 OK with {"error": true}');
    expect(sim.requests).toHaveLength(1);
  });

  test('the simulator capacity fault reads as capacity; other messages do not', async () => {
    sim.inject({ path: '/vm', times: 1, fault: capacityFault(3) });
    expect(await failure(client().listVMs())).toMatchObject({
      kind: 'capacity',
      apiMessage: capacityMessage(3),
    });
    expect(isCapacityMessage('Internal error, try again')).toBe(false);
    expect(isCapacityMessage('Rate limit exceeded')).toBe(false);
  });

  test('a transient API error (code 503, or no code at all) is transient; Retry-After is kept', async () => {
    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'api-error', code: 503, message: 'Service busy', retryAfter: 7 },
    });
    expect(await failure(client().listVMs())).toMatchObject({
      kind: 'server',
      permanent: false,
      status: 200,
      code: '503',
      retryAfterMs: 7_000,
    });
    sim.inject({
      path: '/vm',
      times: 1,
      fault: { type: 'json', body: { error: true, message: 'Something failed' } },
    });
    expect(await failure(client().listVMs())).toMatchObject({ kind: 'server', permanent: false });
    expect(sim.requests).toHaveLength(2);
  });

  test('code 404 in the envelope means gone: getVM answers null, deleteK8sNode alreadyGone', async () => {
    sim.inject({ path: '/vm/:id', fault: { type: 'api-error', code: 404, message: 'VM not found' } });
    sim.inject({
      path: '/k8s/cluster/byId/:id/delete/slave',
      fault: { type: 'api-error', code: 404, message: 'gone' },
    });
    expect(await client().getVM(5)).toBeNull();
    expect(await client().deleteK8sNode('c-1', 'n-1')).toEqual({ alreadyGone: true });
  });
});

describe('short lists are refused', () => {
  test('a list whose pages end before `total`: transient "incomplete", never a short answer', async () => {
    for (let i = 0; i < 7; i++) sim.addVM();
    sim.inject({ method: 'GET', path: '/vm', times: 1, fault: { type: 'short-list' } });
    const err = await failure(client({ pageSize: 3 }).listVMs());
    expect(err).toMatchObject({ kind: 'incomplete', permanent: false });
    expect(err.message).toContain('the API reported 7 items but answered 6');
    // Pages 1 (short), 2, 3, then 4 (empty): the client looked for the rest before refusing.
    expect(sim.requestsTo('GET', '/vm').map((r) => r.query.page)).toEqual(['1', '2', '3', '4']);
  });

  test('a managed-Kubernetes list that keeps answering short', async () => {
    const cluster = sim.addK8sCluster();
    sim.addK8sNodeGroup(cluster.identifier);
    sim.addK8sNodeGroup(cluster.identifier);
    sim.inject({ path: '/k8s/node/groups/byClusterId/:id', fault: { type: 'short-list' } });
    const err = await failure(client().listK8sNodeGroups(cluster.identifier));
    expect(err).toMatchObject({ kind: 'incomplete', permanent: false });
    expect(err.message).toContain('reported 2 items but answered 1');
    expect(sim.requests).toHaveLength(2);
  });

  test('the next page making up the difference is fine (a list that changed while it was read)', async () => {
    sim.addK8sCluster();
    sim.addK8sCluster();
    sim.inject({ path: '/k8s/cluster/all', times: 1, fault: { type: 'short-list' } });
    expect(await client().listK8sClusters()).toHaveLength(2);
    expect(sim.requests).toHaveLength(2);
  });

  test('a list that never ends is malformed past maxPages', async () => {
    sim.inject({
      path: '/vm',
      fault: { type: 'json', body: { data: [], pagination: { total_pages: 1_000_000 } } },
    });
    const err = await failure(client({ maxPages: 3 }).listVMs());
    expect(err).toMatchObject({ kind: 'malformed', permanent: true });
    expect(sim.requests).toHaveLength(3);
  });
});

describe('one attempt per call: the caller (Temporal) retries', () => {
  test.each<[string, number, string]>([
    ['500', 500, 'server'],
    ['502', 502, 'server'],
    ['503', 503, 'server'],
  ])('%s is transient, one request', async (_name, status, kind) => {
    sim.inject({ path: '/vm', fault: { type: 'status', status } });
    const err = await failure(client().listVMs());
    expect(err).toMatchObject({ kind, status, permanent: false });
    expect(err.retryAfterMs).toBeUndefined();
    expect(sim.requests).toHaveLength(1);
  });

  test('429 with Retry-After: transient, one request, the delay for the caller', async () => {
    sim.inject({ path: '/vm/:id', fault: { type: 'status', status: 429, retryAfter: 2 } });
    const err = await failure(client().getVM(1));
    expect(err).toMatchObject({ kind: 'rate-limited', status: 429, permanent: false, retryAfterMs: 2_000 });
    expect(err.message).toContain('HTTP 429 Too Many Requests');
    expect(sim.requests).toHaveLength(1);
  });

  test('an HTTP-date Retry-After on a 503 is honoured', async () => {
    sim.inject({
      path: '/vm',
      fault: { type: 'status', status: 503, retryAfter: new Date(Date.now() + 60_000).toUTCString() },
    });
    const err = await failure(client().listVMs());
    expect(err.retryAfterMs).toBeGreaterThan(55_000);
    expect(err.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  test('a slow answer beyond timeoutMs is a transient timeout, one request', async () => {
    sim.inject({ path: '/vm', fault: { type: 'slow', delayMs: 1_000 } });
    const err = await failure(client({ timeoutMs: 150 }).listVMs());
    expect(err).toMatchObject({ kind: 'timeout', permanent: false });
    expect(err.status).toBeUndefined();
    expect(err.message).toContain('no answer within 150 ms');
    expect(sim.requests).toHaveLength(1);
  });

  test('a reset connection is a transient network error, one request', async () => {
    sim.inject({ path: '/datacenters', fault: { type: 'reset' } });
    const err = await failure(client().listDatacenters());
    expect(err).toMatchObject({ kind: 'network', permanent: false });
    expect(sim.requests).toHaveLength(1);
  });

  test('connection refused is a transient network error', async () => {
    const c = client();
    await sim.stop();
    expect(await failure(c.listVMs())).toMatchObject({
      kind: 'network',
      permanent: false,
      code: 'ECONNREFUSED',
    });
  });

  test('an abort signal stops a hung call at once, with its reason', async () => {
    sim.inject({ path: '/vm', fault: { type: 'hang' } });
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const call = client({ timeoutMs: 30_000 }).listVMs({ signal: controller.signal });
    await until(() => sim.requests.length === 1);
    const started = Date.now();
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('permanent errors', () => {
  test('401 from a wrong static token: one request, no retry', async () => {
    const err = await failure(client({ token: 'wrong-token-123456' }).listVMs());
    expect(err).toMatchObject({ kind: 'auth', status: 401, permanent: true, method: 'GET' });
    expect(err.path).toBe('/vm?page=1&per_page=100');
    expect(err.message).toContain('GET /vm?page=1&per_page=100 failed: HTTP 401 Unauthorized');
    expect(err.message).toContain('Invalid or expired token');
    expect(sim.requests.map((r) => r.auth)).toEqual(['invalid']);
    expectNoSecret(err, 'wrong-token-123456');
  });

  test('403 injected', async () => {
    const vm = sim.addVM();
    sim.inject({ method: 'DELETE', path: '/vm/:id', fault: { type: 'status', status: 403 } });
    const err = await failure(client().deleteVM(vm.id));
    expect(err).toMatchObject({
      kind: 'forbidden',
      status: 403,
      permanent: true,
      method: 'DELETE',
      code: '403',
    });
    expect(err.message).toMatch(
      /DELETE \/vm\/\d+ failed: HTTP 403 Forbidden: Forbidden: You do not have permission/,
    );
    expect(sim.hasVM(vm.id)).toBe(true);
  });

  test('other 4xx is permanent "rejected", with the API code and message', async () => {
    sim.inject({
      path: '/vm',
      fault: {
        type: 'status',
        status: 422,
        body: { error: 'Unprocessable', message: 'bad page', code: 'E_PAGE' },
      },
    });
    expect(await failure(client().listVMs())).toMatchObject({
      kind: 'rejected',
      status: 422,
      permanent: true,
      code: 'E_PAGE',
      apiMessage: 'bad page',
    });
  });

  test('a 2xx body that is not JSON is malformed', async () => {
    sim.inject({ method: 'GET', path: '/vm', fault: { type: 'invalid-json' } });
    const err = await failure(client().listVMs());
    expect(err).toMatchObject({ kind: 'malformed', permanent: true, status: 200 });
    expect(err.message).toContain('not JSON');
  });

  test('wrong shapes are malformed, naming the field', async () => {
    const c = client();
    const shapes: Array<[unknown, RegExp]> = [
      [{ data: { not: 'an array' } }, /data: .*expected array/],
      [{ data: [{ id: 'abc', identifier: 'u' }] }, /data\.0\.id: .*expected number/],
      [{ data: [{ id: 3 }] }, /data\.0\.identifier: /],
      [{ data: [], pagination: { total: 'many' } }, /pagination\.total: /],
    ];
    for (const [body, problem] of shapes) {
      sim.inject({ path: '/vm', times: 1, fault: { type: 'json', body } });
      const err = await failure(c.listVMs());
      expect(err).toMatchObject({ kind: 'malformed', permanent: true });
      expect(err.message).toMatch(problem);
    }
    sim.inject({ path: '/vm/:id', times: 1, fault: { type: 'json', body: { error: false, data: 'nope' } } });
    expect(await failure(c.getVM(5))).toMatchObject({ kind: 'malformed' });
    sim.inject({
      path: '/k8s/cluster/byId/:id/add/slave/group/:gid',
      fault: { type: 'json', body: { data: false } },
    });
    expect(await failure(c.addK8sSlave('c', 1))).toMatchObject({ kind: 'malformed' });
    expect(sim.requests).toHaveLength(shapes.length + 2);
  });
});

describe('client id and secret: the token exchange at POST /auth/from/api', () => {
  test('exchanges once, form-encoded, and uses the access token until it is renewed', async () => {
    const { id } = sim.addVM();
    const c = credentialsClient();
    await c.listVMs();
    await c.getVM(id);

    expect(sim.requests.map((r) => [r.method, r.path, r.auth, r.status])).toEqual([
      ['POST', '/auth/from/api', 'missing', 200],
      ['GET', '/vm', 'valid', 200],
      ['GET', `/vm/${id}`, 'valid', 200],
    ]);
    // The simulator keeps the client id of the form, never the secret.
    expect(sim.requests[0].body).toEqual({ clientId: CREDENTIALS.clientId });
    expect(sim.accessTokensIssued).toBe(1);
  });

  test('a 401 (the access token expired early) re-exchanges once and repeats the request', async () => {
    const c = credentialsClient();
    await c.listVMs();
    sim.expireAccessTokens();
    sim.clearRequests();

    expect(await c.listVMs()).toEqual([]);
    expect(sim.requests.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/vm', 401],
      ['POST', '/auth/from/api', 200],
      ['GET', '/vm', 200],
    ]);
    expect(sim.accessTokensIssued).toBe(2);
  });

  test('a 401 after the re-exchange is a permanent auth error: no loop', async () => {
    const c = credentialsClient();
    sim.inject({ path: '/vm', fault: { type: 'status', status: 401 } });
    const err = await failure(c.listVMs());
    expect(err).toMatchObject({ kind: 'auth', status: 401, permanent: true });
    expect(sim.requests.map((r) => [r.method, r.path])).toEqual([
      ['POST', '/auth/from/api'],
      ['GET', '/vm'],
      ['POST', '/auth/from/api'],
      ['GET', '/vm'],
    ]);
  });

  test('concurrent calls share one exchange', async () => {
    const c = credentialsClient();
    await Promise.all([c.listVMs(), c.listImages(), c.listDatacenters()]);
    expect(sim.requestsTo('POST', '/auth/from/api')).toHaveLength(1);
  });

  test('wrong credentials: permanent auth error naming the exchange, with no secret in it', async () => {
    sim.setClientCredentials({ clientId: CREDENTIALS.clientId, clientSecret: 'rotated-elsewhere' });
    const err = await failure(credentialsClient().listVMs());
    expect(err).toMatchObject({ kind: 'auth', status: 401, permanent: true, path: '/auth/from/api' });
    expect(err.message).toContain('Invalid credentials');
    expect(sim.requests).toHaveLength(1);
    expectNoSecret(err, CREDENTIALS.clientSecret);
  });

  test('a failing exchange is transient like any call; the next call exchanges again', async () => {
    sim.inject({ path: '/auth/from/api', times: 1, fault: { type: 'status', status: 503 } });
    const c = credentialsClient();
    expect(await failure(c.listVMs())).toMatchObject({
      kind: 'server',
      permanent: false,
      path: '/auth/from/api',
    });
    expect(await c.listVMs()).toEqual([]);
    expect(sim.requests.map((r) => [r.path, r.status])).toEqual([
      ['/auth/from/api', 503],
      ['/auth/from/api', 200],
      ['/vm', 200],
    ]);
  });

  test('a credentials provider is asked at every exchange, so rotated credentials need no restart', async () => {
    let current = { ...CREDENTIALS };
    const provider = jest.fn(async () => current);
    const c = credentialsClient({ credentials: provider });
    await c.listVMs();
    current = { clientId: 'runbook-client-42', clientSecret: 'cs-rotated-0000' };
    sim.setClientCredentials(current);
    sim.expireAccessTokens();
    await c.listVMs();
    expect(provider).toHaveBeenCalledTimes(2);
    expect(sim.requestsTo('POST', '/auth/from/api').map((r) => r.body)).toEqual([
      { clientId: CREDENTIALS.clientId },
      { clientId: 'runbook-client-42' },
    ]);
  });

  test('an access token near its stated expiry is renewed before use', async () => {
    await sim.stop();
    sim = new VPSieSimulator({ credentials: CREDENTIALS, accessTokenTtlMs: 60_000 }); // inside the 5 min buffer
    baseUrl = await sim.start();
    const c = credentialsClient();
    await c.listVMs();
    await c.listVMs();
    expect(sim.requests.map((r) => [r.path, r.status])).toEqual([
      ['/auth/from/api', 200],
      ['/vm', 200],
      ['/auth/from/api', 200],
      ['/vm', 200],
    ]);
  });
});

describe('secrets never appear in errors', () => {
  const cases: Array<[string, (s: VPSieSimulator) => void, Partial<VPSieClientOptions>]> = [
    ['401', () => undefined, { token: `${TOKEN}-expired` }],
    [
      '403 whose body echoes the token',
      (s) =>
        s.inject({
          path: '/vm',
          fault: {
            type: 'status',
            status: 403,
            body: { error: `token ${TOKEN}`, message: `no: ${TOKEN}`, code: 403 },
          },
        }),
      {},
    ],
    ['503', (s) => s.inject({ path: '/vm', fault: { type: 'status', status: 503 } }), {}],
    [
      'non-JSON error body echoing the token',
      (s) =>
        s.inject({
          path: '/vm',
          fault: { type: 'invalid-json', status: 502, body: `<h1>Bearer ${TOKEN}</h1>` },
        }),
      {},
    ],
    [
      'malformed 200 echoing the token',
      (s) => s.inject({ path: '/vm', fault: { type: 'invalid-json', body: `oops ${TOKEN}` } }),
      {},
    ],
    [
      'error envelope echoing the token',
      (s) =>
        s.inject({
          path: '/vm',
          fault: { type: 'api-error', message: `token ${TOKEN} over quota exceeded` },
        }),
      {},
    ],
    ['timeout', (s) => s.inject({ path: '/vm', fault: { type: 'hang' } }), { timeoutMs: 100 }],
    ['network', (s) => s.inject({ path: '/vm', fault: { type: 'reset' } }), {}],
  ];

  test.each(cases)('the token never appears in the error: %s', async (_name, arrange, options) => {
    arrange(sim);
    const token = typeof options.token === 'string' ? options.token : TOKEN;
    const err = await failure(client(options).listVMs());
    expectNoSecret(err, token);
    expectNoSecret(err, TOKEN);
  });

  test('neither the client secret nor the access token appears in errors or the request log', async () => {
    const c = credentialsClient();
    await c.listVMs();
    const accessToken = 'sim-access-';
    sim.inject({
      path: '/vm',
      fault: {
        type: 'status',
        status: 500,
        body: { error: `secret ${CREDENTIALS.clientSecret}`, message: `secret ${CREDENTIALS.clientSecret}` },
      },
    });
    const err = await failure(c.listVMs());
    expectNoSecret(err, CREDENTIALS.clientSecret);
    expectNoSecret(err, accessToken);
    expect(JSON.stringify(sim.requests)).not.toContain(CREDENTIALS.clientSecret);
    expect(JSON.stringify(sim.requests)).not.toContain(accessToken);
  });

  test('inspecting or serialising the client itself shows no secret', async () => {
    for (const c of [client(), credentialsClient()]) {
      await c.listVMs();
      for (const text of [util.inspect(c, { depth: 10, showHidden: true }), JSON.stringify(c)]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(CREDENTIALS.clientSecret);
        expect(text).not.toContain('sim-access-');
      }
    }
  });
});

describe('token provider', () => {
  test('is called for every request, so a rotated token is used without a restart', async () => {
    sim.addVM();
    sim.addVM();
    let current = 'rotating-token-aaaaaaaa';
    const provider = jest.fn(async () => current);
    sim.setToken(current);
    const c = client({ token: provider, pageSize: 1 });

    await c.listVMs(); // 2 pages
    expect(provider).toHaveBeenCalledTimes(2);
    current = 'rotating-token-bbbbbbbb';
    sim.setToken(current);
    await c.listVMs();
    expect(provider).toHaveBeenCalledTimes(4);
    expect(sim.requests.every((r) => r.auth === 'valid')).toBe(true);
  });

  test('a provider that fails → transient auth error, no request sent', async () => {
    const c = client({
      token: async () => {
        throw new Error('secret kube-system/vpsie-secret not found');
      },
    });
    const err = await failure(c.listVMs());
    expect(err).toMatchObject({ kind: 'auth', permanent: false });
    expect(err.message).toContain('vpsie-secret not found');
    expect(sim.requests).toHaveLength(0);
  });

  test('a provider that answers an empty token → permanent auth error', async () => {
    const err = await failure(client({ token: async () => '' }).listVMs());
    expect(err).toMatchObject({ kind: 'auth', permanent: true });
    expect(sim.requests).toHaveLength(0);
  });
});

describe('constructor options', () => {
  const ok: VPSieClientOptions = { token: TOKEN };
  test.each<[string, Partial<VPSieClientOptions> | Record<string, unknown>, RegExp]>([
    ['baseUrl not a URL', { baseUrl: 'not a url' }, /"baseUrl".*not a valid URL/],
    ['baseUrl empty', { baseUrl: '' }, /"baseUrl"/],
    ['baseUrl ftp', { baseUrl: 'ftp://api.vpsie.com/v2' }, /"baseUrl" must use https/],
    [
      'baseUrl http to a remote host',
      { baseUrl: 'http://api.vpsie.com/v2' },
      /"baseUrl" must use https.*loopback/,
    ],
    ['baseUrl http to a private address', { baseUrl: 'http://10.0.0.7/v2' }, /"baseUrl" must use https/],
    ['baseUrl with credentials', { baseUrl: 'https://u:p@api.vpsie.com/v2' }, /"baseUrl".*credentials/],
    ['baseUrl with query', { baseUrl: 'https://api.vpsie.com/v2?x=1' }, /"baseUrl".*query/],
    ['empty token', { token: '' }, /"token"/],
    ['token with newline', { token: 'abc\ndef' }, /"token".*whitespace/],
    ['token not string', { token: 42 }, /"token"/],
    [
      'token and credentials',
      { credentials: CREDENTIALS },
      /"token" or "credentials" is required, and only one/,
    ],
    [
      'credentials without secret',
      { token: undefined, credentials: { clientId: 'x', clientSecret: '' } },
      /"clientSecret"/,
    ],
    ['timeoutMs 0', { timeoutMs: 0 }, /"timeoutMs"/],
    ['pageSize 0', { pageSize: 0 }, /"pageSize"/],
    ['userAgent multi-line', { userAgent: 'a\r\nX-Evil: 1' }, /"userAgent"/],
  ])('%s', (_name, bad, message) => {
    expect(() => new VPSieClient({ ...ok, ...(bad as Partial<VPSieClientOptions>) })).toThrow(message);
  });

  test('neither a token nor credentials', () => {
    expect(() => new VPSieClient({})).toThrow(/"token" or "credentials" is required/);
  });

  test('http is allowed to loopback hosts only; https anywhere', () => {
    for (const url of [
      'http://127.0.0.1:8080/v2',
      'http://localhost/v2',
      'http://[::1]:1/v2',
      'https://vpsie.example/v2',
    ])
      expect(new VPSieClient({ token: TOKEN, baseUrl: url }).baseUrl).toBe(url);
  });

  test('the secret values are not echoed by option errors', () => {
    for (const make of [
      () => new VPSieClient({ token: 'secret with space' }),
      () => new VPSieClient({ credentials: { clientId: '', clientSecret: 'cs-do-not-echo' } }),
    ]) {
      expect(make).toThrow(/VPSieClient/);
      try {
        make();
      } catch (err) {
        expect(String(err)).not.toMatch(/secret with space|cs-do-not-echo/);
      }
    }
  });

  test('defaults: the public API base URL; trailing slashes trimmed', () => {
    expect(new VPSieClient({ token: TOKEN }).baseUrl).toBe('https://api.vpsie.com/v2');
    expect(new VPSieClient({ token: TOKEN, baseUrl: 'https://api.vpsie.com/apps/v2/' }).baseUrl).toBe(
      'https://api.vpsie.com/apps/v2',
    );
  });

  test('bad ids are caller bugs: RangeError before any request', async () => {
    const c = client();
    await expect(c.getVM(0)).rejects.toThrow(RangeError);
    await expect(c.deleteVM(-3)).rejects.toThrow(RangeError);
    await expect(c.vmAction(1, 'reboot' as never)).rejects.toThrow(RangeError);
    expect(sim.requests).toHaveLength(0);
  });
});

describe('parseRetryAfter', () => {
  test('seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('simulator', () => {
  test('stop() closes hung sockets promptly', async () => {
    sim.inject({ path: '/vm', fault: { type: 'hang' } });
    const port = new URL(baseUrl).port;
    const outcome = new Promise<string>((resolve) => {
      const req = http.get({
        host: '127.0.0.1',
        port,
        path: '/v2/vm',
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      req.on('response', () => resolve('answered'));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    await until(() => sim.requests.length === 1);
    const started = Date.now();
    await sim.stop();
    expect(await outcome).toBe('ECONNRESET');
    expect(Date.now() - started).toBeLessThan(500);
  });

  test('fault handles count hits and can be removed; requests without auth are recorded as missing', async () => {
    const handle = sim.inject({
      method: 'GET',
      path: '/vm*',
      times: 2,
      fault: { type: 'status', status: 500 },
    });
    const res1 = await fetch(`${baseUrl}/vm/1`);
    expect(res1.status).toBe(500);
    expect(handle).toMatchObject({ hits: 1, remaining: 1 });
    handle.remove();
    const res2 = await fetch(`${baseUrl}/vm`);
    expect(res2.status).toBe(401);
    expect(await res2.json()).toEqual({
      error: 'Unauthorized',
      message: 'Authorization header is missing',
      code: 401,
    });
    expect(sim.requests.map((r) => r.auth)).toEqual(['missing', 'missing']);
  });

  test('per_page default 25, max 100; out-of-range answers 400', async () => {
    for (let i = 0; i < 30; i++) sim.addVM();
    const headers = { Authorization: `Bearer ${TOKEN}` };
    const first = (await (await fetch(`${baseUrl}/vm`, { headers })).json()) as {
      data: unknown[];
      pagination: Record<string, number>;
    };
    expect(first.data).toHaveLength(25);
    expect(first.pagination).toEqual({ total: 30, count: 25, per_page: 25, current_page: 1, total_pages: 2 });
    expect((await fetch(`${baseUrl}/vm?per_page=101`, { headers })).status).toBe(400);
    expect((await fetch(`${baseUrl}/vm?page=0`, { headers })).status).toBe(400);
  });

  test('a machine and its VM are one: removing either removes both, and status follows', async () => {
    const cluster = sim.addK8sCluster();
    const group = sim.addK8sNodeGroup(cluster.identifier);
    const a = sim.addK8sNode(cluster.identifier, { groupId: group.id, inVmList: true });
    const b = sim.addK8sNode(cluster.identifier, { groupId: group.id, inVmList: true });
    sim.setVMStatus(a.vmId, 'stopped');
    expect(sim.k8sCluster(cluster.identifier)?.nodes.find((n) => n.identifier === a.identifier)?.status).toBe(
      'stopped',
    );
    sim.updateK8sNode(cluster.identifier, b.identifier, { status: 'error' });
    expect(sim.getVM(b.vmId)?.status).toBe('error');

    const deleted: string[] = [];
    sim.onK8sNodeDeleted((_c, n) => deleted.push(n.identifier));
    await client().deleteVM(a.vmId); // through the API: the listener hears it
    expect(deleted).toEqual([a.identifier]);
    expect(sim.removeK8sNode(cluster.identifier, b.identifier)).toBe(true); // out of band: it does not
    expect(sim.hasVM(b.vmId)).toBe(false);
    expect(deleted).toEqual([a.identifier]);
    expect(sim.k8sCluster(cluster.identifier)?.nodes).toEqual([]);
  });
});
