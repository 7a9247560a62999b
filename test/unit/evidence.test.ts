import {
  controllerLogFilter,
  findRegisteredNode,
  MAX_LOG_LINE_LENGTH,
  noControllerPodsNote,
  registrationTargetOf,
  sanitizeLogLine,
  toEventSummary,
  toNodeGroupSnapshot,
  toNodeSnapshot,
  toVPSieNodeSnapshot,
  VPSIENODE_FINALIZER,
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
      externalIP: '203.0.113.9',
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
      externalIP: null,
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
      labels: { 'autoscaler.vpsie.com/managed': 'true' },
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
      resourceIdentifier: 'cluster-1',
      project: 'project-1',
      kubeSizeID: 12,
      notes: 'password: hunter2',
    },
    status: {
      vpsieGroupID: 77,
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
      kubeSizeID: 12,
      resourceIdentifier: 'cluster-1',
      managed: true,
      vpsieGroupID: 77,
      desiredNodes: 3,
      currentNodes: 2,
      readyNodes: 1,
      reconcileTrigger: '1795000000',
      conditions: [{ type: 'Error', status: 'True', reason: 'VPSieAPIError', message: 'quota exceeded' }],
    });
    // free text may hold anything, credentials included: it never reaches history
    expect(JSON.stringify(toNodeGroupSnapshot(ng))).not.toContain('hunter2');
  });

  it('says null, not 0, for status the controller has not written yet', () => {
    const s = toNodeGroupSnapshot({ metadata: { name: 'new', namespace: 'prod' }, spec: { maxNodes: 2 } });
    expect(s).toMatchObject({
      minNodes: null,
      maxNodes: 2,
      managed: false,
      kubeSizeID: null,
      vpsieGroupID: null,
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

describe('toVPSieNodeSnapshot: what "vpsieInstanceID 0" needs beside it', () => {
  const vn = {
    metadata: {
      name: 'ng-a-7x2k',
      namespace: 'kube-system',
      uid: 'u-7',
      resourceVersion: '900',
      creationTimestamp: '2026-11-24T10:00:00Z',
      annotations: { 'autoscaler.vpsie.com/creation-requested': 'true', other: 'x' },
      finalizers: [VPSIENODE_FINALIZER],
      managedFields: [{ manager: 'vpsie-autoscaler' }],
    },
    spec: {
      vpsieInstanceID: 0,
      instanceType: 'o-1',
      nodeGroupName: 'ng-a',
      datacenterID: 'dc-1',
      resourceIdentifier: 'cluster-1',
      project: 'p-1',
      kubernetesVersion: 'v1.30.2',
      vpsieGroupID: 77,
      vpsieNodeIdentifier: '5f0c7a4e-node',
      ipAddress: '203.0.113.20',
    },
    status: {
      phase: 'Provisioning',
      createdAt: '2026-11-24T10:00:05Z',
      hostname: 'ng-a-7x2k-ab12',
      vpsieStatus: 'running',
      conditions: [
        {
          type: 'VPSReady',
          status: 'False',
          reason: 'Provisioning',
          lastTransitionTime: '2026-11-24T10:00:05Z',
          lastUpdateTime: '2026-11-24T10:04:55Z',
        },
      ],
    },
  };

  it('keeps the annotation, identifier, addresses, hostname, VPSie status, group, cluster and finalizers', () => {
    const s = toVPSieNodeSnapshot(vn);
    expect(s).toMatchObject({
      vpsieInstanceID: 0,
      creationRequested: true,
      vpsieNodeIdentifier: '5f0c7a4e-node',
      vpsieGroupID: 77,
      resourceIdentifier: 'cluster-1',
      ipAddress: '203.0.113.20',
      ipv6Address: null,
      hostname: 'ng-a-7x2k-ab12',
      vpsieStatus: 'running',
      finalizers: [VPSIENODE_FINALIZER],
      provisioningStartedAt: '2026-11-24T10:00:05Z',
      conditions: [
        {
          type: 'VPSReady',
          status: 'False',
          reason: 'Provisioning',
          lastTransitionTime: '2026-11-24T10:00:05Z',
          lastUpdateTime: '2026-11-24T10:04:55Z',
        },
      ],
    });
    const json = JSON.stringify(s);
    expect(json).not.toContain('managedFields');
    expect(json).not.toContain('"other"');
  });

  it('says plainly when nothing beside the id speaks of a VM', () => {
    const bare = toVPSieNodeSnapshot({
      metadata: {
        name: 'n',
        namespace: 'ns',
        annotations: { 'autoscaler.vpsie.com/creation-requested': 'false' },
      },
      spec: { vpsieInstanceID: 0 },
      status: { phase: 'Pending', conditions: [{ type: 'Error', status: 'True', lastUpdateTime: null }] },
    });
    expect(bare).toMatchObject({
      creationRequested: false,
      vpsieNodeIdentifier: null,
      vpsieGroupID: 0,
      resourceIdentifier: null,
      ipAddress: null,
      hostname: null,
      vpsieStatus: null,
      finalizers: [],
      // Go writes a zero metav1.Time as null: absent, not "null"
      conditions: [{ type: 'Error', status: 'True' }],
    });
  });
});

describe('findRegisteredNode (runbook step 5)', () => {
  const target = registrationTargetOf(
    toVPSieNodeSnapshot({
      metadata: { name: 'ng-a-7x2k', namespace: 'kube-system' },
      spec: { ipAddress: '203.0.113.20', ipv6Address: '2001:db8::20', nodeName: 'wanted-name' },
      status: { hostname: 'ng-a-7x2k-ab12' },
    }),
  );
  const node = (
    name: string,
    opts: { addresses?: [string, string][]; vpsienode?: string; created?: string } = {},
  ) => ({
    metadata: {
      name,
      uid: `uid-${name}`,
      creationTimestamp: opts.created ?? '2026-11-24T10:00:00Z',
      labels: opts.vpsienode ? { 'autoscaler.vpsie.com/vpsienode': opts.vpsienode } : {},
    },
    status: { addresses: (opts.addresses ?? []).map(([type, address]) => ({ type, address })) },
  });
  const found = (nodes: unknown[]) => {
    const r = findRegisteredNode(target, nodes);
    return r && { matchedBy: r.matchedBy, name: r.node.name };
  };

  it('builds the target from the snapshot: IPv4 and IPv6, node name and hostname', () => {
    expect(target).toEqual({
      vpsieNode: 'ng-a-7x2k',
      ipAddresses: ['203.0.113.20', '2001:db8::20'],
      nodeNames: ['wanted-name', 'ng-a-7x2k-ab12'],
    });
  });

  it('matches by InternalIP or ExternalIP first, then by label, then by name or Hostname address', () => {
    const byName = node('wanted-name');
    const byHostname = node('other', { addresses: [['Hostname', 'ng-a-7x2k-ab12']] });
    const byLabel = node('labelled', { vpsienode: 'ng-a-7x2k' });
    const byInternal = node('internal', { addresses: [['InternalIP', '203.0.113.20']] });
    const byExternal = node('external', { addresses: [['ExternalIP', '2001:db8::20']] });
    expect(found([byName, byLabel, byInternal])).toEqual({ matchedBy: 'ip', name: 'internal' });
    expect(found([byName, byExternal])).toEqual({ matchedBy: 'ip', name: 'external' });
    expect(found([byName, byLabel])).toEqual({ matchedBy: 'label', name: 'labelled' });
    expect(found([byName])).toEqual({ matchedBy: 'name', name: 'wanted-name' });
    expect(found([byHostname])).toEqual({ matchedBy: 'name', name: 'other' });
    // the Node's own name before a Hostname address, whatever the order
    expect(found([byHostname, byName])).toEqual({ matchedBy: 'name', name: 'wanted-name' });
    // the IP as a Hostname address, or a label for another VPSieNode, is no match
    const lookalikes = [
      node('h', { addresses: [['Hostname', '203.0.113.20']] }),
      node('l', { vpsienode: 'ng-a-7x2k-2' }),
    ];
    expect(found(lookalikes)).toBeNull();
    expect(found([])).toBeNull();
  });

  it('among Nodes with the same IP prefers the one that also matches otherwise, then the newest', () => {
    const ip: [string, string][] = [['InternalIP', '203.0.113.20']];
    const stale = node('stale', { addresses: ip, created: '2026-11-20T00:00:00Z' });
    const fresh = node('fresh', { addresses: ip, created: '2026-11-24T10:05:00Z' });
    const labelled = node('labelled', {
      addresses: ip,
      vpsienode: 'ng-a-7x2k',
      created: '2026-11-01T00:00:00Z',
    });
    expect(found([stale, fresh])).toEqual({ matchedBy: 'ip', name: 'fresh' });
    expect(found([stale, labelled, fresh])).toEqual({ matchedBy: 'ip', name: 'labelled' });
  });

  it("never takes a Node the controller labelled for another VPSieNode, even with the VM's IP", () => {
    const ip: [string, string][] = [['InternalIP', '203.0.113.20']];
    const others = node('others', { addresses: ip, vpsienode: 'ng-b-9q1z' });
    expect(found([others])).toBeNull();
    expect(found([others, node('wanted-name')])).toEqual({ matchedBy: 'name', name: 'wanted-name' });
  });

  it('with no address or name known, only the label can match', () => {
    const t = { vpsieNode: 'ng-a-7x2k', ipAddresses: [], nodeNames: [] };
    expect(findRegisteredNode(t, [node('')])).toBeNull();
    expect(findRegisteredNode(t, [node('x', { vpsienode: 'ng-a-7x2k' })])?.matchedBy).toBe('label');
  });
});

describe('noControllerPodsNote', () => {
  it('says what was looked for, not what it means', () => {
    expect(noControllerPodsNote({ namespace: 'kube-system', labelSelector: 'app=vpsie-autoscaler' })).toBe(
      'no pods match app=vpsie-autoscaler in kube-system',
    );
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
