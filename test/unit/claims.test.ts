import {
  claimsOn,
  describeClaims,
  DISCOVERY_WINDOW_MS,
  type MachineIdentity,
} from '../../src/runbook/claims';
import type { NodeSnapshot, VPSieNodeSnapshot } from '../../src/runbook';
import { nodeSnapshot, vpsieNodeSnapshot } from '../support/snapshots';

const NOW = Date.parse('2026-11-25T12:00:00Z');
const minutesAgo = (m: number) => new Date(NOW - m * 60_000).toISOString();

const vpsieNode = (over: Partial<VPSieNodeSnapshot> = {}) =>
  vpsieNodeSnapshot({ name: 'ng-a-x7k2p', phase: 'Ready', provisioningStartedAt: minutesAgo(60), ...over });

const node = (over: Partial<NodeSnapshot> = {}): NodeSnapshot =>
  nodeSnapshot({
    name: 'other-node',
    uid: 'n-1',
    readyReason: null,
    readySince: null,
    internalIP: '10.0.0.99',
    creationTimestamp: minutesAgo(60),
    ...over,
  });

const machine: MachineIdentity = {
  id: 4242,
  identifier: 'b1c7a9e0-0000-4000-8000-000000000001',
  hostname: 'k8s-worker-q8r3',
  ipAddresses: ['10.0.0.5'],
};

const ctx = (over: Partial<Parameters<typeof claimsOn>[1]> = {}) => ({
  vpsieNodes: [],
  nodes: [],
  nowMs: NOW,
  nodeGroup: 'ng-a',
  ...over,
});

describe('claimsOn: who may still own a VPSie machine', () => {
  it('finds no claim on a machine nothing points at', () => {
    expect(claimsOn(machine, ctx({ vpsieNodes: [vpsieNode()], nodes: [node()] }))).toEqual([]);
  });

  it.each([
    ['instance id', { vpsieInstanceID: 4242 }, 'spec.vpsieInstanceID is 4242'],
    [
      'node identifier',
      { vpsieNodeIdentifier: machine.identifier },
      `spec.vpsieNodeIdentifier is ${machine.identifier}`,
    ],
    ['IP address', { ipAddress: '10.0.0.5' }, 'spec.ipAddress is 10.0.0.5'],
    ['hostname', { hostname: 'K8S-worker-q8r3' }, 'its node name/hostname is K8S-worker-q8r3'],
    ['hostname prefix', { name: 'k8s-worker' }, 'the hostname k8s-worker-q8r3 starts with the VPSieNode'],
  ])('a VPSieNode claims it by %s', (_what, over, how) => {
    const claims = claimsOn(machine, ctx({ vpsieNodes: [vpsieNode(over)] }));
    expect(claims).toHaveLength(1);
    expect(claims[0]?.by).toBe('vpsienode');
    expect(claims[0]?.how).toContain(how);
  });

  it('an instance id of 0 on both sides is no claim (managed-Kubernetes nodes have none)', () => {
    expect(claimsOn({ ...machine, id: 0 }, ctx({ vpsieNodes: [vpsieNode()] }))).toEqual([]);
  });

  it.each([
    ['InternalIP', { internalIP: '10.0.0.5' }],
    ['ExternalIP', { externalIP: '10.0.0.5' }],
    ['name', { name: 'k8s-worker-q8r3' }],
  ])('a Node claims it by %s', (_what, over) => {
    const claims = claimsOn(machine, ctx({ nodes: [node(over)] }));
    expect(claims.map((c) => c.by)).toEqual(['node']);
  });

  it('a creation requested within the discovery window blocks it: the controller may adopt this machine', () => {
    const pending = vpsieNode({
      name: 'ng-a-new01',
      phase: 'Provisioning',
      creationRequested: true,
      provisioningStartedAt: minutesAgo(3),
    });
    const claims = claimsOn(machine, ctx({ vpsieNodes: [pending] }));
    expect(claims).toEqual([
      expect.objectContaining({ by: 'pending-creation', owner: 'kube-system/ng-a-new01' }),
    ]);
    expect(describeClaims(machine, claims)).toMatch(
      /4242 \(k8s-worker-q8r3\) is claimed.*requested a machine 180 s ago/,
    );
  });

  it.each([
    [
      'older than the discovery window',
      { provisioningStartedAt: minutesAgo(DISCOVERY_WINDOW_MS / 60_000 + 1) },
    ],
    ['of another NodeGroup', { nodeGroupName: 'ng-b' }],
    ['already Failed (no discovery in that phase)', { phase: 'Failed' }],
    ['being deleted', { deletionTimestamp: minutesAgo(1) }],
    ['with its id known', { vpsieInstanceID: 17 }],
  ])('a creation request %s does not block it', (_what, over) => {
    const pending = vpsieNode({
      name: 'ng-a-new01',
      phase: 'Provisioning',
      creationRequested: true,
      provisioningStartedAt: minutesAgo(3),
      ...over,
    });
    expect(claimsOn(machine, ctx({ vpsieNodes: [pending] }))).toEqual([]);
  });

  it('with the machine NodeGroup unknown, a pending creation in any NodeGroup blocks it', () => {
    const pending = vpsieNode({
      nodeGroupName: 'ng-b',
      phase: 'Provisioning',
      creationRequested: true,
      provisioningStartedAt: minutesAgo(3),
    });
    expect(claimsOn(machine, ctx({ nodeGroup: null, vpsieNodes: [pending] }))).toHaveLength(1);
  });

  it('an unreadable start time counts as pending: it cannot prove the window passed', () => {
    const pending = vpsieNode({
      phase: 'Provisioning',
      creationRequested: true,
      provisioningStartedAt: null,
    });
    expect(claimsOn(machine, ctx({ vpsieNodes: [pending] })).map((c) => c.by)).toEqual(['pending-creation']);
  });
});
