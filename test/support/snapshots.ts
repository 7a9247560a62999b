import type { VPSieNodeSnapshot } from '../../src/runbook';

/**
 * A VPSieNode as step 1 reads it, for tests of the pure runbook code: a managed node in Provisioning with no VM id
 * yet, which each test changes where it matters.
 */
export function vpsieNodeSnapshot(over: Partial<VPSieNodeSnapshot> = {}): VPSieNodeSnapshot {
  return {
    namespace: 'kube-system',
    name: 'ng-a-1',
    uid: 'u1',
    resourceVersion: '1',
    phase: 'Provisioning',
    vpsieInstanceID: 0,
    creationRequested: false,
    vpsieNodeIdentifier: null,
    vpsieGroupID: 7,
    resourceIdentifier: 'cluster-1',
    nodeGroupName: 'ng-a',
    ipAddress: null,
    ipv6Address: null,
    hostname: null,
    vpsieStatus: null,
    nodeName: null,
    provisioningStartedAt: '2026-11-24T10:00:00Z',
    provisionedAt: null,
    joinedAt: null,
    readyAt: null,
    deletionTimestamp: null,
    finalizers: [],
    lastError: null,
    conditions: [],
    ...over,
  };
}
