import {
  classify,
  describeTarget,
  nodeGroupVersionOf,
  plan,
  type Cause,
  type Condition,
  type Evidence,
  type PlanStep,
} from '../../src/runbook';
import { evidenceOf, nodeGroupSnapshot, vmSnapshot, vpsieNodeSnapshot } from '../support/snapshots';

// Fixtures: provisioning started 10:00, evidence observed 10:05 (see evidenceOf).
const NOW = Date.parse('2026-11-24T10:05:00Z');
const at = (hhmm: string) => `2026-11-24T${hhmm}:00.000Z`;

const recorded = (reason: string, message: string) => ({
  conditions: [{ type: 'Error', status: 'True', reason, message } satisfies Condition],
  lastError: message,
});
const vm = vmSnapshot();
const withVM: Evidence['machine'] = {
  status: 'ok',
  value: { node: null, vm, matchedBy: 'instance-id', ambiguous: [], cluster: 'found' },
};
const withClusterNode: Evidence['machine'] = {
  status: 'ok',
  value: {
    node: {
      identifier: 'node-uuid-9',
      hostname: 'ng-a-1-q8r7s',
      ip: '10.0.0.9',
      status: 'running',
      role: 'slave',
      createdOn: null,
    },
    vm: null,
    matchedBy: 'identifier',
    ambiguous: [],
    cluster: 'found',
  },
};
const vpsieDown = { status: 'error', type: 'VPSieUnavailable', message: 'HTTP 503' } as const;
const CAPACITY = 'failed to create VPS: API error 400: Worker nodes count exceeds the allowed limit';
const TRANSIENT = 'failed to create VPS: API error 500: internal server error';

const vn = vpsieNodeSnapshot;
const ev = evidenceOf;
const planFor = (e: Evidence, options = {}) => {
  const c = classify(e, NOW);
  return { c, steps: plan(c, e, options) };
};
const ids = (steps: PlanStep[]) => steps.map((s) => s.id);

const SELF = { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid: 'u1' };
const REPLACEMENT = {
  kind: 'Replacement',
  nodeGroup: { namespace: 'kube-system', name: 'ng-a', uid: 'ng-uid-1' },
  replaces: { namespace: 'kube-system', name: 'ng-a-1', uid: 'u1' },
};
const RECREATE = [
  'delete-vpsienode',
  'wait-vpsienode-gone',
  'wait-replacement',
  'reconcile-nodegroup',
  'wait-replacement-after-reconcile',
  'wait-replacement-ready',
];

/** The evidence of each cause, for the plan tables. */
const staged: Record<string, Evidence> = {
  provisioningTimeout: ev({
    vpsieNode: vn({
      phase: 'Failed',
      ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
    }),
  }),
  transient: ev({ vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)) }),
  notRegistering: ev({ vpsieNode: vn({ creationRequested: true }) }),
  versionMismatch: ev({
    nodeGroup: { status: 'ok', value: nodeGroupSnapshot({ kubernetesVersion: 'v1.33.2' }) },
    vpsieNode: vn({ creationRequested: true }),
  }),
  capacity: ev({ vpsieNode: vn({ phase: 'Failed', ...recorded('CapacityLimitReached', CAPACITY) }) }),
  groupID: ev({
    vpsieNode: vn({ vpsieGroupID: 0, ...recorded('VPSieAPIError', 'VPSieGroupID is required') }),
  }),
  catalog: ev({
    catalog: {
      status: 'ok',
      value: { unknownOfferings: ['999'], unavailableOfferings: [], datacenter: 'ok', image: 'unavailable' },
    },
  }),
  transientUnverified: ev({ vpsieNode: vn(recorded('VPSieAPIError', TRANSIENT)), catalog: vpsieDown }),
  sshKeys: ev({ sshKeys: { status: 'ok', value: { known: ['11'], unknown: ['99', 'key-uuid-x'] } } }),
  unknown: ev({ machine: vpsieDown }),
  recovered: ev({ vpsieNode: vn({ phase: 'Ready' }), node: vpsieDown }),
  gone: ev({ vpsieNode: null }),
  goneVM: ev({ vpsieNode: null, lastSeen: vn(), machine: withVM }),
  goneClusterNode: ev({ vpsieNode: null, lastSeen: vn(), machine: withClusterNode }),
  goneUnnamed: ev({ vpsieNode: null, lastSeen: null, machine: withClusterNode }),
  deleting: ev({ vpsieNode: vn({ deletionTimestamp: '2026-11-24T10:04:00Z' }), machine: withVM }),
};

describe('each cause has its plan', () => {
  test.each<[string, Cause, string[]]>([
    ['provisioningTimeout', 'ProvisioningTimeout', RECREATE],
    ['transient', 'VMCreationFailed', RECREATE],
    ['notRegistering', 'VMNotRegistering', ['wait-node-registration', ...RECREATE]],
    ['versionMismatch', 'KubernetesVersionMismatch', ['patch-nodegroup-version', ...RECREATE]],
    ['capacity', 'VMCreationFailed', ['escalate']],
    ['groupID', 'VMCreationFailed', ['escalate']],
    ['catalog', 'VMCreationFailed', ['escalate']],
    ['transientUnverified', 'VMCreationFailed', ['escalate']],
    ['sshKeys', 'SSHKeyInvalid', ['escalate']],
    ['unknown', 'Unknown', ['escalate']],
    ['recovered', 'Recovered', []],
    ['gone', 'VPSieNodeGone', []],
    ['deleting', 'VPSieNodeGone', []],
    ['goneVM', 'VPSieNodeGone', ['terminate-machine']],
    ['goneClusterNode', 'VPSieNodeGone', ['terminate-machine']],
    ['goneUnnamed', 'VPSieNodeGone', ['escalate']],
  ])('%s → %s: %j', (key, cause, want) => {
    const { c, steps } = planFor(staged[key]);
    expect(c.cause).toBe(cause);
    expect(ids(steps)).toEqual(want);
    expect(new Set(ids(steps)).size).toBe(steps.length);
    for (const s of steps) expect(s.why).toMatch(/^[A-Z].*\.$/);
    if (steps.some((s) => s.kind === 'escalate')) expect(steps.filter((s) => s.destructive)).toEqual([]);
  });
});

describe('delete and recreate', () => {
  test('targets, destructive flags, waits and deadlines', () => {
    const { steps } = planFor(staged.provisioningTimeout);
    expect(steps).toEqual([
      expect.objectContaining({ id: 'delete-vpsienode', destructive: true, target: SELF }),
      {
        id: 'wait-vpsienode-gone',
        kind: 'wait-vpsienode-gone',
        destructive: false,
        target: SELF,
        why: expect.any(String),
        wait: { until: at('10:20'), onExpiry: 'escalate' },
      },
      {
        id: 'wait-replacement',
        kind: 'wait-replacement',
        destructive: false,
        target: REPLACEMENT,
        why: expect.any(String),
        wait: { until: at('10:25'), onExpiry: 'continue' },
      },
      {
        id: 'reconcile-nodegroup',
        kind: 'reconcile-trigger',
        destructive: false,
        target: { kind: 'NodeGroup', namespace: 'kube-system', name: 'ng-a', uid: 'ng-uid-1' },
        why: expect.stringContaining('reconcile-trigger'),
        onlyIfExpired: 'wait-replacement',
      },
      {
        id: 'wait-replacement-after-reconcile',
        kind: 'wait-replacement',
        destructive: false,
        target: REPLACEMENT,
        why: expect.any(String),
        wait: { until: at('10:30'), onExpiry: 'escalate' },
        onlyIfExpired: 'wait-replacement',
      },
      {
        id: 'wait-replacement-ready',
        kind: 'wait-replacement-ready',
        destructive: false,
        target: REPLACEMENT,
        why: expect.any(String),
        wait: { until: at('10:55'), onExpiry: 'escalate' },
      },
    ]);
    expect(steps[0].why).toBe(
      'Delete kube-system/ng-a-1 (uid u1) so that the controller removes its machine and NodeGroup ng-a creates a new one.',
    );
  });

  test('a known machine is waited for by VM id and hostname', () => {
    const e = ev({
      vpsieNode: vn({
        vpsieInstanceID: 4242,
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      machine: withVM,
    });
    const { steps } = planFor(e);
    expect(ids(steps)).toEqual(['delete-vpsienode', 'wait-machine-gone', ...RECREATE.slice(1)]);
    expect(steps[1]).toMatchObject({
      destructive: false,
      target: {
        kind: 'VM',
        id: 4242,
        identifier: 'vm-uuid-4242',
        hostname: 'ng-a-1-x1y2z',
        nodeGroup: 'ng-a',
      },
      wait: { until: at('10:20'), onExpiry: 'escalate' },
    });
    expect(steps[2].wait).toEqual({ until: at('10:20'), onExpiry: 'escalate' });
  });

  test('a machine with id 0 and a hostname is waited for by cluster, identifier and hostname', () => {
    const e = ev({
      vpsieNode: vn({
        creationRequested: true,
        vpsieNodeIdentifier: 'node-uuid-9',
        hostname: 'ng-a-1-q8r7s',
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      machine: withClusterNode,
    });
    const { steps } = planFor(e);
    expect(ids(steps)).toEqual(['delete-vpsienode', 'wait-machine-gone', ...RECREATE.slice(1)]);
    expect(steps[1].target).toEqual({
      kind: 'ClusterNode',
      resourceIdentifier: 'cluster-1',
      identifier: 'node-uuid-9',
      hostname: 'ng-a-1-q8r7s',
      nodeGroup: 'ng-a',
    });
  });

  test('a machine the controller would leave behind (id 0, no hostname) is terminated first, then the VPSieNode deleted', () => {
    const e = ev({
      vpsieNode: vn({
        creationRequested: true,
        vpsieNodeIdentifier: 'node-uuid-9',
        phase: 'Failed',
        ...recorded('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
      }),
      machine: withClusterNode,
    });
    const { steps } = planFor(e);
    expect(ids(steps)).toEqual(['terminate-machine', 'wait-machine-gone', ...RECREATE]);
    const owned = {
      kind: 'ClusterNode',
      resourceIdentifier: 'cluster-1',
      identifier: 'node-uuid-9',
      hostname: 'ng-a-1-q8r7s',
      nodeGroup: 'ng-a',
      ownedBy: { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid: 'u1' },
    };
    expect(steps[0]).toMatchObject({ destructive: true, target: owned });
    expect(steps[0].why).toContain('the controller would leave');
    expect(steps[1]).toMatchObject({ destructive: false, target: owned });
    expect(steps[2]).toMatchObject({ destructive: true, target: owned.ownedBy });
  });

  test('waits are options', () => {
    const { steps } = planFor(staged.provisioningTimeout, {
      goneWaitMs: 60_000,
      replacementWaitMs: 120_000,
      readyWaitMs: 600_000,
    });
    expect(steps.filter((s) => s.wait).map((s) => s.wait!.until)).toEqual([
      at('10:06'),
      at('10:08'),
      at('10:10'),
      at('10:20'),
    ]);
  });

  test.each([
    ['does not exist', { status: 'ok', value: null } as const, 'does not exist'],
    ['cannot be read', vpsieDown, 'could not be read'],
    [
      'is not managed',
      { status: 'ok', value: nodeGroupSnapshot({ managed: false }) } as const,
      'not labelled',
    ],
  ])('a NodeGroup that %s: escalate, nothing deleted', (_what, nodeGroup, says) => {
    const { steps } = planFor({ ...staged.provisioningTimeout, nodeGroup });
    expect(ids(steps)).toEqual(['escalate']);
    expect(steps[0].destructive).toBe(false);
    expect(steps[0].why).toContain(says);
  });
});

describe('VMNotRegistering', () => {
  test('waits until 15 min after provisioning started, then recreates only if that wait expired', () => {
    const { steps } = planFor(staged.notRegistering);
    expect(steps[0]).toEqual({
      id: 'wait-node-registration',
      kind: 'wait-node-registration',
      destructive: false,
      target: SELF,
      why: expect.stringContaining(at('10:15')),
      wait: { until: at('10:15'), onExpiry: 'continue' },
    });
    expect(steps.slice(1).map((s) => [s.id, s.onlyIfExpired])).toEqual([
      ['delete-vpsienode', 'wait-node-registration'],
      ['wait-vpsienode-gone', 'wait-node-registration'],
      ['wait-replacement', 'wait-node-registration'],
      ['reconcile-nodegroup', 'wait-replacement'],
      ['wait-replacement-after-reconcile', 'wait-replacement'],
      ['wait-replacement-ready', 'wait-node-registration'],
    ]);
    // the recreate's deadlines start when the registration wait ends
    expect(steps[2].wait!.until).toBe(at('10:30'));
  });

  test('without a managed NodeGroup: wait, then escalate instead of deleting', () => {
    const e = {
      ...staged.notRegistering,
      nodeGroup: { status: 'ok', value: nodeGroupSnapshot({ managed: false }) } as const,
    };
    const { steps } = planFor(e);
    expect(steps.map((s) => [s.id, s.destructive, s.onlyIfExpired])).toEqual([
      ['wait-node-registration', false, undefined],
      ['escalate', false, 'wait-node-registration'],
    ]);
  });

  test('the registration wait is an option', () => {
    expect(planFor(staged.notRegistering, { registrationWaitMs: 20 * 60_000 }).steps[0].wait!.until).toBe(
      at('10:20'),
    );
  });

  test('past the deadline already: the wait ends now', () => {
    const e = { ...staged.notRegistering, observedAt: '2026-11-24T10:40:00Z' };
    const c = classify(
      { ...e, vpsieNode: vn({ creationRequested: true, phase: 'Joining' }) },
      Date.parse(e.observedAt),
    );
    expect(c.cause).toBe('VMNotRegistering');
    expect(plan(c, e)[0].wait!.until).toBe(at('10:40'));
  });
});

test('KubernetesVersionMismatch: patch the NodeGroup (old → new), then recreate', () => {
  const { steps } = planFor(staged.versionMismatch);
  expect(steps[0]).toEqual({
    id: 'patch-nodegroup-version',
    kind: 'patch-nodegroup-version',
    destructive: true,
    target: {
      kind: 'NodeGroup',
      namespace: 'kube-system',
      name: 'ng-a',
      uid: 'ng-uid-1',
      change: { field: 'spec.kubernetesVersion', from: 'v1.33.2', to: 'v1.34.4' },
    },
    why: "Set NodeGroup kube-system/ng-a spec.kubernetesVersion from v1.33.2 to the cluster's v1.34.4, so that new nodes match the control plane.",
  });
  expect(steps.filter((s) => s.destructive).map((s) => s.id)).toEqual([
    'patch-nodegroup-version',
    'delete-vpsienode',
  ]);
  expect(describeTarget(steps[0].target)).toBe(
    'NodeGroup kube-system/ng-a (uid ng-uid-1) spec.kubernetesVersion v1.33.2 → v1.34.4',
  );
});

test.each([
  [{ major: '1', minor: '34', gitVersion: 'v1.34.4' }, 'v1.34.4'],
  [{ major: '1', minor: '34', gitVersion: 'v1.34.4+k3s1' }, 'v1.34.4+k3s1'],
  [{ major: '1', minor: '34+', gitVersion: 'v1.34.4-eks-abc' }, 'v1.34.4-eks-abc'],
  [{ major: '1', minor: '34+', gitVersion: 'custom-build' }, 'v1.34.0'],
])('the patch writes a version the NodeGroup CRD accepts: %j → %s', (cluster, want) => {
  expect(nodeGroupVersionOf(cluster)).toBe(want);
  const e = { ...staged.versionMismatch, clusterVersion: { status: 'ok', value: cluster } as const };
  const [patch] = planFor(e).steps;
  expect(patch.target).toMatchObject({ change: { from: 'v1.33.2', to: want } });
});

test('KubernetesVersionMismatch with an unmanaged NodeGroup: escalate only, no patch', () => {
  const e = {
    ...staged.versionMismatch,
    nodeGroup: {
      status: 'ok',
      value: nodeGroupSnapshot({ kubernetesVersion: 'v1.33.2', managed: false }),
    } as const,
  };
  expect(ids(planFor(e).steps)).toEqual(['escalate']);
});

describe('escalations name what a person must fix', () => {
  test.each([
    ['capacity', ['Worker nodes count exceeds the allowed limit']],
    ['groupID', ['VPSieGroupID is required', 'no VPSie node group']],
    ['catalog', ['offering 999 does not exist in VPSie', 'image 201 is not available in VPSie']],
    ['transientUnverified', ['could not be checked', 'VPSieUnavailable: HTTP 503']],
    ['sshKeys', ['99, key-uuid-x', 'ng-a']],
  ])('%s', (key, phrases) => {
    const [step] = planFor(staged[key]).steps;
    const text = [step.why, ...(step.target.kind === 'Escalation' ? step.target.evidence : [])].join('\n');
    for (const p of phrases) expect(text).toContain(p);
  });

  test('Unknown carries all the evidence, unread sources included', () => {
    const [step] = planFor(staged.unknown).steps;
    expect(step.target).toEqual({
      kind: 'Escalation',
      cause: 'Unknown',
      evidence: [
        'the VPSieNode is in this phase (vpsieNode status.phase: Provisioning)',
        'this evidence could not be read (machine machine: VPSieUnavailable: HTTP 503)',
      ],
    });
  });

  test('an escalation lists sources that could not be read even when the cause did not need them', () => {
    const [step] = planFor({ ...staged.sshKeys, events: vpsieDown }).steps;
    expect(step.target.kind === 'Escalation' && step.target.evidence).toContain(
      'could not read events: VPSieUnavailable: HTTP 503',
    );
  });
});

describe('VPSieNodeGone with its machine left: Manual VM Cleanup, destructive', () => {
  test('a VM by id, identifier and hostname', () => {
    const { steps } = planFor(staged.goneVM);
    expect(steps).toEqual([
      {
        id: 'terminate-machine',
        kind: 'terminate-machine',
        destructive: true,
        target: {
          kind: 'VM',
          id: 4242,
          identifier: 'vm-uuid-4242',
          hostname: 'ng-a-1-x1y2z',
          nodeGroup: 'ng-a',
        },
        why: expect.stringContaining('Manual VM Cleanup'),
      },
    ]);
  });

  test('a cluster machine by cluster, identifier and hostname', () => {
    expect(planFor(staged.goneClusterNode).steps[0].target).toEqual({
      kind: 'ClusterNode',
      resourceIdentifier: 'cluster-1',
      identifier: 'node-uuid-9',
      hostname: 'ng-a-1-q8r7s',
      nodeGroup: 'ng-a',
    });
  });
});

test('describeTarget names every kind of target', () => {
  const steps = [
    ...planFor(staged.versionMismatch).steps,
    ...planFor(staged.goneVM).steps,
    ...planFor(staged.goneClusterNode).steps,
    ...planFor(staged.sshKeys).steps,
  ];
  expect([...new Set(steps.map((s) => describeTarget(s.target)))]).toEqual([
    'NodeGroup kube-system/ng-a (uid ng-uid-1) spec.kubernetesVersion v1.33.2 → v1.34.4',
    'VPSieNode kube-system/ng-a-1 (uid u1)',
    'a new VPSieNode of NodeGroup kube-system/ng-a replacing uid u1',
    'NodeGroup kube-system/ng-a (uid ng-uid-1)',
    'VPSie VM 4242 ng-a-1-x1y2z (vm-uuid-4242)',
    'VPSie cluster cluster-1 node node-uuid-9 ng-a-1-q8r7s',
    'people, with cause SSHKeyInvalid',
  ]);
});

test('bad options are refused by name', () => {
  const c = classify(staged.provisioningTimeout, NOW);
  expect(() => plan(c, staged.provisioningTimeout, { readyWaitMs: -1 })).toThrow(
    'readyWaitMs must be a duration in ms ≥ 0, got -1',
  );
  expect(() => plan(c, staged.provisioningTimeout, { now: 'soon' })).toThrow(
    'now must be a time, got "soon"',
  );
});
