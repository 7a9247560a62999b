/**
 * Objects as a real cluster has them, for tests: specs the CRDs accept and this simulated cluster's VPSie
 * knows, NodeGroups in the state in which upstream's controller can work on them, orphaned machines.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import type { SimK8sNode, SimVM, VPSieSimulator } from '../vpsie-simulator';
import { crd } from './context';
import type { Kubelets } from './kubelet';
import { API_VERSION, LABEL_DATACENTER, LABEL_MANAGED, LABEL_NODEGROUP, LABEL_VPSIENODE } from './names';
import type { NodeGroupObj, NodeGroupSpec, VPSieNodeSpec } from './types';
import { isConflict, metaTime, rand } from './util';
import type { World } from './world';

export interface ObjectsDeps {
  custom: CustomObjectsApi;
  vpsie: VPSieSimulator;
  kubelets: Kubelets;
  world: World;
  namespace: string;
  cluster: () => string;
  group: () => number;
  version: () => string;
}

export class Objects {
  constructor(private readonly d: ObjectsDeps) {}

  vpsieNodeSpec(overrides: Partial<VPSieNodeSpec> = {}): VPSieNodeSpec {
    return {
      vpsieInstanceID: 0,
      instanceType: '101',
      nodeGroupName: 'standalone',
      datacenterID: '1',
      resourceIdentifier: this.d.cluster(),
      project: 'project-1',
      kubernetesVersion: this.d.version(),
      vpsieGroupID: this.d.group(),
      ...overrides,
    };
  }

  nodeGroupSpec(overrides: Partial<NodeGroupSpec> = {}): NodeGroupSpec {
    return {
      minNodes: 1,
      maxNodes: 3,
      datacenterID: '1',
      resourceIdentifier: this.d.cluster(),
      project: 'project-1',
      offeringIDs: ['101'],
      kubernetesVersion: this.d.version(),
      kubeSizeID: 1,
      ...overrides,
    };
  }

  async createNodeGroup(
    name: string,
    spec: Partial<NodeGroupSpec>,
    opts: { managed?: boolean; labels?: Record<string, string>; desiredNodes?: number | null },
  ): Promise<NodeGroupObj> {
    const full = this.nodeGroupSpec(spec);
    const cluster = this.d.vpsie.k8sCluster(full.resourceIdentifier);
    if (cluster && !cluster.groups.some((g) => g.name === name))
      this.d.vpsie.addK8sNodeGroup(cluster.identifier, { name });
    const labels = { ...(opts.managed === false ? {} : { [LABEL_MANAGED]: 'true' }), ...opts.labels };
    const created = (await this.d.custom.createNamespacedCustomObject({
      ...crd(this.d.namespace, 'nodegroups'),
      body: {
        apiVersion: API_VERSION,
        kind: 'NodeGroup',
        metadata: { name, namespace: this.d.namespace, labels },
        spec: full,
      },
    })) as NodeGroupObj;
    if (opts.desiredNodes === null) return created;
    return this.scaleNodeGroup(name, opts.desiredNodes ?? full.minNodes);
  }

  async scaleNodeGroup(name: string, desiredNodes: number): Promise<NodeGroupObj> {
    const target = { ...crd(this.d.namespace, 'nodegroups'), name };
    for (let attempt = 1; ; attempt++) {
      const ng = (await this.d.custom.getNamespacedCustomObject(target)) as NodeGroupObj;
      const s = ng.status ?? {};
      const status = {
        ...s,
        currentNodes: s.currentNodes ?? 0,
        desiredNodes,
        readyNodes: s.readyNodes ?? 0,
        lastScaleTime: metaTime(),
      };
      try {
        return (await this.d.custom.replaceNamespacedCustomObjectStatus({
          ...target,
          body: { ...ng, status },
        })) as NodeGroupObj;
      } catch (err) {
        if (!isConflict(err) || attempt >= 10) throw err;
      }
    }
  }

  async addOrphan(opts: {
    vpsieNodeName?: string;
    nodeGroup?: string;
    withNode?: boolean;
  }): Promise<{ machine: SimK8sNode; vm: SimVM | undefined }> {
    const nodeGroup = opts.nodeGroup ?? 'orphans';
    const name = opts.vpsieNodeName ?? `${nodeGroup}-${rand(8)}`;
    const machine = this.d.vpsie.addK8sNode(this.d.cluster(), {
      groupId: this.d.group(),
      hostname: name,
      inVmList: true,
    });
    this.d.world.adopt(machine.identifier, false);
    if (opts.withNode) {
      await this.d.kubelets.register(
        {
          hostname: machine.hostname,
          ip: machine.ip,
          identifier: machine.identifier,
          cpu: 2,
          ramMB: 4096,
          diskGB: 80,
        },
        this.d.version(),
        true,
        {
          [LABEL_MANAGED]: 'true',
          [LABEL_NODEGROUP]: nodeGroup,
          [LABEL_VPSIENODE]: name,
          [LABEL_DATACENTER]: '1',
        },
      );
    }
    return { machine, vm: machine.vmId ? this.d.vpsie.getVM(machine.vmId) : undefined };
  }
}
