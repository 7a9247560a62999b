import { ConfigError, loadConfig } from '../../src/config';
import type { ClusterNodeSnapshot, NodeSnapshot, VPSieNodeSnapshot } from '../../src/runbook';
import { InvalidInputError } from '../../src/runbook';
import {
  DEFAULT_ORPHAN_GRACE_MS,
  describeSweep,
  findOrphans,
  MAX_ORPHAN_CANDIDATES,
  nodeGroupOfHostname,
  orphanStepId,
  parseVPSieTime,
  removalOf,
  resolveOrphanSweepInput,
  sweepOutcome,
  type OrphanScanSources,
  type OrphanSweepStatus,
} from '../../src/runbook/orphans';
import { nodeSnapshot, vmSnapshot, vpsieNodeSnapshot } from '../support/snapshots';

const NOW = Date.parse('2026-11-25T12:00:00Z');
const minutesAgo = (m: number) => new Date(NOW - m * 60_000).toISOString();
const CLUSTER = 'cluster-1';

function clusterNode(over: Partial<ClusterNodeSnapshot> = {}): ClusterNodeSnapshot {
  return {
    identifier: 'cn-uuid-1',
    hostname: 'ng-a-0a1b2c3d-k8s-worker',
    ip: '10.0.0.21',
    status: 'running',
    role: 'slave',
    createdOn: minutesAgo(120),
    ...over,
  };
}

const node = (over: Partial<NodeSnapshot> = {}): NodeSnapshot =>
  nodeSnapshot({
    name: 'some-node',
    uid: 'n-1',
    readyReason: null,
    readySince: null,
    internalIP: '10.0.9.9',
    creationTimestamp: minutesAgo(300),
    ...over,
  });

const vpsieNode = (over: Partial<VPSieNodeSnapshot> = {}) =>
  vpsieNodeSnapshot({
    name: 'ng-a-ffff0000',
    phase: 'Ready',
    provisioningStartedAt: minutesAgo(300),
    ...over,
  });

function sources(over: Partial<OrphanScanSources> = {}): OrphanScanSources {
  return {
    nodeGroups: [{ namespace: 'kube-system', name: 'ng-a', resourceIdentifier: CLUSTER }],
    clusters: { [CLUSTER]: [] },
    otherClusters: [],
    vms: [],
    vpsieNodes: [],
    nodes: [],
    nowMs: NOW,
    graceMs: DEFAULT_ORPHAN_GRACE_MS,
    ...over,
  };
}

const hostnames = (vs: { machine: { hostname: string } }[]) => vs.map((v) => v.machine.hostname);

describe('resolveOrphanSweepInput', () => {
  it('defaults to a 30-minute grace period, one approval per machine, 1h to decide, anyone may approve', () => {
    expect(resolveOrphanSweepInput(undefined)).toEqual({
      graceMs: 30 * 60_000,
      mode: 'each',
      dryRun: false,
      allowList: [],
      approvalTtlMs: 3_600_000,
    });
    expect(resolveOrphanSweepInput({ grace: '2h', mode: 'all', dryRun: true, approvers: ['alice'] })).toEqual(
      {
        graceMs: 2 * 3_600_000,
        mode: 'all',
        dryRun: true,
        allowList: ['alice'],
        approvalTtlMs: 3_600_000,
      },
    );
  });

  it.each([
    [{ grace: '5m' }, /input\.grace must be between 15m and 30 days, got "5m"/],
    [{ grace: '31d' }, /input\.grace must be between/],
    [{ grace: 'soon' }, /input\.grace must be a duration/],
    [{ mode: 'some' }, /input\.mode must be "each" or "all", got "some"/],
    [{ dryRun: 'yes' }, /input\.dryRun must be true or false/],
    [{ approvers: 'alice' }, /input\.approvers must be a list of names/],
    [{ approvalTtl: '1s' }, /input\.approvalTtl must be between 10s and 7 days/],
    [{ graceMinutes: 30 }, /unknown field\(s\) graceMinutes/],
    [{ autoApprove: ['terminate-machine'] }, /unknown field\(s\) autoApprove/],
    ['all', /input must be an object/],
  ])('refuses %j naming the field', (input, message) => {
    expect(() => resolveOrphanSweepInput(input)).toThrow(InvalidInputError);
    expect(() => resolveOrphanSweepInput(input)).toThrow(message);
  });

  it('names every bad field at once', () => {
    expect(() => resolveOrphanSweepInput({ grace: '1m', mode: 'x' })).toThrow(/input\.grace.*; input\.mode/);
  });
});

describe('nodeGroupOfHostname: the autoscaler naming <nodegroup>-<hex suffix>', () => {
  const groups = [
    { namespace: 'b', name: 'web' },
    { namespace: 'a', name: 'web' },
    { namespace: 'a', name: 'ng-a' },
  ];
  it.each([
    ['ng-a-0a1b2c3d', { namespace: 'a', name: 'ng-a' }],
    ['NG-A-0A1B2C3D-k8s-worker', { namespace: 'a', name: 'ng-a' }],
    ['ng-a-abc123.example', { namespace: 'a', name: 'ng-a' }],
    ['web-deadbeef-k8s-worker', { namespace: 'a', name: 'web' }],
    ['web-server-1', null],
    ['web-deadbeef0', null],
    ['ng-a', null],
    ['ng-ab-0a1b2c3d', null],
    ['other-0a1b2c3d', null],
  ])('%s → %j', (hostname, expected) => {
    expect(nodeGroupOfHostname(hostname, groups)).toEqual(expected);
  });
});

describe('parseVPSieTime', () => {
  it('reads RFC 3339 with a zone, and a zone-less date-time as UTC', () => {
    expect(parseVPSieTime('2026-11-25T11:00:00Z')).toBe(NOW - 3_600_000);
    expect(parseVPSieTime('2026-11-25T13:00:00+02:00')).toBe(NOW - 3_600_000);
    expect(parseVPSieTime('2026-11-25 11:00:00')).toBe(NOW - 3_600_000);
  });
  it.each([null, '', 'yesterday', '11/25/2026', '2026-11-25'])('cannot read %j', (v) => {
    expect(parseVPSieTime(v)).toBeNull();
  });
});

describe('findOrphans', () => {
  it('offers an unclaimed worker of the cluster older than the grace period, removed through delete/slave', () => {
    const scan = findOrphans(sources({ clusters: { [CLUSTER]: [clusterNode()] } }));
    expect(scan.kept).toEqual([]);
    expect(scan.candidates).toHaveLength(1);
    const { machine, why } = scan.candidates[0];
    expect(machine).toEqual({
      kind: 'cluster-node',
      id: 0,
      identifier: 'cn-uuid-1',
      hostname: 'ng-a-0a1b2c3d-k8s-worker',
      ip: '10.0.0.21',
      status: 'running',
      createdOn: minutesAgo(120),
      resourceIdentifier: CLUSTER,
      nodeGroup: { namespace: 'kube-system', name: 'ng-a' },
      belongs: `a slave of VPSie cluster ${CLUSTER}, which a NodeGroup names`,
    });
    expect(why).toMatch(/no VPSieNode or Node claims it; created 2h ago \(grace period 30m\)/);
    expect(removalOf(machine)).toBe(
      `DELETE /k8s/cluster/byId/${CLUSTER}/delete/slave {"identifier": "cn-uuid-1"}`,
    );
    expect(orphanStepId(machine)).toBe('terminate-cn-uuid-1');
  });

  it('keeps a machine younger than the grace period, saying so, and one exactly as old is offered', () => {
    const scan = findOrphans(
      sources({
        clusters: {
          [CLUSTER]: [
            clusterNode({ identifier: 'young', hostname: 'young', createdOn: minutesAgo(29) }),
            clusterNode({ identifier: 'edge', hostname: 'edge', createdOn: minutesAgo(30) }),
          ],
        },
      }),
    );
    expect(hostnames(scan.candidates)).toEqual(['edge']);
    expect(scan.kept).toEqual([
      {
        machine: expect.objectContaining({ identifier: 'young' }),
        why: 'created 29m ago, younger than the grace period (30m): the controller may still be creating or adopting it',
      },
    ]);
  });

  it('keeps a machine whose age cannot be read, and reads it from its VM when the cluster list has none', () => {
    const scan = findOrphans(
      sources({
        clusters: {
          [CLUSTER]: [
            clusterNode({ identifier: 'no-date', hostname: 'no-date', ip: null, createdOn: null }),
            clusterNode({ identifier: 'vm-date', hostname: 'vm-date', ip: '10.0.0.30', createdOn: null }),
          ],
        },
        vms: [vmSnapshot({ id: 77, hostname: 'vm-date', ipAddress: '10.0.0.30', createdOn: minutesAgo(90) })],
      }),
    );
    expect(scan.candidates.map((c) => [c.machine.identifier, c.machine.id, c.machine.createdOn])).toEqual([
      ['vm-date', 77, minutesAgo(90)],
    ]);
    expect(scan.kept[0].why).toMatch(/no readable creation time .*cannot be checked/);
  });

  it('never offers a master', () => {
    const scan = findOrphans(sources({ clusters: { [CLUSTER]: [clusterNode({ role: 'master' })] } }));
    expect(scan.candidates).toEqual([]);
    expect(scan.kept[0].why).toBe('a master of the cluster: never removed');
  });

  it.each<[string, Partial<OrphanScanSources>, RegExp]>([
    [
      'a Node with its IP',
      { nodes: [node({ name: 'n1', internalIP: '10.0.0.21' })] },
      /Node n1: its address is 10\.0\.0\.21/,
    ],
    [
      'a Node named as it',
      { nodes: [node({ name: 'ng-a-0a1b2c3d-k8s-worker' })] },
      /Node ng-a-0a1b2c3d-k8s-worker/,
    ],
    [
      'a VPSieNode with its identifier',
      { vpsieNodes: [vpsieNode({ vpsieNodeIdentifier: 'cn-uuid-1' })] },
      /spec\.vpsieNodeIdentifier is cn-uuid-1/,
    ],
    [
      'the VPSieNode whose name it carries (the discoverer rule)',
      { vpsieNodes: [vpsieNode({ name: 'ng-a-0a1b2c3d' })] },
      /starts with the VPSieNode's name/,
    ],
    [
      'a pending creation of its NodeGroup in its cluster',
      {
        vpsieNodes: [
          vpsieNode({ phase: 'Provisioning', creationRequested: true, provisioningStartedAt: minutesAgo(3) }),
        ],
      },
      /may still adopt this one/,
    ],
  ])('keeps a machine claimed by %s', (_what, over, why) => {
    const scan = findOrphans(sources({ clusters: { [CLUSTER]: [clusterNode()] }, ...over }));
    expect(scan.candidates).toEqual([]);
    expect(scan.kept).toHaveLength(1);
    expect(scan.kept[0].why).toMatch(/is claimed, not terminating it/);
    expect(scan.kept[0].why).toMatch(why);
  });

  it('does not let a pending creation in another VPSie cluster keep a machine', () => {
    const pendingElsewhere = vpsieNode({
      phase: 'Provisioning',
      creationRequested: true,
      provisioningStartedAt: minutesAgo(3),
      resourceIdentifier: 'cluster-2',
    });
    const scan = findOrphans(
      sources({ clusters: { [CLUSTER]: [clusterNode()] }, vpsieNodes: [pendingElsewhere] }),
    );
    expect(hostnames(scan.candidates)).toEqual(['ng-a-0a1b2c3d-k8s-worker']);
  });

  it('matches a VPSieNode claim by the VM id of a cluster machine listed in GET /vm', () => {
    const scan = findOrphans(
      sources({
        clusters: { [CLUSTER]: [clusterNode()] },
        vms: [vmSnapshot({ id: 501, hostname: 'ng-a-0a1b2c3d-k8s-worker', ipAddress: '10.0.0.21' })],
        vpsieNodes: [vpsieNode({ name: 'zz-other', vpsieInstanceID: 501 })],
      }),
    );
    expect(scan.kept[0].why).toMatch(/spec\.vpsieInstanceID is 501/);
  });

  it("offers VMs of GET /vm named after a NodeGroup's VPSieNodes, removed by DELETE /vm/{id}, and ignores every other VM", () => {
    const scan = findOrphans(
      sources({
        vms: [
          vmSnapshot({
            id: 1,
            identifier: 'vm-1',
            hostname: 'ng-a-12345678-k8s-worker',
            createdOn: minutesAgo(60),
          }),
          vmSnapshot({ id: 2, identifier: 'vm-2', hostname: 'database-1', createdOn: minutesAgo(600) }),
          vmSnapshot({ id: 3, identifier: 'vm-3', hostname: 'ng-a-server', createdOn: minutesAgo(600) }),
        ],
      }),
    );
    expect(scan.kept).toEqual([]);
    expect(scan.candidates.map((c) => [c.machine.kind, c.machine.id, c.machine.nodeGroup?.name])).toEqual([
      ['vm', 1, 'ng-a'],
    ]);
    expect(removalOf(scan.candidates[0].machine)).toBe('DELETE /vm/1');
    expect(orphanStepId(scan.candidates[0].machine)).toBe('terminate-vm-1');
  });

  it('lists a machine that is both a cluster node and a VM once, as the cluster node', () => {
    const scan = findOrphans(
      sources({
        clusters: { [CLUSTER]: [clusterNode()] },
        vms: [vmSnapshot({ id: 9, hostname: 'ng-a-0a1b2c3d-k8s-worker', ipAddress: '10.0.0.21' })],
      }),
    );
    expect(scan.candidates.map((c) => [c.machine.kind, c.machine.id])).toEqual([['cluster-node', 9]]);
  });

  it("leaves a prefixed VM alone when it is a worker of another of the account's clusters, with a note", () => {
    const vm = vmSnapshot({
      id: 4,
      hostname: 'ng-a-abcdef01',
      ipAddress: '10.9.9.9',
      createdOn: minutesAgo(600),
    });
    const scan = findOrphans(
      sources({
        vms: [vm],
        otherClusters: [
          { resourceIdentifier: 'cluster-9', nodes: [clusterNode({ hostname: 'x', ip: '10.9.9.9' })] },
        ],
      }),
    );
    expect(scan.candidates).toEqual([]);
    expect(scan.kept).toEqual([]);
    expect(scan.notes).toEqual([expect.stringMatching(/VM 4 .* is a worker of VPSie cluster cluster-9/)]);
  });

  it('notes a NodeGroup whose cluster VPSie does not know, or that names none, and sweeps the rest', () => {
    const scan = findOrphans(
      sources({
        nodeGroups: [
          { namespace: 'a', name: 'ng-a', resourceIdentifier: CLUSTER },
          { namespace: 'a', name: 'ng-b', resourceIdentifier: 'gone' },
          { namespace: 'a', name: 'ng-c', resourceIdentifier: null },
        ],
        clusters: { [CLUSTER]: [clusterNode()], gone: null },
      }),
    );
    expect(hostnames(scan.candidates)).toEqual(['ng-a-0a1b2c3d-k8s-worker']);
    expect(scan.notes).toEqual([
      'NodeGroup a/ng-b names VPSie cluster gone, which VPSie does not know: not swept',
      'NodeGroup a/ng-c has no spec.resourceIdentifier: its cluster is not swept',
    ]);
  });

  it('offers the oldest first, at most MAX_ORPHAN_CANDIDATES, keeping the rest for the next run', () => {
    const nodes = Array.from({ length: MAX_ORPHAN_CANDIDATES + 2 }, (_, i) =>
      clusterNode({ identifier: `n${i}`, hostname: `h${i}`, ip: null, createdOn: minutesAgo(60 + i) }),
    );
    const scan = findOrphans(sources({ clusters: { [CLUSTER]: nodes } }));
    expect(scan.candidates).toHaveLength(MAX_ORPHAN_CANDIDATES);
    expect(scan.candidates[0].machine.identifier).toBe(`n${MAX_ORPHAN_CANDIDATES + 1}`);
    expect(scan.kept.map((k) => k.machine.identifier)).toEqual(['n1', 'n0']);
    expect(scan.kept[0].why).toMatch(/over this run's limit/);
  });
});

describe('sweepOutcome and describeSweep', () => {
  it.each<[Parameters<typeof sweepOutcome>[0], string]>([
    [{ dryRun: true, candidates: [1], removed: [], expired: false, rejected: 0 }, 'DryRun'],
    [{ dryRun: false, candidates: [], removed: [], expired: false, rejected: 0 }, 'NothingToRemove'],
    [{ dryRun: false, candidates: [1, 2], removed: [1], expired: true, rejected: 1 }, 'Removed'],
    [{ dryRun: false, candidates: [1, 2], removed: [], expired: true, rejected: 1 }, 'ApprovalExpired'],
    [{ dryRun: false, candidates: [1, 2], removed: [], expired: false, rejected: 2 }, 'Rejected'],
    [{ dryRun: false, candidates: [1, 2], removed: [], expired: false, rejected: 1 }, 'NothingRemoved'],
  ])('%j → %s', (s, outcome) => {
    expect(sweepOutcome(s)).toBe(outcome);
  });

  it('tells the approver the exact command while waiting', () => {
    const status = {
      stage: 'awaiting-approval',
      grace: '30m',
      approvers: ['alice'],
      candidates: [{}],
      removed: [],
      kept: [],
      refused: [],
      failed: [],
      pendingApproval: { stepId: 'terminate-x', expiresAt: '2026-11-25T13:00:00.000Z' },
    } as unknown as OrphanSweepStatus;
    expect(describeSweep(status, 'orphaned-vm-cleanup/manual')).toBe(
      `Orphaned-VM sweep: 1 orphan, 0 removed, 0 kept, 0 refused, 0 failed; waiting until 2026-11-25T13:00:00.000Z for alice to approve terminate-x. Approve: temporal workflow update execute --workflow-id orphaned-vm-cleanup/manual --name decide --input '{"stepId": "terminate-x", "decision": "approve", "approver": "<you>"}'`,
    );
  });
});

describe('ORPHAN_SWEEP_INTERVAL', () => {
  it('is unset by default (no Schedule) and read as a duration', () => {
    expect(loadConfig({}).orphanSweepIntervalMs).toBeNull();
    expect(loadConfig({ ORPHAN_SWEEP_INTERVAL: '1h' }).orphanSweepIntervalMs).toBe(3_600_000);
    expect(loadConfig({ ORPHAN_SWEEP_INTERVAL: ' ' }).orphanSweepIntervalMs).toBeNull();
  });
  it.each([
    ['1m', /ORPHAN_SWEEP_INTERVAL must be between 5m and 30 days, got "1m"/],
    ['31d', /ORPHAN_SWEEP_INTERVAL must be between/],
    ['hourly', /ORPHAN_SWEEP_INTERVAL must be a duration/],
  ])('refuses %s, naming the variable', (value, message) => {
    expect(() => loadConfig({ ORPHAN_SWEEP_INTERVAL: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ORPHAN_SWEEP_INTERVAL: value })).toThrow(message);
  });
});
