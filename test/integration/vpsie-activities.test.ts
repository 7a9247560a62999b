import { inspect } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import { createVPSieActivities } from '../../src/activities/vpsie';
import { VPSieClient } from '../../src/clients/vpsie';
import { rejectsWith } from '../support/expect-rejection';
import { VPSieSimulator } from '../support/vpsie-simulator';

const TOKEN = 'vps-activity-secret-7Q2';
const sim = new VPSieSimulator({ token: TOKEN });
let activities: ReturnType<typeof createVPSieActivities>;

beforeAll(async () => {
  const baseUrl = await sim.start();
  activities = createVPSieActivities(
    new VPSieClient({
      baseUrl,
      token: TOKEN,
      maxRetries: 2,
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 20,
      timeoutMs: 2000,
    }),
  );
});
afterAll(() => sim.stop());
beforeEach(() => {
  sim.clearFaults();
  sim.clearRequests();
});

const failure = (p: Promise<unknown>) => rejectsWith(p, ApplicationFailure);

describe('VPSie activities', () => {
  it('checkVM reduces a VM to its snapshot, and answers null for an id VPSie does not know', async () => {
    const vm = sim.addVM({ name: 'ng-a-1', status: 'running', default_ip: '185.1.2.3' });
    await expect(activities.checkVM(vm.id)).resolves.toMatchObject({
      id: vm.id,
      identifier: vm.identifier,
      name: 'ng-a-1',
      status: 'running',
      ipAddress: '185.1.2.3',
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

  it('listVMs and checkAccountQuota report what the account holds', async () => {
    const vm = sim.addVM({ name: 'listed-1', status: 'error' });
    const vms = await activities.listVMs();
    expect(vms.find((v) => v.id === vm.id)).toMatchObject({ name: 'listed-1', status: 'error' });
    expect(vms).toHaveLength(sim.listVMs().length);
    sim.setQuotaLimits({ vms: vms.length });
    const quota = await activities.checkAccountQuota();
    expect(quota.vms).toEqual({ used: vms.length, limit: vms.length });
  });

  it('terminateVM is idempotent: one DELETE, then already-gone without another', async () => {
    const vm = sim.addVM({ name: 'orphan-1' });
    await expect(activities.terminateVM({ id: vm.id, identifier: vm.identifier })).resolves.toBe(
      'terminated',
    );
    await expect(activities.terminateVM({ id: vm.id, identifier: vm.identifier })).resolves.toBe(
      'already-gone',
    );
    expect(sim.hasVM(vm.id)).toBe(false);
    expect(sim.requestsTo('DELETE')).toHaveLength(1);
  });

  it('terminateVM refuses when the id now names another VM, and deletes nothing', async () => {
    const vm = sim.addVM({ name: 'replacement' });
    const f = await failure(
      activities.terminateVM({ id: vm.id, identifier: '00000000-0000-4000-8000-000000000000' }),
    );
    expect(f.type).toBe('VMPreconditionFailed');
    expect(f.nonRetryable).toBe(true);
    expect(sim.hasVM(vm.id)).toBe(true);
    expect(sim.requestsTo('DELETE')).toHaveLength(0);
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

  it('leaves a long Retry-After to Temporal: retryable, with the API’s delay as the next retry delay', async () => {
    sim.inject({ path: '/sshkeys', fault: { type: 'status', status: 429, retryAfter: 120 } });
    const f = await failure(activities.checkSSHKeys(['1']));
    expect(f.type).toBe('VPSieRateLimited');
    expect(f.nonRetryable).toBe(false);
    expect(f.nextRetryDelay).toBe(120_000);
  });

  it('fails clearly when no credentials are configured', async () => {
    const f = await failure(createVPSieActivities(null).checkVM(1));
    expect(f.type).toBe('VPSieNotConfigured');
    expect(f.message).toMatch(/VPSIE_TOKEN_FILE/);
  });
});
