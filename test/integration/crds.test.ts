/**
 * deploy/crds against the upstream CRDs, field for field. The expected lists below are derived from the
 * controller's API types (vpsieinc/vpsie-k8s-autoscaler, pkg/apis/autoscaler/v1alpha1/{vpsienode,nodegroup}_types.go,
 * as controller-gen renders them: Go int → integer without format, int32/int64 → that format, metav1.Time →
 * date-time, fields without omitempty and not marked optional → required, kubebuilder markers → minimum, maximum,
 * minItems, default, pattern). The CRDs are read back from the apiserver that serves them, and the apiserver
 * then proves that it refuses what the real one would.
 */
import { randomUUID } from 'node:crypto';
import { controlPlaneFromEnv, kubeRequest, type KubeRequestOptions } from '../support/control-plane';
import { NODEGROUP_REQUIRED_SPEC, VPSIENODE_REQUIRED_SPEC } from '../support/kube';

const GROUP = 'autoscaler.vpsie.com';
const GV = `/apis/${GROUP}/v1alpha1`;
const NS = `crds-${randomUUID().slice(0, 6)}`;

const cp = (() => {
  const found = controlPlaneFromEnv();
  if (!found) throw new Error('KUBE_TEST_SERVER is unset: run the tests through jest');
  return found;
})();
const admin = (method: string, path: string, opts?: KubeRequestOptions) =>
  kubeRequest(cp, cp.adminToken, method, path, opts);

/** +kubebuilder:validation:Pattern of KubernetesVersion in both types: semver with a leading v. */
const SEMVER =
  String.raw`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
  String.raw`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
  String.raw`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`;

const CONDITION = {
  '': 'object required=status,type',
  '.type': 'string',
  '.status': 'string',
  '.lastTransitionTime': 'string date-time',
  '.lastUpdateTime': 'string date-time',
  '.reason': 'string',
  '.message': 'string',
};
const under = (prefix: string, fields: Record<string, string>) =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [`${prefix}${k}`, v]));
const ROOT = { '': 'object', apiVersion: 'string', kind: 'string', metadata: 'object' };

/** Every schema node of VPSieNode: path → type, format, bounds, default, pattern, required. */
const VPSIENODE_FIELDS: Record<string, string> = {
  ...ROOT,
  spec: 'object required=datacenterID,instanceType,kubernetesVersion,nodeGroupName,project,resourceIdentifier,vpsieInstanceID',
  'spec.vpsieInstanceID': 'integer',
  'spec.instanceType': 'string',
  'spec.nodeGroupName': 'string',
  'spec.datacenterID': 'string',
  'spec.resourceIdentifier': 'string',
  'spec.project': 'string',
  'spec.osImageID': 'string',
  'spec.kubernetesVersion': `string pattern=${SEMVER}`,
  'spec.sshKeyIDs': 'array',
  'spec.sshKeyIDs[]': 'string',
  'spec.nodeName': 'string',
  'spec.ipAddress': 'string',
  'spec.ipv6Address': 'string',
  'spec.vpsieGroupID': 'integer',
  'spec.vpsieNodeIdentifier': 'string',
  status: 'object required=phase',
  'status.phase': 'string',
  'status.nodeName': 'string',
  'status.vpsieStatus': 'string',
  'status.hostname': 'string',
  'status.resources': 'object required=cpu,diskGB,memoryMB',
  'status.resources.cpu': 'integer',
  'status.resources.memoryMB': 'integer',
  'status.resources.diskGB': 'integer',
  'status.resources.bandwidthGB': 'integer',
  'status.createdAt': 'string date-time',
  'status.provisionedAt': 'string date-time',
  'status.joinedAt': 'string date-time',
  'status.readyAt': 'string date-time',
  'status.terminatingAt': 'string date-time',
  'status.deletedAt': 'string date-time',
  'status.conditions': 'array',
  ...under('status.conditions[]', CONDITION),
  'status.lastError': 'string',
  'status.observedGeneration': 'integer int64',
};

const int32 = (extra = '') => `integer int32${extra}`;
const percent = (d: number) => int32(` min=0 max=100 default=${d}`);

/** Every schema node of NodeGroup. */
const NODEGROUP_FIELDS: Record<string, string> = {
  ...ROOT,
  spec: 'object required=datacenterID,kubernetesVersion,maxNodes,minNodes,offeringIDs,project,resourceIdentifier',
  'spec.minNodes': int32(' min=0'),
  'spec.maxNodes': int32(' min=1'),
  'spec.datacenterID': 'string',
  'spec.resourceIdentifier': 'string',
  'spec.project': 'string',
  'spec.offeringIDs': 'array minItems=1',
  'spec.offeringIDs[]': 'string',
  'spec.osImageID': 'string',
  'spec.kubernetesVersion': `string pattern=${SEMVER}`,
  'spec.preferredInstanceType': 'string',
  'spec.allowMixedInstances': 'boolean default=true',
  'spec.labels': 'object',
  'spec.labels{}': 'string',
  // []corev1.Taint
  'spec.taints': 'array',
  'spec.taints[]': 'object required=effect,key',
  'spec.taints[].key': 'string',
  'spec.taints[].value': 'string',
  'spec.taints[].effect': 'string',
  'spec.taints[].timeAdded': 'string date-time',
  'spec.scaleUpPolicy': 'object',
  'spec.scaleUpPolicy.stabilizationWindowSeconds': int32(' min=0 default=60'),
  'spec.scaleUpPolicy.cpuThreshold': percent(80),
  'spec.scaleUpPolicy.memoryThreshold': percent(80),
  'spec.scaleUpPolicy.enabled': 'boolean default=true',
  'spec.scaleDownPolicy': 'object',
  'spec.scaleDownPolicy.stabilizationWindowSeconds': int32(' min=0 default=600'),
  'spec.scaleDownPolicy.cpuThreshold': percent(50),
  'spec.scaleDownPolicy.memoryThreshold': percent(50),
  'spec.scaleDownPolicy.enabled': 'boolean default=true',
  'spec.scaleDownPolicy.cooldownSeconds': int32(' min=0 default=600'),
  'spec.sshKeyIDs': 'array',
  'spec.sshKeyIDs[]': 'string',
  'spec.tags': 'array',
  'spec.tags[]': 'string',
  'spec.notes': 'string',
  'spec.kubeSizeID': 'integer min=1',
  'spec.spotConfig': 'object',
  'spec.spotConfig.enabled': 'boolean default=false',
  'spec.spotConfig.maxSpotPercentage': percent(80),
  'spec.spotConfig.fallbackToOnDemand': 'boolean default=true',
  'spec.spotConfig.interruptionGracePeriod': 'string default="120s"',
  'spec.spotConfig.allowedInterruptionRate': percent(20),
  'spec.multiRegion': 'object',
  'spec.multiRegion.enabled': 'boolean default=false',
  'spec.multiRegion.datacenterIDs': 'array',
  'spec.multiRegion.datacenterIDs[]': 'string',
  'spec.multiRegion.distributionStrategy': 'string default="balanced"',
  'spec.multiRegion.weightedDistribution': 'object',
  'spec.multiRegion.weightedDistribution{}': 'integer int32',
  'spec.multiRegion.primaryDatacenter': 'string',
  'spec.multiRegion.minNodesPerRegion': int32(' min=0 default=1'),
  'spec.costOptimization': 'object',
  'spec.costOptimization.enabled': 'boolean default=true',
  'spec.costOptimization.strategy': 'string default="auto"',
  'spec.costOptimization.optimizationInterval': 'string default="24h"',
  'spec.costOptimization.minMonthlySavings': 'number default=10',
  'spec.costOptimization.maxPerformanceImpact': percent(5),
  'spec.costOptimization.requireApproval': 'boolean default=false',
  status: 'object required=currentNodes,desiredNodes,readyNodes',
  'status.currentNodes': int32(),
  'status.desiredNodes': int32(),
  'status.readyNodes': int32(),
  'status.vpsieGroupID': 'integer',
  'status.nodes': 'array',
  'status.nodes[]': 'object required=instanceType,nodeName,status,vpsID',
  'status.nodes[].nodeName': 'string',
  'status.nodes[].vpsID': 'integer',
  'status.nodes[].instanceType': 'string',
  'status.nodes[].status': 'string',
  'status.nodes[].createdAt': 'string date-time',
  'status.nodes[].readyAt': 'string date-time',
  'status.nodes[].ipAddress': 'string',
  'status.conditions': 'array',
  ...under('status.conditions[]', CONDITION),
  'status.lastScaleTime': 'string date-time',
  'status.lastScaleUpTime': 'string date-time',
  'status.lastScaleDownTime': 'string date-time',
  'status.observedGeneration': 'integer int64',
};

interface Schema {
  type?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  default?: unknown;
  pattern?: string;
  required?: string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema;
  [other: string]: unknown;
}

/** The same notation, read from a served schema. Keys it does not know make the comparison fail. */
function flatten(schema: Schema, path = '', out: Record<string, string> = {}): Record<string, string> {
  const known = new Set([
    'type',
    'format',
    'minimum',
    'maximum',
    'minItems',
    'default',
    'pattern',
    'required',
    'properties',
    'items',
    'additionalProperties',
    'description',
  ]);
  const parts: string[] = [schema.type ?? '(no type)'];
  if (schema.format) parts.push(schema.format);
  if (schema.minimum !== undefined) parts.push(`min=${schema.minimum}`);
  if (schema.maximum !== undefined) parts.push(`max=${schema.maximum}`);
  if (schema.minItems !== undefined) parts.push(`minItems=${schema.minItems}`);
  if (schema.default !== undefined) parts.push(`default=${JSON.stringify(schema.default)}`);
  if (schema.pattern !== undefined) parts.push(`pattern=${schema.pattern}`);
  if (schema.required) parts.push(`required=${[...schema.required].sort().join(',')}`);
  for (const k of Object.keys(schema)) if (!known.has(k)) parts.push(`unexpected ${k}`);
  out[path] = parts.join(' ');
  const dot = path === '' ? '' : `${path}.`;
  for (const [k, v] of Object.entries(schema.properties ?? {})) flatten(v, `${dot}${k}`, out);
  if (schema.items) flatten(schema.items, `${path}[]`, out);
  if (schema.additionalProperties) flatten(schema.additionalProperties, `${path}{}`, out);
  return out;
}

async function servedCrd(plural: string) {
  const res = await admin(
    'GET',
    `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.${GROUP}`,
  );
  expect(res.status).toBe(200);
  return res.json.spec as {
    scope: string;
    names: Record<string, unknown>;
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: Record<string, unknown>;
      additionalPrinterColumns?: { name: string; type: string; jsonPath: string; priority?: number }[];
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

const columns = (crd: Awaited<ReturnType<typeof servedCrd>>) =>
  (crd.versions[0].additionalPrinterColumns ?? []).map(
    (c) => `${c.name} ${c.type} ${c.jsonPath}${c.priority ? ` priority=${c.priority}` : ''}`,
  );

beforeAll(async () => {
  const res = await admin('POST', '/api/v1/namespaces', {
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
  });
  expect(res.status).toBe(201);
});

afterAll(async () => {
  for (const plural of ['vpsienodes', 'nodegroups'])
    await admin('DELETE', `${GV}/namespaces/${NS}/${plural}`);
  await admin('DELETE', `/api/v1/namespaces/${NS}`);
});

describe('the CRDs match the upstream types field for field', () => {
  it('VPSieNode: names, scope, subresource, printer columns and every schema field', async () => {
    const crd = await servedCrd('vpsienodes');
    expect(crd.scope).toBe('Namespaced');
    expect(crd.names).toEqual({
      kind: 'VPSieNode',
      listKind: 'VPSieNodeList',
      plural: 'vpsienodes',
      singular: 'vpsienode',
      shortNames: ['vn', 'vns'],
    });
    expect(crd.versions.map((v) => [v.name, v.served, v.storage, v.subresources])).toEqual([
      ['v1alpha1', true, true, { status: {} }],
    ]);
    expect(columns(crd)).toEqual([
      'VPS ID integer .spec.vpsieInstanceID',
      'Node string .status.nodeName',
      'Phase string .status.phase',
      'Instance Type string .spec.instanceType',
      'NodeGroup string .spec.nodeGroupName',
      'Age date .metadata.creationTimestamp',
    ]);
    expect(flatten(crd.versions[0].schema.openAPIV3Schema)).toEqual(VPSIENODE_FIELDS);
  });

  it('NodeGroup: names, scope, subresource, printer columns and every schema field', async () => {
    const crd = await servedCrd('nodegroups');
    expect(crd.scope).toBe('Namespaced');
    expect(crd.names).toEqual({
      kind: 'NodeGroup',
      listKind: 'NodeGroupList',
      plural: 'nodegroups',
      singular: 'nodegroup',
      shortNames: ['ng', 'ngs'],
    });
    expect(crd.versions.map((v) => [v.name, v.served, v.storage, v.subresources])).toEqual([
      ['v1alpha1', true, true, { status: {} }],
    ]);
    expect(columns(crd)).toEqual([
      'Min integer .spec.minNodes',
      'Max integer .spec.maxNodes',
      'Desired integer .status.desiredNodes',
      'Current integer .status.currentNodes',
      'Ready integer .status.readyNodes',
      'Age date .metadata.creationTimestamp',
    ]);
    expect(flatten(crd.versions[0].schema.openAPIV3Schema)).toEqual(NODEGROUP_FIELDS);
  });

  it("the test fixtures' required fields are exactly the CRDs' required lists", () => {
    const required = (fields: Record<string, string>) => /required=(\S+)/.exec(fields.spec)?.[1].split(',');
    expect(Object.keys(VPSIENODE_REQUIRED_SPEC).sort()).toEqual(required(VPSIENODE_FIELDS));
    expect(Object.keys(NODEGROUP_REQUIRED_SPEC).sort()).toEqual(required(NODEGROUP_FIELDS));
  });
});

describe('the apiserver refuses what the real one would', () => {
  let seq = 0;
  const object = (kind: 'VPSieNode' | 'NodeGroup', spec: Record<string, unknown>) => ({
    apiVersion: `${GROUP}/v1alpha1`,
    kind,
    metadata: { name: `${kind.toLowerCase()}-${++seq}`, namespace: NS },
    spec,
  });
  const create = (plural: string, body: ReturnType<typeof object>) =>
    admin('POST', `${GV}/namespaces/${NS}/${plural}`, { body });
  /** The fields the apiserver names in a 422, with the reason of each. */
  const causes = (res: { status: number; json: unknown }) => {
    expect(res.status).toBe(422);
    const details = (res.json as { details?: { causes?: { field: string; message: string }[] } }).details;
    return (details?.causes ?? []).map(
      (c) => `${c.field}: ${c.message.replace(/^Invalid value: .*?: /, '')}`,
    );
  };
  const without = (spec: Readonly<Record<string, unknown>>, field: string) =>
    Object.fromEntries(Object.entries(spec).filter(([k]) => k !== field));

  it.each(Object.keys(VPSIENODE_REQUIRED_SPEC))('a VPSieNode without spec.%s is refused', async (field) => {
    const res = await create('vpsienodes', object('VPSieNode', without(VPSIENODE_REQUIRED_SPEC, field)));
    expect(causes(res)).toEqual([`spec.${field}: Required value`]);
  });

  it.each(Object.keys(NODEGROUP_REQUIRED_SPEC))('a NodeGroup without spec.%s is refused', async (field) => {
    const res = await create('nodegroups', object('NodeGroup', without(NODEGROUP_REQUIRED_SPEC, field)));
    expect(causes(res)).toEqual([`spec.${field}: Required value`]);
  });

  it('bounds, minItems, types and the version pattern are enforced', async () => {
    const ng = (extra: Record<string, unknown>) =>
      object('NodeGroup', { ...NODEGROUP_REQUIRED_SPEC, ...extra });
    expect(causes(await create('nodegroups', ng({ offeringIDs: [] })))).toEqual([
      'spec.offeringIDs: spec.offeringIDs in body should have at least 1 items',
    ]);
    expect(causes(await create('nodegroups', ng({ minNodes: -1, maxNodes: 0, kubeSizeID: 0 })))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^spec\.minNodes: .*greater than or equal to 0/),
        expect.stringMatching(/^spec\.maxNodes: .*greater than or equal to 1/),
        expect.stringMatching(/^spec\.kubeSizeID: .*greater than or equal to 1/),
      ]),
    );
    expect(causes(await create('nodegroups', ng({ scaleUpPolicy: { cpuThreshold: 101 } })))).toEqual([
      expect.stringMatching(/^spec\.scaleUpPolicy\.cpuThreshold: .*less than or equal to 100/),
    ]);
    for (const bad of ['1.30.2', 'v1.30', 'v01.30.2'])
      expect(causes(await create('nodegroups', ng({ kubernetesVersion: bad })))).toEqual([
        expect.stringMatching(/^spec\.kubernetesVersion: .*should match/),
      ]);
    const vn = object('VPSieNode', { ...VPSIENODE_REQUIRED_SPEC, vpsieInstanceID: '4242', sshKeyIDs: 'k-1' });
    expect(causes(await create('vpsienodes', vn)).sort()).toEqual([
      expect.stringMatching(/^spec\.sshKeyIDs: .*must be of type array/),
      expect.stringMatching(/^spec\.vpsieInstanceID: .*must be of type integer/),
    ]);
  });

  it('status needs phase (VPSieNode) and the three counts (NodeGroup); conditions and resources their own', async () => {
    const vnRes = await create('vpsienodes', object('VPSieNode', { ...VPSIENODE_REQUIRED_SPEC }));
    expect(vnRes.status).toBe(201);
    const vn = vnRes.json as { metadata: { name: string } };
    const vnStatus = (status: Record<string, unknown>) =>
      admin('PUT', `${GV}/namespaces/${NS}/vpsienodes/${vn.metadata.name}/status`, {
        body: { ...vn, status },
      });
    expect(causes(await vnStatus({ nodeName: 'n' }))).toEqual(['status.phase: Required value']);
    expect(
      causes(
        await vnStatus({
          phase: 'Ready',
          resources: { bandwidthGB: 1 },
          conditions: [{ reason: 'Ready' }],
        }),
      ).sort(),
    ).toEqual([
      'status.conditions[0].status: Required value',
      'status.conditions[0].type: Required value',
      'status.resources.cpu: Required value',
      'status.resources.diskGB: Required value',
      'status.resources.memoryMB: Required value',
    ]);
    expect((await vnStatus({ phase: 'Provisioning' })).status).toBe(200);

    const ngRes = await create('nodegroups', object('NodeGroup', { ...NODEGROUP_REQUIRED_SPEC }));
    expect(ngRes.status).toBe(201);
    const ng = ngRes.json as { metadata: { name: string } };
    const ngStatus = (status: Record<string, unknown>) =>
      admin('PUT', `${GV}/namespaces/${NS}/nodegroups/${ng.metadata.name}/status`, {
        body: { ...ng, status },
      });
    expect(causes(await ngStatus({ vpsieGroupID: 7 })).sort()).toEqual([
      'status.currentNodes: Required value',
      'status.desiredNodes: Required value',
      'status.readyNodes: Required value',
    ]);
    expect(
      causes(
        await ngStatus({ currentNodes: 1, desiredNodes: 1, readyNodes: 0, nodes: [{ nodeName: 'n' }] }),
      ).sort(),
    ).toEqual([
      'status.nodes[0].instanceType: Required value',
      'status.nodes[0].status: Required value',
      'status.nodes[0].vpsID: Required value',
    ]);
  });

  it('keeps every upstream field (nothing pruned) and fills the defaults the controller relies on', async () => {
    const full = {
      ...NODEGROUP_REQUIRED_SPEC,
      osImageID: 'img-1',
      kubernetesVersion: 'v1.31.0-rc.1+vpsie.2',
      preferredInstanceType: 'offering-1',
      allowMixedInstances: false,
      labels: { pool: 'a' },
      taints: [{ key: 'dedicated', value: 'a', effect: 'NoSchedule', timeAdded: '2026-01-01T00:00:00Z' }],
      scaleUpPolicy: { cpuThreshold: 70 },
      sshKeyIDs: ['k-1'],
      tags: ['team-a'],
      notes: 'pool a',
      kubeSizeID: 3,
      spotConfig: { enabled: true },
      multiRegion: {
        datacenterIDs: ['dc-1', 'dc-2'],
        weightedDistribution: { 'dc-1': 2 },
        primaryDatacenter: 'dc-1',
      },
      costOptimization: { minMonthlySavings: 12.5 },
    };
    const res = await create('nodegroups', object('NodeGroup', full));
    expect(res.status).toBe(201);
    expect(res.json.spec).toEqual({
      ...full,
      scaleUpPolicy: { cpuThreshold: 70, memoryThreshold: 80, stabilizationWindowSeconds: 60, enabled: true },
      spotConfig: {
        enabled: true,
        maxSpotPercentage: 80,
        fallbackToOnDemand: true,
        interruptionGracePeriod: '120s',
        allowedInterruptionRate: 20,
      },
      multiRegion: {
        ...full.multiRegion,
        enabled: false,
        distributionStrategy: 'balanced',
        minNodesPerRegion: 1,
      },
      costOptimization: {
        minMonthlySavings: 12.5,
        enabled: true,
        strategy: 'auto',
        optimizationInterval: '24h',
        maxPerformanceImpact: 5,
        requireApproval: false,
      },
    });
    const minimal = await create('nodegroups', object('NodeGroup', { ...NODEGROUP_REQUIRED_SPEC }));
    expect(minimal.json.spec).toEqual({ ...NODEGROUP_REQUIRED_SPEC, allowMixedInstances: true });

    const vnSpec = {
      ...VPSIENODE_REQUIRED_SPEC,
      vpsieInstanceID: 4242,
      osImageID: 'img-1',
      sshKeyIDs: ['k-1'],
      nodeName: 'node-1',
      ipAddress: '203.0.113.20',
      ipv6Address: '2001:db8::20',
      vpsieGroupID: 7,
      vpsieNodeIdentifier: '5f0c7a4e-node',
    };
    const vn = await create('vpsienodes', object('VPSieNode', { ...vnSpec, unknownField: 'pruned' }));
    expect(vn.status).toBe(201);
    expect(vn.json.spec).toEqual(vnSpec);
  });
});
