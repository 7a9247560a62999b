/**
 * Failed VPSieNodes, as the autoscaler leaves them, for a part of the bench: a ClusterSimulator (the simulated
 * vpsie-k8s-autoscaler of test/support/cluster) watching a namespace of its own, NodeGroups, and VPSieNodes
 * whose machines VPSie makes but which never boot, so that the controller fails each one with
 * ProvisioningTimeout (after `limitMs`), as upstream does. The runs then find them Failed and diagnose at once.
 *
 * The VPSieNodes are created all at once, labelled and specified as upstream's NodeGroup controller creates them
 * (which itself makes one at a time, each only once the previous one has settled: far too slow for hundreds),
 * then their NodeGroup, managed, with its size (min, max and desired) equal to its VPSieNodes: the NodeGroup
 * controller finds nothing to scale. The VPSieNode controller, which does the failing, treats them like any.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  API_VERSION,
  ClusterSimulator,
  LABEL_MANAGED,
  LABEL_NODEGROUP,
  type VPSieNodeObj,
} from '../test/support/cluster';
import type { VPSieSimulator } from '../test/support/vpsie-simulator';

export interface FleetOptions {
  admin: KubeConfig;
  vpsie: VPSieSimulator;
  /** Namespace prefix; the namespace gets a random suffix. */
  prefix: string;
  groups: number;
  nodes: number;
  /** The controller's provisioning and joining limits (and the runs'). */
  limitMs: number;
  /**
   * How often the simulated controller lists the namespace's objects. Upstream's informers watch; the simulator
   * lists everything every tick, and hundreds of VPSieNodes listed every 250 ms kept kube-apiserver busier than
   * the runs being measured: once they are Failed, the controller has nothing to do for them.
   */
  tickMs: number;
  progress: (line: string) => void;
  /** Stops waiting (SIGINT). */
  stopping: () => boolean;
}

export interface FleetNode {
  namespace: string;
  name: string;
  nodeGroup: string;
}

const hex = (n: number) =>
  randomBytes(Math.ceil(n / 2))
    .toString('hex')
    .slice(0, n);

/** What one reconcile of one VPSieNode may take on a loaded machine (for the limit, see Fleet.limitMs). */
const MS_PER_NODE_PASS = 60;

/**
 * How long staging may take per VPSieNode, on top of a minute: the controller reconciles one object at a time,
 * about three times per node here, and a reconcile took up to 200 ms on a 2-core machine at load 20.
 */
const STAGE_MS_PER_NODE = 1_000;

export class Fleet {
  readonly namespace: string;
  /**
   * The controller's provisioning and joining limits here (the runs get the same). At least `limitMs`, and
   * longer for a large fleet: the controller reconciles one VPSieNode at a time, so one pass over hundreds takes
   * seconds, and a limit shorter than a pass would fail nodes before VPSie even made their machine (upstream,
   * with 10 minutes, records the machine long before).
   */
  readonly limitMs: number;
  readonly nodes: FleetNode[] = [];
  readonly groups: string[] = [];
  sim!: ClusterSimulator;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  constructor(private readonly o: FleetOptions) {
    this.namespace = `${o.prefix}-${hex(5)}`;
    this.limitMs = Math.max(o.limitMs, o.nodes * MS_PER_NODE_PASS);
    this.custom = o.admin.makeApiClient(CustomObjectsApi);
    this.core = o.admin.makeApiClient(CoreV1Api);
  }

  /** The run options that match this controller's limits. */
  get limitOptions(): { provisioningLimit: string; joiningLimit: string } {
    return { provisioningLimit: `${this.limitMs}ms`, joiningLimit: `${this.limitMs}ms` };
  }

  /** Creates everything and resolves once every VPSieNode is Failed. */
  async stage(): Promise<void> {
    const { o } = this;
    const t0 = Date.now();
    await this.core.createNamespace({ body: { metadata: { name: this.namespace } } });
    this.sim = new ClusterSimulator({
      kubeConfig: o.admin,
      vpsie: o.vpsie,
      namespace: this.namespace,
      tickMs: o.tickMs,
      timings: {
        provisioningTimeoutMs: this.limitMs,
        joiningTimeoutMs: this.limitMs,
        // the next pass creates the machine; the one after the limit fails the node
        fastRequeueMs: 500,
        requeueMs: 10 * 60_000,
        // the bench's runs must find them Failed, not deleted
        failedNodeTtlMs: 6 * 3_600_000,
      },
      world: { answer: 'sync' },
    });
    await this.sim.start();
    const cluster = o.vpsie.k8sCluster(this.sim.vpsieCluster)!;
    const groups = Math.min(o.groups, o.nodes);
    for (let g = 0; g < groups; g++) {
      const ng = `ng-${String(g + 1).padStart(2, '0')}-${hex(4)}`;
      this.groups.push(ng);
      await this.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { answer: 'sync' });
    }
    const perGroup = (g: number) => Math.floor(o.nodes / groups) + (g < o.nodes % groups ? 1 : 0);
    await Promise.all(
      this.groups.map(async (ng, g) => {
        // VPSie's node group for it, as the NodeGroup controller would have found or made it
        const groupId = o.vpsie.addK8sNodeGroup(cluster.identifier, { name: ng }).id;
        const spec = this.sim.nodeGroupSpec();
        for (let i = 0; i < perGroup(g); i++) {
          const name = `${ng}-${hex(8)}`;
          await this.custom.createNamespacedCustomObject({
            group: 'autoscaler.vpsie.com',
            version: 'v1alpha1',
            namespace: this.namespace,
            plural: 'vpsienodes',
            body: {
              apiVersion: API_VERSION,
              kind: 'VPSieNode',
              metadata: {
                name,
                namespace: this.namespace,
                labels: { [LABEL_NODEGROUP]: ng, [LABEL_MANAGED]: 'true' },
              },
              spec: this.sim.vpsieNodeSpec({
                nodeGroupName: ng,
                instanceType: spec.offeringIDs[0],
                vpsieGroupID: groupId,
              }),
            },
          });
          this.nodes.push({ namespace: this.namespace, name, nodeGroup: ng });
        }
        // Managed (the runbook replaces nodes only of a managed group), and already at the size its VPSieNodes
        // make: the NodeGroup controller finds nothing to scale, and replaces a node that is deleted.
        await this.sim.createNodeGroup(
          ng,
          { minNodes: perGroup(g), maxNodes: perGroup(g) },
          { managed: true, desiredNodes: perGroup(g) },
        );
      }),
    );
    o.progress(
      `  ${o.nodes} VPSieNodes in ${groups} NodeGroups created in ${this.namespace}; waiting for the controller to fail them`,
    );
    const deadline = Date.now() + 60_000 + this.limitMs + STAGE_MS_PER_NODE * o.nodes;
    let lastSaid = 0;
    for (;;) {
      const list = (await this.custom.listNamespacedCustomObject({
        group: 'autoscaler.vpsie.com',
        version: 'v1alpha1',
        namespace: this.namespace,
        plural: 'vpsienodes',
      })) as { items: VPSieNodeObj[] };
      const failed = list.items.filter((v) => v.status?.phase === 'Failed').length;
      if (failed >= o.nodes) break;
      if (o.stopping()) throw new Error('stopped');
      if (Date.now() > deadline)
        throw new Error(
          `only ${failed} of ${o.nodes} VPSieNodes Failed after ${Math.round((Date.now() - t0) / 1000)} s; simulator errors: ${this.sim.errors.slice(0, 5).join('; ') || 'none'}`,
        );
      if (Date.now() - lastSaid > 10_000) {
        lastSaid = Date.now();
        o.progress(`  ${failed}/${o.nodes} VPSieNodes Failed`);
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
    o.progress(`  ${o.nodes} VPSieNodes Failed after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** Stops the simulated controller (its pod and Nodes go; the VPSieNodes stay for what is left to read). */
  async stop(): Promise<void> {
    await this.sim?.stop();
  }
}
