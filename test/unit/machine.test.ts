import {
  matchMachine,
  type ClusterNodeSnapshot,
  type MachineQuery,
  type VMSnapshot,
} from '../../src/runbook';

const node = (
  identifier: string,
  hostname: string,
  ip: string | null,
  role = 'slave',
): ClusterNodeSnapshot => ({
  identifier,
  hostname,
  ip,
  status: 'running',
  role,
  createdOn: '2026-01-29T10:00:00Z',
});

const vm = (id: number, hostname: string, ipAddress: string | null): VMSnapshot => ({
  id,
  identifier: `vm-uuid-${id}`,
  name: hostname,
  hostname,
  status: 'running',
  ipAddress,
  datacenterID: '1',
  offeringID: '101',
  createdOn: '2026-01-29T10:00:00Z',
  tags: [],
});

const q = (p: Partial<MachineQuery> = {}): MachineQuery => ({
  name: 'ng-a-7x2k',
  vpsieInstanceID: 0,
  vpsieNodeIdentifier: null,
  hostname: null,
  nodeName: null,
  ipAddress: null,
  ...p,
});

const master = node('m-1', 'ng-a-7x2k-master', '10.0.0.1', 'master');
const workers = [node('n-1', 'k8s-w-1', '10.0.0.11'), node('n-2', 'k8s-w-2', '10.0.0.12'), master];

describe('matchMachine', () => {
  it('by the identifier the create answer carried', () => {
    expect(matchMachine(q({ vpsieNodeIdentifier: 'n-2' }), workers, [])).toEqual({
      node: workers[1],
      vm: null,
      matchedBy: 'identifier',
      ambiguous: [],
    });
  });

  it('an identifier that is no longer there means gone: no weaker rule names another machine', () => {
    const sameHost = [node('n-9', 'ng-a-7x2k-w', '10.0.0.11')];
    const m = matchMachine(q({ vpsieNodeIdentifier: 'n-gone', ipAddress: '10.0.0.11' }), sameHost, [
      vm(5, 'ng-a-7x2k-w', '10.0.0.11'),
    ]);
    expect(m).toEqual({ node: null, vm: null, matchedBy: null, ambiguous: [] });
  });

  it('by hostname (case-insensitive), then by IP', () => {
    expect(matchMachine(q({ hostname: 'K8S-W-1' }), workers, [])).toMatchObject({
      node: { identifier: 'n-1' },
      matchedBy: 'hostname',
    });
    expect(matchMachine(q({ nodeName: 'k8s-w-2' }), workers, [])).toMatchObject({ matchedBy: 'hostname' });
    expect(matchMachine(q({ ipAddress: '10.0.0.12' }), workers, [])).toMatchObject({
      node: { identifier: 'n-2' },
      matchedBy: 'ip',
    });
  });

  it("by the discoverer's hostname prefix when nothing else is known; never a master", () => {
    const nodes = [...workers, node('n-3', 'ng-a-7x2k-worker', '10.0.0.13')];
    expect(matchMachine(q(), nodes, [])).toMatchObject({
      node: { identifier: 'n-3' },
      matchedBy: 'hostname-prefix',
    });
    expect(matchMachine(q(), workers, [])).toEqual({ node: null, vm: null, matchedBy: null, ambiguous: [] });
  });

  it('several machines with the prefix: none chosen, all named', () => {
    const nodes = [node('n-3', 'ng-a-7x2k-a', null), node('n-4', 'ng-a-7x2k-b', null)];
    expect(matchMachine(q(), nodes, [])).toEqual({
      node: null,
      vm: null,
      matchedBy: null,
      ambiguous: ['ng-a-7x2k-a (n-3)', 'ng-a-7x2k-b (n-4)'],
    });
  });

  it('the VM of a found machine, when VPSie lists it, by hostname or IP', () => {
    const vms = [vm(7, 'other', '10.0.0.99'), vm(8, 'renamed', '10.0.0.12')];
    expect(matchMachine(q({ vpsieNodeIdentifier: 'n-2' }), workers, vms)).toMatchObject({
      node: { identifier: 'n-2' },
      vm: { id: 8 },
      matchedBy: 'identifier',
    });
  });

  it('a set vpsieInstanceID is the VM or nothing; the machine follows its hostname', () => {
    const vms = [vm(41, 'k8s-w-1', '10.0.0.11')];
    expect(matchMachine(q({ vpsieInstanceID: 41 }), workers, vms)).toMatchObject({
      vm: { id: 41 },
      node: { identifier: 'n-1' },
      matchedBy: 'instance-id',
    });
    // The VM is gone: no VM by another rule, and no guess by prefix.
    const m = matchMachine(
      q({ vpsieInstanceID: 42 }),
      [node('n-5', 'ng-a-7x2k-w', null)],
      [vm(9, 'ng-a-7x2k-w', null)],
    );
    expect(m).toEqual({ node: null, vm: null, matchedBy: null, ambiguous: [] });
  });

  it('no cluster machine but a listed VM: found in GET /vm by hostname, IP or prefix', () => {
    const vms = [vm(50, 'ng-a-7x2k-1', '10.1.1.1'), vm(51, 'x', '10.1.1.2')];
    expect(matchMachine(q(), [], vms)).toMatchObject({
      vm: { id: 50 },
      node: null,
      matchedBy: 'hostname-prefix',
    });
    expect(matchMachine(q({ ipAddress: '10.1.1.2' }), [], vms)).toMatchObject({
      vm: { id: 51 },
      matchedBy: 'ip',
    });
  });
});
