import {
  controllerLogFilter,
  MAX_LOG_LINE_LENGTH,
  sanitizeLogLine,
  toEventSummary,
  toNodeGroupSnapshot,
  toNodeSnapshot,
} from '../../src/runbook';

describe('toEventSummary', () => {
  it('keeps what `kubectl get events` shows, from raw JSON', () => {
    const e = toEventSummary({
      metadata: { name: 'ng-a-1.17f', namespace: 'prod', managedFields: [{ manager: 'x' }] },
      involvedObject: { kind: 'VPSieNode', name: 'ng-a-1', namespace: 'prod', uid: 'u-1' },
      type: 'Warning',
      reason: 'ProvisioningTimeout',
      message: 'VM not running after 10m',
      count: 3,
      firstTimestamp: '2026-11-24T10:00:00Z',
      lastTimestamp: '2026-11-24T10:10:00Z',
      source: { component: 'vpsie-autoscaler' },
    });
    expect(e).toEqual({
      type: 'Warning',
      reason: 'ProvisioningTimeout',
      message: 'VM not running after 10m',
      count: 3,
      firstSeen: '2026-11-24T10:00:00Z',
      lastSeen: '2026-11-24T10:10:00Z',
      source: 'vpsie-autoscaler',
      involvedObject: { kind: 'VPSieNode', name: 'ng-a-1', uid: 'u-1' },
    });
  });

  it("reads client-node's Date objects back as the API server's timestamps", () => {
    const e = toEventSummary({
      reason: 'Failed',
      firstTimestamp: new Date('2026-11-24T10:00:00Z'),
      lastTimestamp: new Date('2026-11-24T10:05:00.250Z'),
    });
    expect(e.firstSeen).toBe('2026-11-24T10:00:00Z');
    expect(e.lastSeen).toBe('2026-11-24T10:05:00.250Z');
  });

  it('falls back to the series, eventTime and creation time of events.k8s.io-style events', () => {
    const series = toEventSummary({
      eventTime: '2026-11-24T10:00:00.000001Z',
      series: { count: 7, lastObservedTime: '2026-11-24T10:30:00.000001Z' },
      reportingComponent: 'vpsie-autoscaler',
      source: { component: 'older-field' },
    });
    expect(series).toMatchObject({
      count: 7,
      firstSeen: '2026-11-24T10:00:00.000001Z',
      lastSeen: '2026-11-24T10:30:00.000001Z',
      source: 'vpsie-autoscaler',
    });
    const bare = toEventSummary({ metadata: { creationTimestamp: '2026-11-24T09:00:00Z' } });
    expect(bare).toMatchObject({
      count: 1,
      firstSeen: '2026-11-24T09:00:00Z',
      lastSeen: '2026-11-24T09:00:00Z',
    });
    expect(bare.involvedObject).toEqual({ kind: null, name: null, uid: null });
  });

  it('ignores an invalid Date rather than writing "Invalid Date" into history', () => {
    expect(toEventSummary({ lastTimestamp: new Date('nope') }).lastSeen).toBeNull();
  });
});

describe('toNodeSnapshot', () => {
  const node = (extra: Record<string, unknown> = {}) => ({
    metadata: {
      name: 'ng-a-1-node',
      uid: 'n-1',
      creationTimestamp: new Date('2026-11-24T10:03:00Z'),
      labels: {
        'autoscaler.vpsie.com/vpsienode': 'ng-a-1',
        'autoscaler.vpsie.com/nodegroup': 'ng-a',
        'kubernetes.io/hostname': 'ng-a-1-node',
      },
      managedFields: [{ manager: 'kubelet' }],
    },
    status: {
      addresses: [
        { type: 'ExternalIP', address: '203.0.113.9' },
        { type: 'InternalIP', address: '10.1.0.9' },
        { type: 'Hostname', address: 'ng-a-1-node' },
      ],
      nodeInfo: { kubeletVersion: 'v1.30.2', machineID: 'abc' },
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        {
          type: 'Ready',
          status: 'False',
          reason: 'KubeletNotReady',
          lastTransitionTime: new Date('2026-11-24T10:04:00Z'),
        },
      ],
    },
    ...extra,
  });

  it('keeps the controller labels, Ready, kubelet version and internal IP', () => {
    expect(toNodeSnapshot(node())).toEqual({
      name: 'ng-a-1-node',
      uid: 'n-1',
      labels: { 'autoscaler.vpsie.com/vpsienode': 'ng-a-1', 'autoscaler.vpsie.com/nodegroup': 'ng-a' },
      readyStatus: 'False',
      readyReason: 'KubeletNotReady',
      readySince: '2026-11-24T10:04:00Z',
      kubeletVersion: 'v1.30.2',
      internalIP: '10.1.0.9',
      creationTimestamp: '2026-11-24T10:03:00Z',
    });
  });

  it('says null for what a freshly registered Node has not reported yet', () => {
    const s = toNodeSnapshot({ metadata: { name: 'bare', uid: 'n-2' } });
    expect(s).toMatchObject({
      labels: {},
      readyStatus: null,
      readyReason: null,
      kubeletVersion: null,
      internalIP: null,
    });
  });

  it('refuses an object without a name', () => {
    expect(() => toNodeSnapshot({ metadata: {} })).toThrow(/metadata\.name/);
    expect(() => toNodeSnapshot(null)).toThrow();
  });
});

describe('toNodeGroupSnapshot', () => {
  const ng = {
    apiVersion: 'autoscaler.vpsie.com/v1alpha1',
    kind: 'NodeGroup',
    metadata: {
      name: 'ng-a',
      namespace: 'prod',
      uid: 'g-1',
      resourceVersion: '812',
      annotations: {
        'reconcile-trigger': '1795000000',
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
      },
      managedFields: [{ manager: 'kubectl' }],
    },
    spec: {
      minNodes: 1,
      maxNodes: 5,
      datacenterID: 'dc-1',
      offeringIDs: ['o-1', 7, 'o-2'],
      osImageID: 'img-1',
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1'],
      userData: '#cloud-config\npassword: hunter2',
    },
    status: {
      desiredNodes: 3,
      currentNodes: 2,
      readyNodes: 1,
      conditions: [{ type: 'Error', status: 'True', reason: 'VPSieAPIError', message: 'quota exceeded' }],
    },
  };

  it('keeps the configuration the runbook checks and nothing else', () => {
    expect(toNodeGroupSnapshot(ng)).toEqual({
      namespace: 'prod',
      name: 'ng-a',
      uid: 'g-1',
      resourceVersion: '812',
      minNodes: 1,
      maxNodes: 5,
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1'],
      offeringIDs: ['o-1', 'o-2'],
      datacenterID: 'dc-1',
      osImageID: 'img-1',
      desiredNodes: 3,
      currentNodes: 2,
      readyNodes: 1,
      reconcileTrigger: '1795000000',
      conditions: [{ type: 'Error', status: 'True', reason: 'VPSieAPIError', message: 'quota exceeded' }],
    });
    // user data may hold credentials: it never reaches history
    expect(JSON.stringify(toNodeGroupSnapshot(ng))).not.toContain('hunter2');
  });

  it('says null, not 0, for status the controller has not written yet', () => {
    const s = toNodeGroupSnapshot({ metadata: { name: 'new', namespace: 'prod' }, spec: { maxNodes: 2 } });
    expect(s).toMatchObject({
      minNodes: null,
      maxNodes: 2,
      desiredNodes: null,
      currentNodes: null,
      readyNodes: null,
      kubernetesVersion: null,
      sshKeyIDs: [],
      reconcileTrigger: null,
      conditions: [],
    });
  });

  it('refuses an object without name or namespace', () => {
    expect(() => toNodeGroupSnapshot({ metadata: { name: 'x' } })).toThrow(/namespace/);
  });
});

describe('controllerLogFilter', () => {
  const f = controllerLogFilter('ng-a.1');

  it('is the runbook\'s grep -i "<name>\\|provision\\|failed"', () => {
    expect(f.test('reconciling VPSieNode NG-A.1')).toBe(true);
    expect(f.test('Provisioning VM for node x')).toBe(true);
    expect(f.test('create VM FAILED: 403')).toBe(true);
    expect(f.test('leader election renewed')).toBe(false);
  });

  it('takes the name literally', () => {
    expect(f.test('reconciling ng-aX1')).toBe(false);
    expect(controllerLogFilter('a+(b').test('node a+(b stuck')).toBe(true);
  });
});

describe('sanitizeLogLine', () => {
  it('redacts credentials the way they show up in controller logs', () => {
    const line = sanitizeLogLine(
      'POST /auth/from/api Authorization: Bearer eyJhbGciOi.abc-def clientSecret=s3cr3t {"token": "t0k3n"} vpsie_token=xyz',
    );
    for (const secret of ['eyJhbGciOi', 's3cr3t', 't0k3n', 'xyz']) expect(line).not.toContain(secret);
    expect(line).toContain('Bearer [REDACTED]');
    expect(line).toContain('"token": "[REDACTED]"');
    expect(line).toContain('POST /auth/from/api');
  });

  it('leaves ordinary lines alone and cuts very long ones', () => {
    const ordinary = 'E1124 VPSieNode prod/ng-a-1 provisioning failed: token expired, retrying';
    expect(sanitizeLogLine(ordinary)).toBe(ordinary);
    const long = sanitizeLogLine('x'.repeat(5000));
    expect(long.length).toBe(MAX_LOG_LINE_LENGTH + 1);
    expect(long.endsWith('…')).toBe(true);
  });
});
