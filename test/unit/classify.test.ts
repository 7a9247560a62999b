import type { MachineFinding } from '../../src/activities/vpsie';
import {
  CAUSES,
  classify,
  machineFromVM,
  majorMinor,
  type Cause,
  type Condition,
  type Evidence,
  type Finding,
  type MachineEvidence,
} from '../../src/runbook';
import {
  evidenceOf,
  nodeGroupSnapshot,
  nodeRegistration,
  vmSnapshot,
  vpsieNodeSnapshot,
} from '../support/snapshots';

const T0 = Date.parse('2026-11-24T10:00:00Z'); // the fixtures' provisioning start
const min = (m: number) => T0 + m * 60_000;

const errorCondition = (reason: string, message: string): Condition => ({
  type: 'Error',
  status: 'True',
  reason,
  message,
});
/** What RecordError writes: the Error condition and lastError, with the same message. */
const recorded = (reason: string, message: string) => ({
  conditions: [errorCondition(reason, message)],
  lastError: message,
});
const vm = vmSnapshot;
const machine = (value: Partial<MachineEvidence>): Evidence['machine'] => ({
  status: 'ok',
  value: { node: null, vm: null, matchedBy: null, ambiguous: [], cluster: 'found', ...value },
});
const clusterNodeMachine = (status = 'running') =>
  machine({
    node: {
      identifier: 'node-uuid-9',
      hostname: 'ng-a-1-q8r7s',
      ip: '10.0.0.9',
      status,
      role: 'slave',
      createdOn: null,
    },
    matchedBy: 'hostname-prefix',
  });
const logs = (...lines: string[]): Evidence['controllerLogs'] => ({
  status: 'ok',
  value: { pods: [{ pod: 'vpsie-autoscaler-abc', container: 'controller', lines, error: null }], note: null },
});
const unavailable = { status: 'unavailable', why: 'VPSie is not configured' } as const;
const vpsieDown = {
  status: 'error',
  type: 'VPSieUnavailable',
  message: 'HTTP 503 from GET /offerings',
} as const;
const versionOf = (gitVersion: string): Evidence['clusterVersion'] => {
  const [, major, minor] = /^v?(\d+)\.(\d+)/.exec(gitVersion)!;
  return { status: 'ok', value: { major, minor, gitVersion } };
};
const ng = (over: Parameters<typeof nodeGroupSnapshot>[0]): Evidence['nodeGroup'] => ({
  status: 'ok',
  value: nodeGroupSnapshot(over),
});
const notReady = (over = {}) => ({
  status: 'ok' as const,
  value: nodeRegistration({ readyStatus: 'False', readyReason: 'KubeletNotReady', ...over }),
});

const CAPACITY = 'failed to create VPS: API error 400: Worker nodes count exceeds the allowed limit';
const TRANSIENT = 'failed to create VPS: API error 500: internal server error';

interface Case {
  name: string;
  evidence: Evidence;
  now?: number;
  cause: Cause;
  /** The findings of the reasons, in order, without repeats. */
  findings: Finding[];
  also?: Cause[];
}

const vn = vpsieNodeSnapshot;
const ev = evidenceOf;

const causes: Case[] = [
  {
    name: 'VPSieNodeGone: the object is not found',
    evidence: ev({ vpsieNode: null }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-gone'],
  },
  {
    name: 'VPSieNodeGone: gone while its VM still runs in VPSie',
    evidence: ev({
      vpsieNode: null,
      lastSeen: vn(),
      machine: machine({ vm: vm(), matchedBy: 'hostname-prefix' }),
    }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-gone', 'machine-left'],
  },
  {
    name: 'VPSieNodeGone: gone while its cluster machine still runs',
    evidence: ev({ vpsieNode: null, lastSeen: vn(), machine: clusterNodeMachine() }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-gone', 'machine-left'],
  },
  {
    name: 'VPSieNodeGone: the machine left behind is already being deleted',
    evidence: ev({ vpsieNode: null, lastSeen: vn(), machine: clusterNodeMachine('deleting') }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-gone'],
  },
  {
    name: 'VPSieNodeGone: being deleted (the controller still holds its finalizer)',
    evidence: ev({
      vpsieNode: vn({ phase: 'Terminating', deletionTimestamp: '2026-11-24T10:20:00Z' }),
      machine: machine({ vm: vm() }),
    }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-deleting'],
  },
  {
    name: 'Recovered: its Node is registered and Ready',
    evidence: ev({
      vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5' }),
      node: { status: 'ok', value: nodeRegistration() },
    }),
    cause: 'Recovered',
    findings: ['node-ready'],
  },
  {
    name: 'Recovered: phase Ready while Nodes cannot be read',
    evidence: ev({
      vpsieNode: vn({ phase: 'Ready' }),
      node: { status: 'error', type: 'Kubernetes403', message: 'forbidden' },
    }),
    cause: 'Recovered',
    findings: ['vpsienode-ready'],
  },
  {
    name: 'VMCreationFailed: capacity (CapacityLimitReached, Failed at once)',
    evidence: ev({ vpsieNode: vn({ phase: 'Failed', ...recorded('CapacityLimitReached', CAPACITY) }) }),
    cause: 'VMCreationFailed',
    findings: ['capacity-limit'],
  },
  {
    name: 'VMCreationFailed: "VPSieGroupID is required" in lastError',
    evidence: ev({
      vpsieNode: vn({ vpsieGroupID: 0, ...recorded('VPSieAPIError', 'VPSieGroupID is required') }),
    }),
    cause: 'VMCreationFailed',
    findings: ['missing-group-id'],
  },
  {
    name: 'VMCreationFailed: spec.vpsieGroupID 0 before the controller said so',
    evidence: ev({ vpsieNode: vn({ vpsieGroupID: 0 }) }),
    cause: 'VMCreationFailed',
    findings: ['missing-group-id'],
  },
  {
    name: 'VMCreationFailed: offering, datacenter and image VPSie lacks',
    evidence: ev({
      catalog: {
        status: 'ok',
        value: {
          unknownOfferings: ['999'],
          unavailableOfferings: ['102'],
          datacenter: 'unavailable',
          image: 'unknown',
        },
      },
    }),
    cause: 'VMCreationFailed',
    findings: ['invalid-catalog'],
  },
  {
    name: 'VMCreationFailed: transient VPSie error with a valid configuration',
    evidence: ev({ vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)) }),
    cause: 'VMCreationFailed',
    findings: ['creation-error'],
  },
  {
    name: 'VMCreationFailed: a PhaseFailed Event is the only evidence',
    evidence: ev({
      events: {
        status: 'ok',
        value: [
          {
            type: 'Warning',
            reason: 'PhaseFailed',
            message: `Failed in Provisioning phase: ${TRANSIENT}`,
            count: 3,
            firstSeen: null,
            lastSeen: null,
            source: 'vpsienode-controller',
            involvedObject: { kind: 'VPSieNode', name: 'ng-a-1', uid: 'u1' },
          },
        ],
      },
    }),
    cause: 'VMCreationFailed',
    findings: ['creation-error'],
  },
  {
    name: 'VMCreationFailed: a log line naming the node is the only evidence',
    evidence: ev({
      controllerLogs: logs(
        `{"level":"error","msg":"Failed to create K8s node via VPSie API","vpsienode":"ng-a-1","error":"API error 502"}`,
      ),
    }),
    cause: 'VMCreationFailed',
    findings: ['creation-error'],
  },
  {
    name: 'ProvisioningTimeout: written by the controller',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m2s)'),
      }),
    }),
    cause: 'ProvisioningTimeout',
    findings: ['provisioning-timeout'],
  },
  {
    name: 'ProvisioningTimeout: still Provisioning 12 min after it started',
    evidence: ev(),
    now: min(12),
    cause: 'ProvisioningTimeout',
    findings: ['provisioning-timeout'],
  },
  {
    name: 'VMNotRegistering: creation requested (id 0), no Node',
    evidence: ev({ vpsieNode: vn({ creationRequested: true }) }),
    cause: 'VMNotRegistering',
    findings: ['node-missing', 'machine-requested'],
  },
  {
    name: 'VMNotRegistering: id 0 but an IP, Joining, Nodes unreadable',
    evidence: ev({
      vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5' }),
      node: { status: 'error', type: 'Kubernetes500', message: 'etcd timeout' },
    }),
    cause: 'VMNotRegistering',
    findings: ['machine-requested'],
  },
  {
    name: 'VMNotRegistering: JoiningTimeout',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        vpsieInstanceID: 4242,
        ...recorded('JoiningTimeout', 'Node joining timeout exceeded (15m1s)'),
      }),
      machine: machine({ vm: vm(), matchedBy: 'instance-id' }),
    }),
    cause: 'VMNotRegistering',
    findings: ['joining-timeout', 'node-missing', 'machine-found', 'machine-requested'],
  },
  {
    name: 'VMNotRegistering: the Node registered but is not Ready',
    evidence: ev({ vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5' }), node: notReady() }),
    cause: 'VMNotRegistering',
    findings: ['node-not-ready', 'machine-requested'],
  },
  {
    name: 'VMNotRegistering: phase Ready but the Node is gone',
    evidence: ev({ vpsieNode: vn({ phase: 'Ready', ipAddress: '10.0.0.5' }) }),
    cause: 'VMNotRegistering',
    findings: ['node-missing', 'machine-requested'],
  },
  {
    name: 'VMNotRegistering: id 0 with nothing on the VPSieNode, but VPSie has the machine',
    evidence: ev({ machine: clusterNodeMachine() }),
    cause: 'VMNotRegistering',
    findings: ['node-missing', 'machine-found'],
  },
  {
    name: "VMNotRegistering: Joining past the controller's 15 min before it wrote JoiningTimeout",
    evidence: ev({
      vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5', provisionedAt: '2026-11-24T10:03:00Z' }),
    }),
    now: min(19),
    cause: 'VMNotRegistering',
    findings: ['joining-timeout', 'node-missing', 'machine-requested'],
  },
  {
    name: 'KubernetesVersionMismatch: the NodeGroup is a minor behind',
    evidence: ev({ nodeGroup: ng({ kubernetesVersion: 'v1.33.2' }) }),
    cause: 'KubernetesVersionMismatch',
    findings: ['version-mismatch'],
  },
  {
    name: 'SSHKeyInvalid: the account lacks a key',
    evidence: ev({ sshKeys: { status: 'ok', value: { known: ['11'], unknown: ['99', 'b7e1-uuid'] } } }),
    cause: 'SSHKeyInvalid',
    findings: ['unknown-ssh-keys'],
  },
  {
    name: 'Unknown: Provisioning for 5 min, nothing wrong yet',
    evidence: ev(),
    cause: 'Unknown',
    findings: ['phase', 'machine-not-found'],
  },
  {
    name: 'Unknown: Failed for a reason no cause covers (VPSDeleteFailed)',
    evidence: ev({
      vpsieNode: vn({ phase: 'Failed', ...recorded('VPSDeleteFailed', 'failed to delete VPS: 500') }),
    }),
    cause: 'Unknown',
    findings: ['phase', 'recorded-error', 'machine-not-found'],
  },
];

const precedence: Case[] = [
  {
    name: '4 > 6: unknown SSH keys beat a transient create error',
    evidence: ev({
      vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)),
      sshKeys: { status: 'ok', value: { known: [], unknown: ['99'] } },
    }),
    cause: 'SSHKeyInvalid',
    findings: ['unknown-ssh-keys'],
    also: ['VMCreationFailed'],
  },
  {
    name: '5 > 6: a version mismatch beats a transient create error',
    evidence: ev({
      vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)),
      nodeGroup: ng({ kubernetesVersion: 'v1.35.0' }),
    }),
    cause: 'KubernetesVersionMismatch',
    findings: ['version-mismatch'],
    also: ['VMCreationFailed'],
  },
  {
    name: '1 > all: gone beats a broken configuration',
    evidence: ev({
      vpsieNode: null,
      sshKeys: { status: 'ok', value: { known: [], unknown: ['99'] } },
      nodeGroup: ng({ kubernetesVersion: 'v1.30.0' }),
    }),
    cause: 'VPSieNodeGone',
    findings: ['vpsienode-gone'],
    also: [],
  },
  {
    name: '2 > 4, 5: a Ready node with unknown keys and a version mismatch has recovered',
    evidence: ev({
      vpsieNode: vn({ phase: 'Ready', ipAddress: '10.0.0.5' }),
      node: { status: 'ok', value: nodeRegistration() },
      sshKeys: { status: 'ok', value: { known: [], unknown: ['99'] } },
      nodeGroup: ng({ kubernetesVersion: 'v1.33.0' }),
    }),
    cause: 'Recovered',
    findings: ['node-ready'],
    also: ['SSHKeyInvalid', 'KubernetesVersionMismatch'],
  },
  {
    name: '3: capacity and an invalid offering are one cause naming both',
    evidence: ev({
      vpsieNode: vn({ phase: 'Failed', ...recorded('CapacityLimitReached', CAPACITY) }),
      catalog: {
        status: 'ok',
        value: { unknownOfferings: ['999'], unavailableOfferings: [], datacenter: 'ok', image: 'ok' },
      },
    }),
    cause: 'VMCreationFailed',
    findings: ['capacity-limit', 'invalid-catalog'],
    also: [],
  },
  {
    name: '3 > 4: a capacity error beats unknown SSH keys',
    evidence: ev({
      vpsieNode: vn({ phase: 'Failed', ...recorded('CapacityLimitReached', CAPACITY) }),
      sshKeys: { status: 'ok', value: { known: [], unknown: ['99'] } },
    }),
    cause: 'VMCreationFailed',
    findings: ['capacity-limit'],
    also: ['SSHKeyInvalid'],
  },
  {
    name: '3 > 7: a missing group id beats the timeout it led to',
    evidence: ev({
      vpsieNode: vn({ vpsieGroupID: 0 }),
      controllerLogs: logs('ERROR VPSieGroupID is required to add node to cluster {"vpsienode": "ng-a-1"}'),
    }),
    now: min(11),
    cause: 'VMCreationFailed',
    findings: ['missing-group-id'],
    also: ['ProvisioningTimeout'],
  },
  {
    name: '4 > 5: unknown SSH keys beat a version mismatch',
    evidence: ev({
      sshKeys: { status: 'ok', value: { known: [], unknown: ['99'] } },
      nodeGroup: ng({ kubernetesVersion: 'v1.33.0' }),
    }),
    cause: 'SSHKeyInvalid',
    findings: ['unknown-ssh-keys'],
    also: ['KubernetesVersionMismatch'],
  },
  {
    name: '4 > 8: unknown SSH keys beat a registration failure',
    evidence: ev({
      vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5' }),
      sshKeys: { status: 'ok', value: { known: ['11'], unknown: ['99'] } },
    }),
    cause: 'SSHKeyInvalid',
    findings: ['unknown-ssh-keys'],
    also: ['VMNotRegistering'],
  },
  {
    name: '5 > 8: a version mismatch beats a VM that never registered',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        ipAddress: '10.0.0.5',
        ...recorded('JoiningTimeout', 'Node joining timeout exceeded (15m0s)'),
      }),
      nodeGroup: ng({ kubernetesVersion: 'v1.33.2' }),
    }),
    cause: 'KubernetesVersionMismatch',
    findings: ['version-mismatch'],
    also: ['VMNotRegistering'],
  },
  {
    name: '5 > 7: a version mismatch beats a provisioning timeout',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      clusterVersion: versionOf('v1.35.0'),
    }),
    cause: 'KubernetesVersionMismatch',
    findings: ['version-mismatch'],
    also: ['ProvisioningTimeout'],
  },
  {
    name: "5: the Node's kubelet version is named too",
    evidence: ev({
      vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5' }),
      node: notReady({ kubeletVersion: 'v1.33.2' }),
      nodeGroup: ng({ kubernetesVersion: 'v1.33.2' }),
    }),
    cause: 'KubernetesVersionMismatch',
    findings: ['version-mismatch'],
    also: ['VMNotRegistering'],
  },
  {
    name: '6 > 7: the transient error beats the timeout it led to',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      controllerLogs: logs(`Failed to provision VPS {"vpsienode": "ng-a-1", "error": "${TRANSIENT}"}`),
    }),
    cause: 'VMCreationFailed',
    findings: ['creation-error'],
    also: ['ProvisioningTimeout'],
  },
  {
    name: '7 > 8: a timed-out node with a machine is not waited for',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        creationRequested: true,
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      machine: clusterNodeMachine(),
    }),
    cause: 'ProvisioningTimeout',
    findings: ['provisioning-timeout', 'machine-found', 'machine-requested'],
    also: ['VMNotRegistering'],
  },
  {
    name: '8 over 3/7: a create error is stale once a machine was requested (id 0 is not "no VM")',
    evidence: ev({
      vpsieNode: vn({ creationRequested: true, vpsieNodeIdentifier: 'node-uuid-9', vpsieGroupID: 0 }),
      controllerLogs: logs(`failed to create VPS: ${CAPACITY} {"vpsienode": "ng-a-1"}`),
    }),
    cause: 'VMNotRegistering',
    findings: ['node-missing', 'machine-requested'],
    also: [],
  },
  {
    name: "another node's log lines are not evidence about this one",
    evidence: ev({ controllerLogs: logs(`failed to create VPS: ${CAPACITY} {"vpsienode": "ng-b-7"}`) }),
    cause: 'Unknown',
    findings: ['phase', 'machine-not-found'],
    also: [],
  },
];

const partial: Case[] = [
  {
    name: 'VPSie not configured: only the Kubernetes side, and it says too little',
    evidence: ev({ machine: unavailable, sshKeys: unavailable, catalog: unavailable }),
    cause: 'Unknown',
    findings: ['phase', 'source-unread'],
  },
  {
    name: 'VPSie not configured: a create error still classifies, the catalog is unverified',
    evidence: ev({
      vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)),
      machine: unavailable,
      sshKeys: unavailable,
      catalog: unavailable,
    }),
    cause: 'VMCreationFailed',
    findings: ['creation-error', 'catalog-unverified'],
  },
  {
    name: 'VPSie unreachable: a create error, the catalog unverified',
    evidence: ev({
      vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)),
      machine: vpsieDown,
      sshKeys: vpsieDown,
      catalog: vpsieDown,
    }),
    cause: 'VMCreationFailed',
    findings: ['creation-error', 'catalog-unverified'],
  },
  {
    name: 'every source but the VPSieNode in error: a controller timeout still shows',
    evidence: ev({
      vpsieNode: vn({
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      events: vpsieDown,
      controllerLogs: vpsieDown,
      machine: vpsieDown,
      node: vpsieDown,
      nodeGroup: vpsieDown,
      clusterVersion: vpsieDown,
      sshKeys: vpsieDown,
      catalog: vpsieDown,
    }),
    cause: 'ProvisioningTimeout',
    findings: ['provisioning-timeout'],
  },
  {
    name: 'NodeGroup unreadable: no version verdict',
    evidence: ev({ nodeGroup: vpsieDown, clusterVersion: versionOf('v1.20.0') }),
    cause: 'Unknown',
    findings: ['phase', 'machine-not-found', 'source-unread'],
  },
  {
    name: 'cluster version unreadable: no version verdict',
    evidence: ev({ nodeGroup: ng({ kubernetesVersion: 'v1.20.0' }), clusterVersion: vpsieDown }),
    cause: 'Unknown',
    findings: ['phase', 'machine-not-found', 'source-unread'],
  },
  {
    name: 'NodeGroup does not exist',
    evidence: ev({ nodeGroup: { status: 'ok', value: null }, vpsieNode: vn({ creationRequested: true }) }),
    cause: 'VMNotRegistering',
    findings: ['node-missing', 'machine-requested'],
  },
  {
    name: 'Provisioning with creation requested, Nodes unreadable: not enough to say',
    evidence: ev({ vpsieNode: vn({ creationRequested: true }), node: vpsieDown }),
    cause: 'Unknown',
    findings: ['phase', 'machine-requested', 'machine-not-found', 'source-unread'],
  },
  {
    name: 'empty: a VPSieNode with no phase, no fields, nothing else read',
    evidence: ev({
      vpsieNode: vn({ phase: null, provisioningStartedAt: null }),
      events: unavailable,
      controllerLogs: unavailable,
      machine: unavailable,
      node: unavailable,
      nodeGroup: unavailable,
      clusterVersion: unavailable,
      sshKeys: unavailable,
      catalog: unavailable,
    }),
    cause: 'Unknown',
    findings: ['phase', 'source-unread'],
  },
];

const findingsOf = (reasons: { finding: Finding }[]) => [...new Set(reasons.map((r) => r.finding))];

describe.each([
  ['every cause', causes],
  ['precedence', precedence],
  ['partial and empty evidence', partial],
])('classify: %s', (_group, table) => {
  test.each(table.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const got = classify(c.evidence, c.now ?? min(5));
    expect(got.cause).toBe(c.cause);
    expect(findingsOf(got.reasons)).toEqual(c.findings);
    if (c.also) expect(got.also).toEqual(c.also);
    expect(got.also).not.toContain(got.cause);
    expect(got.also).not.toContain('Unknown');
  });
});

test('every cause is covered by the tables', () => {
  const covered = new Set([...causes, ...precedence, ...partial].map((c) => c.cause));
  expect([...covered].sort()).toEqual([...CAUSES].sort());
});

describe('reasons name the evidence', () => {
  test('capacity: the condition and lastError, verbatim', () => {
    const got = classify(
      ev({ vpsieNode: vn({ phase: 'Failed', ...recorded('CapacityLimitReached', CAPACITY) }) }),
      min(1),
    );
    expect(got.reasons).toEqual([
      expect.objectContaining({
        source: 'vpsieNode',
        field: 'status.conditions[Error], status.lastError',
        value: `CapacityLimitReached: ${CAPACITY}`,
      }),
    ]);
  });

  test('a lastError that differs from the condition is a reason of its own', () => {
    const got = classify(
      ev({
        vpsieNode: vn({
          conditions: [errorCondition('VPSieAPIError', 'failed to get cluster: 502')],
          lastError: TRANSIENT,
        }),
      }),
      min(1),
    );
    expect(got.reasons.map((r) => [r.field, r.value])).toEqual([
      ['status.conditions[Error]', 'VPSieAPIError: failed to get cluster: 502'],
      ['status.lastError', TRANSIENT],
    ]);
  });

  test('bad catalog ids and unknown keys are named exactly', () => {
    const catalog = classify(
      ev({
        catalog: {
          status: 'ok',
          value: {
            unknownOfferings: ['999'],
            unavailableOfferings: ['102'],
            datacenter: 'unknown',
            image: 'ok',
          },
        },
      }),
      min(1),
    );
    expect(catalog.reasons.map((r) => [r.field, r.value])).toEqual([
      ['spec.offeringIDs', '999'],
      ['spec.offeringIDs', '102'],
      ['spec.datacenterID', '1'],
    ]);
    expect(catalog.reasons[2].says).toBe('datacenter 1 does not exist in VPSie');
    const keys = classify(
      ev({ sshKeys: { status: 'ok', value: { known: [], unknown: ['99', 'abc'] } } }),
      min(1),
    );
    expect(keys.reasons[0]).toMatchObject({ field: 'spec.sshKeyIDs', value: '99, abc' });
  });

  test('an overdue Provisioning names its start and the limit', () => {
    const got = classify(ev(), min(12));
    expect(got.reasons[0]).toMatchObject({ field: 'status.createdAt', value: '2026-11-24T10:00:00Z' });
    expect(got.reasons[0].says).toBe("in Provisioning for 12 min, past the controller's 10 min");
  });

  test("the limit is the caller's: 15 min allowed, 12 min is not overdue", () => {
    expect(
      classify(ev(), min(12), { provisioningTimeoutMs: 15 * 60_000, joiningTimeoutMs: 15 * 60_000 }).cause,
    ).toBe('Unknown');
    expect(classify(ev(), min(10)).cause).toBe('Unknown'); // exactly the limit: the controller waits longer still
  });

  test('the log line and the pod it came from', () => {
    const line = `{"msg":"Failed to create K8s node via VPSie API","vpsienode":"ng-a-1","error":"502"}`;
    const got = classify(ev({ controllerLogs: logs('other line ng-a-1 provisioning', line) }), min(1));
    expect(got.reasons).toEqual([
      expect.objectContaining({
        source: 'controllerLogs',
        field: 'log of pod vpsie-autoscaler-abc',
        value: line,
      }),
    ]);
  });

  test('unread sources say why', () => {
    const got = classify(ev({ machine: unavailable, catalog: vpsieDown }), min(1));
    expect(got.reasons.filter((r) => r.finding === 'source-unread').map((r) => [r.source, r.value])).toEqual([
      ['machine', 'unavailable: VPSie is not configured'],
      ['catalog', 'VPSieUnavailable: HTTP 503 from GET /offerings'],
    ]);
  });

  test('the version mismatch says both versions', () => {
    const got = classify(ev({ nodeGroup: ng({ kubernetesVersion: 'v1.33.2' }) }), min(1));
    expect(got.reasons[0].says).toBe(
      'NodeGroup kube-system/ng-a wants Kubernetes v1.33.2, the cluster runs v1.34.4',
    );
  });
});

describe('versions compare by major.minor', () => {
  test.each([
    ['v1.34.1', 'v1.34.4', false],
    ['1.34', 'v1.34.4', false],
    ['v1.34.4', 'v1.34.4+k3s1', false],
    ['v1.33.9', 'v1.34.0', true],
    ['v2.34.0', 'v1.34.0', true],
    ['latest', 'v1.34.0', false], // not a version: no verdict, not a mismatch
  ])('NodeGroup %s, cluster %s → mismatch %s', (want, have, mismatch) => {
    const got = classify(
      ev({ nodeGroup: ng({ kubernetesVersion: want }), clusterVersion: versionOf(have) }),
      min(1),
    );
    expect(got.cause === 'KubernetesVersionMismatch').toBe(mismatch);
  });

  test('a cluster whose gitVersion does not parse is compared by major and minor', () => {
    const got = classify(
      ev({
        nodeGroup: ng({ kubernetesVersion: 'v1.33.0' }),
        clusterVersion: { status: 'ok', value: { major: '1', minor: '34+', gitVersion: 'custom' } },
      }),
      min(1),
    );
    expect(got.cause).toBe('KubernetesVersionMismatch');
  });

  test.each([
    ['v1.34.4', [1, 34]],
    ['1.9', [1, 9]],
    ['x1.2', null],
  ])('majorMinor(%s)', (v, want) => expect(majorMinor(v)).toEqual(want));
});

test('Unknown names the recorded error once, and the machine that was asked for', () => {
  const got = classify(
    ev({
      vpsieNode: vn({
        phase: 'Failed',
        vpsieInstanceID: 4242,
        ...recorded('VPSDeleteFailed', 'failed to delete VPS: 500'),
      }),
      machine: machine({ vm: vm(), matchedBy: 'instance-id' }),
      node: { status: 'ok', value: nodeRegistration() },
    }),
    min(1),
  );
  // a Ready Node does not save a Failed VPSieNode: the controller deletes it after its TTL, draining the Node
  expect(got.cause).toBe('Unknown');
  expect(
    classify(
      ev({
        vpsieNode: vn({ phase: 'Ready', vpsieInstanceID: 4242 }),
        machine: machine({ vm: vm(), matchedBy: 'instance-id' }),
        node: { status: 'ok', value: nodeRegistration() },
      }),
      min(1),
    ).cause,
  ).toBe('Recovered');
  const unknown = classify(
    ev({ vpsieNode: vn({ phase: 'Failed', ...recorded('VPSDeleteFailed', 'failed to delete VPS: 500') }) }),
    min(1),
  );
  expect(unknown.reasons.map((r) => [r.finding, r.field, r.value])).toEqual([
    ['phase', 'status.phase', 'Failed'],
    [
      'recorded-error',
      'status.conditions[Error], status.lastError',
      'VPSDeleteFailed: failed to delete VPS: 500',
    ],
    ['machine-not-found', 'machine', 'none'],
  ]);
});

test("the joining limit is the caller's", () => {
  const e = ev({
    vpsieNode: vn({ phase: 'Joining', ipAddress: '10.0.0.5', provisionedAt: '2026-11-24T10:03:00Z' }),
  });
  const limits = { provisioningTimeoutMs: 10 * 60_000, joiningTimeoutMs: 30 * 60_000 };
  expect(findingsOf(classify(e, min(19), limits).reasons)).toEqual(['node-missing', 'machine-requested']);
  expect(classify(e, min(19)).reasons[0].says).toBe("Joining for 16 min, past the controller's 15 min");
});

test('bad time is refused by name', () => {
  expect(() => classify(ev(), 'yesterday')).toThrow('now must be a time, got "yesterday"');
});

test("findMachine's and checkVM's answers are machine evidence", () => {
  const finding: MachineFinding = {
    node: null,
    vm: vm(),
    matchedBy: 'instance-id',
    ambiguous: [],
    cluster: 'unset',
  };
  const asEvidence: MachineEvidence = finding;
  expect(machineFromVM(vm())).toEqual(asEvidence);
  expect(machineFromVM(null)).toEqual({
    node: null,
    vm: null,
    matchedBy: null,
    ambiguous: [],
    cluster: 'unset',
  });
});
