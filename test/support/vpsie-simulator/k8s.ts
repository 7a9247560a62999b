/**
 * VPSie's managed Kubernetes, as the autoscaler uses it (`pkg/vpsie/client/client.go`, domain.md §8):
 *
 *   GET    /k8s/cluster/all                              {error:false, data:[cluster…], total}
 *   GET    /k8s/cluster/byId/:id                         {error:false, data:{…cluster, nodes:[master…, slave…]}}
 *   GET    /k8s/node/groups/byClusterId/:id              {error:false, data:[group…], total}
 *   POST   /k8s/cluster/byId/:id/add/slave/group/:gid    {error:false, data:{id:0, identifier}} | {data:true} |
 *                                                        {data:{id, identifier, hostname, status}} (see modes)
 *   DELETE /k8s/cluster/byId/:id/delete/slave            body {identifier}; {error:false, message}
 *
 * Unknown cluster, group or node: HTTP 404 with `{error:true, code:404, message}` (the real answer is not
 * recorded upstream; 404 is what the autoscaler treats as "gone"). A cluster with a worker limit answers a
 * create past it with HTTP 500 `{"error":true,"code":500,"message":"Worker nodes count exceeds the allowed
 * limit N"}`, the answer the autoscaler's tests record. Lists ignore `page`/`per_page` (the autoscaler sends
 * none) and carry `total`, the official SDK's list shape.
 *
 * A create is a {@link SlaveRequest} until the test completes it ({@link ManagedKubernetes.completeSlaveRequest}):
 * VPSie builds the machine asynchronously, and it may or may not show up in `GET /vm` (`inVmList`).
 */
import { randomUUID } from 'node:crypto';
import { apiError, capacityMessage, isRecord, timestamp, type Answer, type SimVM } from './wire';

export interface SimK8sCluster {
  identifier: string;
  name: string;
  groups: SimK8sNodeGroup[];
  /** Worker machines (the cluster's master is on the wire too, but not here). */
  nodes: SimK8sNode[];
}

export interface SimK8sNodeGroup {
  /** Numeric: what `VPSieNode.spec.vpsieGroupID` holds and `…/add/slave/group/{gid}` takes. */
  id: number;
  identifier: string;
  name: string;
}

export interface SimK8sNode {
  /** UUID: what `…/delete/slave` names. */
  identifier: string;
  hostname: string;
  ip: string | null;
  status: string;
  groupId: number;
  /** The VM in `GET /vm` that is this machine; 0 when it is not listed there. */
  vmId: number;
  createdOn: string;
}

export interface SlaveRequest {
  id: number;
  clusterIdentifier: string;
  groupId: number;
  /** The identifier the create answer carried ('' for `{data: true}`); the machine gets it when completed. */
  identifier: string;
  requestedAt: string;
}

export type AddSlaveMode = 'async-identifier' | 'async-true' | 'sync';

export interface CompleteOptions {
  hostname?: string;
  ip?: string | null;
  /** Also list the machine in `GET /vm` (as a SimVM with the same hostname and IP). Default false. */
  inVmList?: boolean;
  /** Default 'running'. */
  status?: string;
  createdOn?: string;
}

/** What the model needs of the VM side of the simulator. */
export interface VMHooks {
  addVM(partial: Partial<SimVM>): SimVM;
  updateVM(id: number, patch: Partial<Omit<SimVM, 'id'>>): SimVM;
  /** Out of band: no listeners. */
  dropVM(id: number): void;
  nextIp(): string;
  /** Runs a listener; its errors are recorded, never break the answer. */
  safely(fn: () => void): void;
}

interface ClusterState {
  identifier: string;
  name: string;
  groups: SimK8sNodeGroup[];
  nodes: SimK8sNode[];
  master: { identifier: string; hostname: string; ip: string };
  createdOn: string;
  workerLimit: number | null;
}

const KUBE_VERSION = '1.31.4';
const NODE_SIZE = { cpu: 2, ram: 4096, disk: 80 };

export class ManagedKubernetes {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly requests = new Map<number, SlaveRequest>();
  private readonly requestListeners = new Set<(req: SlaveRequest) => void>();
  private readonly deleteListeners = new Set<(clusterIdentifier: string, node: SimK8sNode) => void>();
  private mode: AddSlaveMode = 'async-identifier';
  private seq = { cluster: 1, group: 11, request: 1, node: 1 };

  constructor(private readonly vms: VMHooks) {}

  // ------------------------------------------------------------------------------------------------------
  // State
  // ------------------------------------------------------------------------------------------------------

  addCluster(p: { identifier?: string; name?: string; workerLimit?: number | null } = {}): SimK8sCluster {
    const identifier = p.identifier ?? randomUUID();
    if (this.clusters.has(identifier)) throw new Error(`VPSieSimulator: K8s cluster ${identifier} exists`);
    const name = p.name ?? `k8s-cluster-${this.seq.cluster++}`;
    this.clusters.set(identifier, {
      identifier,
      name,
      groups: [],
      nodes: [],
      master: { identifier: randomUUID(), hostname: `${name}-master-1`, ip: this.vms.nextIp() },
      createdOn: timestamp(),
      workerLimit: p.workerLimit ?? null,
    });
    return this.view(identifier) as SimK8sCluster;
  }

  addGroup(
    clusterIdentifier: string,
    p: { id?: number; identifier?: string; name?: string } = {},
  ): SimK8sNodeGroup {
    const cluster = this.must(clusterIdentifier);
    const id = p.id ?? this.seq.group++;
    if (id >= this.seq.group) this.seq.group = id + 1;
    for (const c of this.clusters.values()) {
      if (c.groups.some((g) => g.id === id)) throw new Error(`VPSieSimulator: node group ${id} exists`);
    }
    const group = { id, identifier: p.identifier ?? randomUUID(), name: p.name ?? `group-${id}` };
    cluster.groups.push(group);
    return { ...group };
  }

  /** Caps the cluster's workers (machines plus pending creates); null lifts the cap. */
  setWorkerLimit(clusterIdentifier: string, limit: number | null): void {
    this.must(clusterIdentifier).workerLimit = limit;
  }

  view(identifier: string): SimK8sCluster | undefined {
    const c = this.clusters.get(identifier);
    if (!c) return undefined;
    return structuredClone({ identifier: c.identifier, name: c.name, groups: c.groups, nodes: c.nodes });
  }

  slaveRequests(clusterIdentifier?: string): SlaveRequest[] {
    return [...this.requests.values()]
      .filter((r) => clusterIdentifier === undefined || r.clusterIdentifier === clusterIdentifier)
      .map((r) => ({ ...r }));
  }

  onSlaveRequested(listener: (req: SlaveRequest) => void): () => void {
    this.requestListeners.add(listener);
    return () => this.requestListeners.delete(listener);
  }

  onNodeDeleted(listener: (clusterIdentifier: string, node: SimK8sNode) => void): () => void {
    this.deleteListeners.add(listener);
    return () => this.deleteListeners.delete(listener);
  }

  setAddSlaveMode(mode: AddSlaveMode): void {
    if (mode !== 'async-identifier' && mode !== 'async-true' && mode !== 'sync') {
      throw new Error(`VPSieSimulator.setAddSlaveAnswer: unknown mode ${String(mode)}`);
    }
    this.mode = mode;
  }

  /** VPSie finished building the machine of a request: it is in the cluster's nodes (and in GET /vm if asked). */
  completeSlaveRequest(requestId: number, p: CompleteOptions = {}): SimK8sNode {
    const req = this.requests.get(requestId);
    if (!req) throw new Error(`VPSieSimulator: no pending slave request ${requestId}`);
    this.requests.delete(requestId);
    const cluster = this.must(req.clusterIdentifier);
    return this.createNode(cluster, req.groupId, req.identifier || randomUUID(), p);
  }

  addNode(clusterIdentifier: string, p: CompleteOptions & { groupId: number }): SimK8sNode {
    const cluster = this.must(clusterIdentifier);
    if (!cluster.groups.some((g) => g.id === p.groupId)) {
      throw new Error(`VPSieSimulator: cluster ${clusterIdentifier} has no node group ${p.groupId}`);
    }
    return this.createNode(cluster, p.groupId, randomUUID(), p);
  }

  /** Changes a machine (its VM in GET /vm follows). */
  updateNode(
    clusterIdentifier: string,
    identifier: string,
    patch: { status?: string; hostname?: string; ip?: string | null },
  ): SimK8sNode {
    const node = this.must(clusterIdentifier).nodes.find((n) => n.identifier === identifier);
    if (!node) throw new Error(`VPSieSimulator: cluster ${clusterIdentifier} has no node ${identifier}`);
    Object.assign(node, patch);
    if (node.vmId) {
      this.vms.updateVM(node.vmId, {
        ...(patch.status !== undefined ? { status: patch.status } : {}),
        ...(patch.hostname !== undefined ? { hostname: patch.hostname, name: patch.hostname } : {}),
        ...(patch.ip !== undefined ? { default_ip: patch.ip } : {}),
      });
    }
    return { ...node };
  }

  /** Removes a machine out of band (no listeners), and its VM. */
  removeNode(clusterIdentifier: string, identifier: string): boolean {
    const node = this.take(clusterIdentifier, identifier);
    if (node?.vmId) this.vms.dropVM(node.vmId);
    return node !== undefined;
  }

  /** The VM side saw a VM change: a machine linked to it follows. */
  vmChanged(vm: SimVM): void {
    const node = this.nodeOfVM(vm.id)?.node;
    if (node) Object.assign(node, { status: vm.status, hostname: vm.hostname, ip: vm.default_ip });
  }

  /** The VM side removed a VM: the machine it was is gone from its cluster too. `deleted`: through the API. */
  vmRemoved(vmId: number, deleted: boolean): void {
    const found = this.nodeOfVM(vmId);
    if (!found) return;
    const node = this.take(found.cluster.identifier, found.node.identifier) as SimK8sNode;
    if (deleted) this.fireDeleted(found.cluster.identifier, node);
  }

  // ------------------------------------------------------------------------------------------------------
  // HTTP
  // ------------------------------------------------------------------------------------------------------

  /** The answer to a `/k8s/…` request (segments after `k8s`). */
  route(method: string, segs: string[], body: unknown): Answer {
    const only = (allowed: string, handler: () => Answer): Answer =>
      method === allowed ? handler() : apiError(405, `${method} is not allowed here`);
    const [a, b, id, ...rest] = segs;
    if (a === 'cluster' && b === 'all' && id === undefined) {
      return only('GET', () => this.list([...this.clusters.values()].map((c) => this.clusterItem(c))));
    }
    if (a === 'node' && b === 'groups' && id === 'byClusterId' && rest.length === 1) {
      return only('GET', () => {
        const c = this.clusters.get(rest[0]);
        return c ? this.list(c.groups.map((g) => this.groupItem(c, g))) : this.noCluster(rest[0]);
      });
    }
    if (a !== 'cluster' || b !== 'byId' || id === undefined) return apiError(404, `No route for ${method}`);
    const cluster = this.clusters.get(id);
    if (rest.length === 0) {
      return only('GET', () => (cluster ? this.ok(this.clusterInfo(cluster)) : this.noCluster(id)));
    }
    if (rest.length === 4 && rest[0] === 'add' && rest[1] === 'slave' && rest[2] === 'group') {
      return only('POST', () => (cluster ? this.addSlave(cluster, rest[3]) : this.noCluster(id)));
    }
    if (rest.length === 2 && rest[0] === 'delete' && rest[1] === 'slave') {
      return only('DELETE', () => (cluster ? this.deleteSlave(cluster, body) : this.noCluster(id)));
    }
    return apiError(404, `No route for ${method}`);
  }

  private addSlave(cluster: ClusterState, rawGroupId: string): Answer {
    const groupId = /^\d+$/.test(rawGroupId) ? Number(rawGroupId) : NaN;
    const group = cluster.groups.find((g) => g.id === groupId);
    if (!group) return apiError(404, `Node group ${rawGroupId} not found in cluster ${cluster.identifier}`);
    const pending = this.slaveRequests(cluster.identifier).length;
    if (cluster.workerLimit !== null && cluster.nodes.length + pending >= cluster.workerLimit) {
      return {
        status: 500,
        body: { error: true, code: 500, message: capacityMessage(cluster.workerLimit), type: false },
      };
    }
    if (this.mode === 'sync') {
      const node = this.createNode(cluster, group.id, randomUUID(), { inVmList: true });
      const data = {
        id: node.vmId,
        identifier: node.identifier,
        hostname: node.hostname,
        status: node.status,
      };
      return this.ok(data, 'Node added');
    }
    const req: SlaveRequest = {
      id: this.seq.request++,
      clusterIdentifier: cluster.identifier,
      groupId: group.id,
      identifier: this.mode === 'async-identifier' ? randomUUID() : '',
      requestedAt: timestamp(),
    };
    this.requests.set(req.id, req);
    for (const l of this.requestListeners) this.vms.safely(() => l({ ...req }));
    return this.ok(
      this.mode === 'async-true' ? true : { id: 0, identifier: req.identifier },
      'Node is being added',
    );
  }

  private deleteSlave(cluster: ClusterState, body: unknown): Answer {
    const identifier = isRecord(body) ? body.identifier : undefined;
    if (typeof identifier !== 'string' || identifier === '') return apiError(400, 'identifier is required');
    if (identifier === cluster.master.identifier) return apiError(400, 'The master node cannot be deleted');
    const node = this.take(cluster.identifier, identifier);
    if (!node) return apiError(404, `Node ${identifier} not found in cluster ${cluster.identifier}`);
    if (node.vmId) this.vms.dropVM(node.vmId);
    this.fireDeleted(cluster.identifier, node);
    return { status: 200, body: { error: false, message: `Node ${identifier} is being deleted` } };
  }

  // ------------------------------------------------------------------------------------------------------
  // Internals
  // ------------------------------------------------------------------------------------------------------

  private createNode(
    cluster: ClusterState,
    groupId: number,
    identifier: string,
    p: CompleteOptions,
  ): SimK8sNode {
    const n = this.seq.node++;
    const group = cluster.groups.find((g) => g.id === groupId);
    const hostname = p.hostname ?? `${cluster.name}-${group?.name ?? 'worker'}-${n}`;
    const ip = p.ip === undefined ? this.vms.nextIp() : p.ip;
    const status = p.status ?? 'running';
    const createdOn = p.createdOn ?? timestamp();
    const vm = p.inVmList
      ? this.vms.addVM({
          name: hostname,
          hostname,
          default_ip: ip,
          status,
          created_on: createdOn,
          tags: ['kubernetes', cluster.name],
        })
      : undefined;
    const node: SimK8sNode = { identifier, hostname, ip, status, groupId, vmId: vm?.id ?? 0, createdOn };
    cluster.nodes.push(node);
    return { ...node };
  }

  private take(clusterIdentifier: string, identifier: string): SimK8sNode | undefined {
    const cluster = this.clusters.get(clusterIdentifier);
    const i = cluster?.nodes.findIndex((n) => n.identifier === identifier) ?? -1;
    return cluster && i >= 0 ? cluster.nodes.splice(i, 1)[0] : undefined;
  }

  private fireDeleted(clusterIdentifier: string, node: SimK8sNode): void {
    for (const l of this.deleteListeners) this.vms.safely(() => l(clusterIdentifier, { ...node }));
  }

  private nodeOfVM(vmId: number): { cluster: ClusterState; node: SimK8sNode } | undefined {
    for (const cluster of this.clusters.values()) {
      const node = cluster.nodes.find((n) => n.vmId === vmId);
      if (node) return { cluster, node };
    }
    return undefined;
  }

  private must(identifier: string): ClusterState {
    const c = this.clusters.get(identifier);
    if (!c) throw new Error(`VPSieSimulator: no K8s cluster ${identifier}`);
    return c;
  }

  private ok(data: unknown, message?: string): Answer {
    return { status: 200, body: { error: false, ...(message ? { message } : {}), data } };
  }

  private list(items: unknown[]): Answer {
    return { status: 200, body: { error: false, data: items, total: items.length } };
  }

  private noCluster(id: string): Answer {
    return apiError(404, `Kubernetes cluster ${id} not found`);
  }

  // Wire shapes: the fields the autoscaler decodes (pkg/vpsie/client/types.go), plus `created_on` on nodes
  // (the official SDK's node carries it).

  private clusterItem(c: ClusterState) {
    return {
      identifier: c.identifier,
      cluster_name: c.name,
      count: c.nodes.length + 1,
      kube_version: KUBE_VERSION,
      nickname: 'Starter',
      cpu: NODE_SIZE.cpu,
      ram: NODE_SIZE.ram,
      traffic: 4000,
      price: 48,
      created_by: 'ops@example.com',
      managerCount: 1,
      slaveCount: c.nodes.length,
      created_on: c.createdOn,
      updated_on: c.createdOn,
    };
  }

  private clusterInfo(c: ClusterState) {
    const machine = (
      m: { identifier: string; hostname: string; ip: string | null; status: string },
      role: string,
      createdOn: string,
    ) => ({
      identifier: m.identifier,
      hostname: m.hostname,
      ip: m.ip,
      status: m.status,
      role,
      cpu: NODE_SIZE.cpu,
      ram: NODE_SIZE.ram,
      disk: NODE_SIZE.disk,
      created_on: createdOn,
    });
    return {
      identifier: c.identifier,
      cluster_name: c.name,
      kube_version: KUBE_VERSION,
      status: 'running',
      count: c.nodes.length + 1,
      nodes: [
        machine({ ...c.master, status: 'running' }, 'master', c.createdOn),
        ...c.nodes.map((n) => machine(n, 'slave', n.createdOn)),
      ],
    };
  }

  private groupItem(c: ClusterState, g: SimK8sNodeGroup) {
    return {
      id: g.id,
      group_name: g.name,
      identifier: g.identifier,
      boxsize_id: 101,
      datacenter_id: 1,
      dcIdentifier: 'dc-nyc1',
      ram: NODE_SIZE.ram,
      cpu: NODE_SIZE.cpu,
      ssd: NODE_SIZE.disk,
      traffic: 4000,
      nodes_count: c.nodes.filter((n) => n.groupId === g.id).length,
      cluster_id: [...this.clusters.keys()].indexOf(c.identifier) + 1,
      project_id: 1,
      is_active: 1,
      is_deleted: 0,
      created_on: c.createdOn,
      last_updated: c.createdOn,
    };
  }
}
