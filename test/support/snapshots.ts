import type {
  Evidence,
  NodeGroupSnapshot,
  NodeRegistration,
  NodeSnapshot,
  VMSnapshot,
  VPSieNodeSnapshot,
} from '../../src/runbook';

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

/** The VPSieNode's NodeGroup as read: managed, version v1.34.4, one key, valid ids; each test changes what matters. */
export function nodeGroupSnapshot(over: Partial<NodeGroupSnapshot> = {}): NodeGroupSnapshot {
  return {
    namespace: 'kube-system',
    name: 'ng-a',
    uid: 'ng-uid-1',
    resourceVersion: '10',
    minNodes: 1,
    maxNodes: 3,
    kubernetesVersion: 'v1.34.4',
    sshKeyIDs: ['11'],
    offeringIDs: ['101'],
    datacenterID: '1',
    osImageID: '201',
    kubeSizeID: null,
    resourceIdentifier: 'cluster-1',
    managed: true,
    vpsieGroupID: 7,
    desiredNodes: 1,
    currentNodes: 1,
    readyNodes: 0,
    reconcileTrigger: null,
    conditions: [],
    ...over,
  };
}

/** A Node as the runbook reads it: Ready, the controller's labels only, unless told otherwise. */
export function nodeSnapshot(over: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    name: 'ng-a-1-abcde',
    uid: 'node-uid-1',
    labels: {},
    readyStatus: 'True',
    readyReason: 'KubeletReady',
    readySince: '2026-11-24T10:06:00Z',
    kubeletVersion: 'v1.34.4',
    internalIP: '10.0.0.5',
    externalIP: null,
    creationTimestamp: '2026-11-24T10:05:00Z',
    ...over,
  };
}

/** A Node matched by IP, Ready unless told otherwise. */
export function nodeRegistration(over: Partial<NodeSnapshot> = {}): NodeRegistration {
  return { matchedBy: 'ip', node: nodeSnapshot(over) };
}

/**
 * Evidence for the pure runbook code: the VPSieNode of {@link vpsieNodeSnapshot}, every other source read and
 * clean (no events, no logs, no machine, no Node, the NodeGroup above, a cluster on v1.34.4, known keys, a valid
 * catalog), observed 5 minutes after provisioning started.
 */
export function evidenceOf(over: Partial<Evidence> = {}): Evidence {
  return {
    ref: { namespace: 'kube-system', name: 'ng-a-1' },
    observedAt: '2026-11-24T10:05:00Z',
    vpsieNode: vpsieNodeSnapshot(),
    lastSeen: null,
    events: { status: 'ok', value: [] },
    controllerLogs: { status: 'ok', value: { pods: [], note: null } },
    machine: {
      status: 'ok',
      value: { node: null, vm: null, matchedBy: null, ambiguous: [], cluster: 'found' },
    },
    node: { status: 'ok', value: null },
    nodeGroup: { status: 'ok', value: nodeGroupSnapshot() },
    clusterVersion: { status: 'ok', value: { major: '1', minor: '34', gitVersion: 'v1.34.4' } },
    sshKeys: { status: 'ok', value: { known: ['11'], unknown: [] } },
    catalog: {
      status: 'ok',
      value: { unknownOfferings: [], unavailableOfferings: [], datacenter: 'ok', image: 'ok' },
    },
    ...over,
  };
}

/** A running VM in VPSie as step 4 reads it, the machine of `vpsieNodeSnapshot`'s node. */
export function vmSnapshot(over: Partial<VMSnapshot> = {}): VMSnapshot {
  return {
    id: 4242,
    identifier: 'vm-uuid-4242',
    name: 'ng-a-1-x1y2z',
    hostname: 'ng-a-1-x1y2z',
    status: 'running',
    ipAddress: '10.0.0.5',
    datacenterID: '1',
    offeringID: '101',
    createdOn: '2026-11-24T10:01:00Z',
    tags: [],
    ...over,
  };
}
