/**
 * Plays the world around the runbook on a real kube-apiserver, as the admin identity: the vpsie-k8s-autoscaler
 * (its VPSieNode and NodeGroup controllers, its Events and its logs, read from upstream's code), VPSie's side
 * of node creation (through the {@link VPSieSimulator}) and the machines' kubelets. Never the code under test:
 * the runbook only meets what this writes through the real API (objects, status, Events, Nodes, `pods/log`) and
 * what the VPSie simulator answers.
 *
 * Actors, one file each: `vpsienode-controller.ts` (+ `vpsienode-phases.ts`, `provisioner.ts`,
 * `discoverer.ts`, `joiner.ts`, `terminator.ts`), `nodegroup-controller.ts`, `world.ts` (VPSie and kubelets,
 * `kubelet.ts`), `controller-pod.ts` and `fake-kubelet.ts` (the controller's pod and its logs),
 * `manager.ts` (the loop and work queues). Causes of the runbook are staged with {@link ClusterSimulator.stage}.
 */
import { AppsV1Api, CoreV1Api, CustomObjectsApi, VersionApi } from '@kubernetes/client-node';
import { kubeApiserverVersion } from '../control-plane';
import { VPSieSimulator, type SimK8sNode, type SimVM } from '../vpsie-simulator';
import { ControllerLog } from './controller-log';
import { registerControllerPod } from './controller-pod';
import { EventRecorder, type RecordedEvent } from './events';
import { FakeKubelet } from './fake-kubelet';
import { Kubelets } from './kubelet';
import { Manager } from './manager';
import { LABEL_SIMULATOR, NODEGROUP_CONTROLLER, VPSIENODE_CONTROLLER } from './names';
import { Objects } from './objects';
import { RecordLog, type ReconcileTarget, type ReconciledOptions } from './records';
import { Stages, stagedSpec, versionJoins, type VersionPolicy } from './scenarios';
import {
  DEFAULT_TIMINGS,
  type ClusterSimulatorOptions,
  type ControllerPod,
  type ControllerVPSieCall,
  type NodeGroupObj,
  type NodeGroupReconcile,
  type NodeGroupSpec,
  type ReconcileRecord,
  type Scenario,
  type SimTimings,
  type StageOptions,
  type StageTarget,
  type VPSieNodeSpec,
} from './types';
import { describeError, majorMinor, rand } from './util';
import { VPSieClient } from './vpsie-client';
import { World } from './world';

export * from './names';
export * from './types';
export { FakeKubelet } from './fake-kubelet';
export type { RecordedEvent } from './events';
export type { ReconcileTarget, ReconciledOptions } from './records';

export class ClusterSimulator {
  readonly namespace: string;
  readonly vpsie: VPSieSimulator;
  /** The fake kubelet that serves the controller pod's logs. */
  readonly kubelet = new FakeKubelet();
  /** This simulator's id: in the names of its controller pod and node, and in LABEL_SIMULATOR. */
  readonly id = rand(6);
  /** Problems of the simulator itself (a faithful run has none; tests assert it stays empty). */
  readonly errors: string[] = [];
  /** Every NodeGroup reconcile, in order, with what woke it. */
  readonly reconciles: NodeGroupReconcile[] = [];

  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly version: VersionApi;
  private readonly tickMs: number;
  private readonly timingsValue: SimTimings;
  private readonly log = new ControllerLog();
  private readonly stages = new Stages();
  private readonly stalled = new Set<string>();
  private readonly kubelets: Kubelets;
  private readonly client: VPSieClient;
  private readonly vnEvents: EventRecorder;
  private readonly ngEvents: EventRecorder;
  private readonly world: World;
  private readonly manager: Manager;
  private clusterVersionValue?: string;
  private clusterId?: string;
  private groupId?: number;
  private pod?: ControllerPod;
  private running = false;
  private started = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private tickWaiters: (() => void)[] = [];
  private readonly recordLog = new RecordLog(() => this.errors);
  private readonly objects: Objects;

  constructor(private readonly options: ClusterSimulatorOptions) {
    this.namespace = options.namespace;
    this.vpsie = options.vpsie;
    this.tickMs = options.tickMs ?? 50;
    this.timingsValue = { ...DEFAULT_TIMINGS, ...options.timings };
    this.clusterVersionValue = options.clusterVersion;
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.apps = options.kubeConfig.makeApiClient(AppsV1Api);
    this.custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.version = options.kubeConfig.makeApiClient(VersionApi);
    const timings = () => this.timingsValue;
    const error = (where: string, err: unknown) => this.error(where, err);
    this.kubelets = new Kubelets(this.core, this.id);
    this.client = new VPSieClient(
      () => this.vpsie.baseUrl,
      () => options.vpsieToken ?? this.defaultToken(),
    );
    this.vnEvents = new EventRecorder(
      this.core,
      VPSIENODE_CONTROLLER,
      () => timings().eventSpamRefillMs,
      error,
    );
    this.ngEvents = new EventRecorder(
      this.core,
      NODEGROUP_CONTROLLER,
      () => timings().eventSpamRefillMs,
      error,
    );
    const world = options.world ?? {};
    this.world = new World({
      vpsie: this.vpsie,
      kubelets: this.kubelets,
      stages: this.stages,
      timings,
      cluster: () => this.vpsieCluster,
      ...(world.answer ? { answer: world.answer } : {}),
      inVmList: world.inVmList ?? true,
      hostnamePrefix: world.hostnamePrefix ?? false,
      clusterVersion: () => this.clusterVersion,
      versionJoins: (v) => this.versionJoins(v),
    });
    this.objects = new Objects({
      custom: this.custom,
      vpsie: this.vpsie,
      kubelets: this.kubelets,
      world: this.world,
      namespace: this.namespace,
      cluster: () => this.vpsieCluster,
      group: () => this.vpsieGroupId,
      version: () => this.clusterVersion,
    });
    const shared = {
      core: this.core,
      custom: this.custom,
      vpsie: this.client,
      namespace: this.namespace,
      simulatorId: this.id,
      timings,
      world: this.world,
      error,
    };
    const root = this.log.logger(undefined);
    this.manager = new Manager({
      vn: {
        ...shared,
        log: root.named(VPSIENODE_CONTROLLER),
        discovererLog: root.named('discoverer'),
        events: this.vnEvents,
      },
      ng: { ...shared, log: root.named(NODEGROUP_CONTROLLER), events: this.ngEvents },
      stages: this.stages,
      world: this.world,
      stalled: this.stalled,
      stagedSpec: (scenario, opts, spec) =>
        stagedSpec(scenario, opts, spec, {
          cluster: this.clusterVersion,
          joins: (v) => this.versionJoins(v),
          knownKeys: this.vpsie.sshKeysList().flatMap((k) => [String(k.id), k.identifier]),
        }),
      onRecord: (r) => this.recordLog.push(r),
      onNodeGroupReconcile: (r) => this.reconciles.push(r),
    });
  }

  // ------------------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Starts the fake kubelet, registers the controller's node and pod, makes (or adopts) the VPSie K8s cluster
   * and its default node group, and starts the loop. The VPSie simulator must be started.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const port = await this.kubelet.start();
    this.started = true;
    try {
      if (!this.clusterVersionValue) {
        const git = (await this.version.getCode()).gitVersion;
        this.clusterVersionValue =
          majorMinor(git) && !git.startsWith('v0.0.0') ? git.replace(/\+.*$/, '') : kubeApiserverVersion();
      }
      const cluster = this.options.vpsieCluster
        ? this.vpsie.k8sCluster(this.options.vpsieCluster)
        : this.vpsie.addK8sCluster({ name: `sim-${this.id}` });
      if (!cluster) throw new Error(`ClusterSimulator: no VPSie K8s cluster ${this.options.vpsieCluster}`);
      this.clusterId = cluster.identifier;
      this.groupId = (
        cluster.groups[0] ?? this.vpsie.addK8sNodeGroup(cluster.identifier, { name: 'default' })
      ).id;
      this.pod = await registerControllerPod(this.core, this.apps, {
        namespace: this.options.controllerNamespace ?? 'kube-system',
        simulatorId: this.id,
        kubeletPort: port,
        version: this.clusterVersionValue,
      });
    } catch (err) {
      await this.removeObjects();
      this.started = false;
      await this.kubelet.stop();
      throw err;
    }
    const pod = this.pod;
    this.kubelet.addContainer(pod.namespace, pod.name, pod.container);
    this.log.attach((line) => this.kubelet.append(pod.namespace, pod.name, pod.container, line));
    const main = this.log.logger(undefined);
    main.info('controller/main.go:178', 'Initializing VPSie Kubernetes Autoscaler', { version: '0.7.8' });
    main.info('controller/main.go:216', 'Creating controller manager');
    this.world.start();
    this.running = true;
    this.loop = this.run();
  }

  /** Stops the loop (after the tick in flight), removes its Nodes and the controller's pod and ReplicaSet. */
  async stop(opts: { keepObjects?: boolean } = {}): Promise<void> {
    this.running = false;
    this.wake?.();
    if (this.loop) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    this.loop = undefined;
    this.world.stop();
    for (const w of this.tickWaiters.splice(0)) w();
    if (this.started && !opts.keepObjects) await this.removeObjects();
    this.started = false;
    this.log.detach();
    await this.kubelet.stop();
  }

  private async removeObjects(): Promise<void> {
    const ignore = () => undefined;
    const deletes: Promise<unknown>[] = [];
    try {
      const nodes = await this.core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${this.id}` });
      for (const n of nodes.items)
        deletes.push(this.core.deleteNode({ name: n.metadata?.name ?? '' }).catch(ignore));
    } catch {
      // the apiserver is gone: nothing to clean up
    }
    if (this.pod) {
      const { namespace, name, replicaSet } = this.pod;
      deletes.push(this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }).catch(ignore));
      deletes.push(this.apps.deleteNamespacedReplicaSet({ namespace, name: replicaSet }).catch(ignore));
    }
    await Promise.all(deletes);
  }

  /** Resolves after `ticks` complete ticks that began after the call (at once when stopped). */
  sync(ticks = 1): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = ticks + 1; // the tick in flight may have read the world before the caller changed it
      const waiter = () => {
        if (--left <= 0 || !this.running) resolve();
        else this.tickWaiters.push(waiter);
      };
      this.tickWaiters.push(waiter);
    });
  }

  /**
   * Resolves with the first reconcile of `target` that started at or after `after` (default: now), once it has
   * finished: proof that the controller has looked at the object since then. Rejects after `timeoutMs`.
   */
  reconciled(target: ReconcileTarget, opts: ReconciledOptions = {}): Promise<ReconcileRecord> {
    return this.recordLog.reconciled(target, opts);
  }

  /** Every reconcile of either controller, in order. */
  get records(): readonly ReconcileRecord[] {
    return this.recordLog.records;
  }

  // ------------------------------------------------------------------------------------------------------
  // Knobs and inspection

  get timings(): Readonly<SimTimings> {
    return this.timingsValue;
  }

  /** Changes timings from now on (e.g. a short joining limit for one test). */
  setTimings(timings: Partial<SimTimings>): void {
    Object.assign(this.timingsValue, timings);
  }

  /** The cluster's Kubernetes version as the kubelets see it (after start()). */
  get clusterVersion(): string {
    if (!this.clusterVersionValue) throw new Error('ClusterSimulator: not started');
    return this.clusterVersionValue;
  }

  /** The VPSie K8s cluster's identifier: what `spec.resourceIdentifier` names (after start()). */
  get vpsieCluster(): string {
    if (!this.clusterId) throw new Error('ClusterSimulator: not started');
    return this.clusterId;
  }

  /** The numeric id of the cluster's default VPSie node group: a `spec.vpsieGroupID` that works. */
  get vpsieGroupId(): number {
    if (this.groupId === undefined) throw new Error('ClusterSimulator: not started');
    return this.groupId;
  }

  /** The controller's pod (after start()). */
  get controllerPod(): ControllerPod {
    if (!this.pod) throw new Error('ClusterSimulator: not started');
    return this.pod;
  }

  /** The controller's log lines so far (what `pods/log` serves, without the kubelet's timestamps). */
  controllerLogs(): string[] {
    return [...this.log.lines];
  }

  /** Appends a raw line to the controller's log (e.g. noise around the lines a test looks for). */
  appendLog(line: string): void {
    this.log.append(line);
  }

  /** Every Event the controllers recorded, with what became of it (written, patched as a repeat, dropped). */
  get events(): readonly RecordedEvent[] {
    return [...this.vnEvents.recorded, ...this.ngEvents.recorded].sort((a, b) => a.at - b.at);
  }

  /** Every call the controller made to VPSie (its requests are also in the VPSie simulator's log). */
  get vpsieCalls(): readonly ControllerVPSieCall[] {
    return this.client.calls;
  }

  /** A machine's kubelet journal, by node name (why a Node never registered). */
  kubeletJournal(nodeName: string): string[] {
    return [...(this.kubelets.journal.get(nodeName) ?? [])];
  }

  /** The machine VPSie made for a VPSieNode (by name), if any. */
  machineOf(vpsieNode: string): SimK8sNode | undefined {
    return this.vpsie
      .k8sCluster(this.vpsieCluster)
      ?.nodes.find((n) => this.world.vpsieNodeOf(n.identifier) === vpsieNode);
  }

  /**
   * Stages a scenario for a VPSieNode (by name; before or after it exists) or for the next VPSieNodes of a
   * NodeGroup (`count`). `healthy` without options clears a target's stages (with options, e.g. `answer` or
   * `nodeIP`, it stages them). Resolves after the next tick (data written).
   */
  async stage(target: StageTarget, scenario: Scenario, options: StageOptions = {}): Promise<void> {
    this.stages.stage(target, scenario, options);
    await this.sync();
  }

  /**
   * Fault injection: the NodeGroup controller of `nodeGroup` hears only about changes to the NodeGroup itself
   * (spec, labels, annotations such as `reconcile-trigger`, status): not its VPSieNodes, requeues or resyncs.
   * Resolves once a reconcile that began before the call can no longer be running.
   */
  async stallNodeGroup(nodeGroup: string, stalled = true): Promise<void> {
    if (stalled) this.stalled.add(nodeGroup);
    else this.stalled.delete(nodeGroup);
    await this.sync();
  }

  /** Reconciles of one NodeGroup, in order. */
  reconcilesOf(nodeGroup: string): NodeGroupReconcile[] {
    return this.reconciles.filter((r) => r.nodeGroup === nodeGroup);
  }

  // ------------------------------------------------------------------------------------------------------
  // Objects as a real cluster has them

  /** A VPSieNode spec the CRD accepts and this cluster's VPSie knows (default group, cluster version). */
  vpsieNodeSpec(overrides: Partial<VPSieNodeSpec> = {}): VPSieNodeSpec {
    return this.objects.vpsieNodeSpec(overrides);
  }

  /** A NodeGroup spec the CRD accepts for this cluster (kubeSizeID 1, minNodes 1, maxNodes 3). */
  nodeGroupSpec(overrides: Partial<NodeGroupSpec> = {}): NodeGroupSpec {
    return this.objects.nodeGroupSpec(overrides);
  }

  /**
   * A NodeGroup as one that works on a real cluster: labelled managed (unless `managed: false`), its VPSie node
   * group there (named after it), and its status written once by the autoscaler's scale-up controller
   * (`desiredNodes`, default minNodes; `null`: no status). Upstream's NodeGroup controller cannot write the
   * status of a NodeGroup that has none: its first patch lacks the CRD's required counters (422).
   */
  createNodeGroup(
    name: string,
    spec: Partial<NodeGroupSpec> = {},
    opts: { managed?: boolean; labels?: Record<string, string>; desiredNodes?: number | null } = {},
  ): Promise<NodeGroupObj> {
    return this.objects.createNodeGroup(name, spec, opts);
  }

  /** What the autoscaler's scale-up controller does: a Status().Update with `desiredNodes` (retried on 409). */
  scaleNodeGroup(name: string, desiredNodes: number): Promise<NodeGroupObj> {
    return this.objects.scaleNodeGroup(name, desiredNodes);
  }

  /**
   * A machine in the VPSie cluster that no VPSieNode owns any more (what "Manual VM Cleanup" finds), listed
   * in `GET /vm`, without a kubelet; with `withNode`, its Node too, labelled as the controller had labelled it.
   */
  addOrphan(
    opts: { vpsieNodeName?: string; nodeGroup?: string; withNode?: boolean } = {},
  ): Promise<{ machine: SimK8sNode; vm: SimVM | undefined }> {
    return this.objects.addOrphan(opts);
  }

  // ------------------------------------------------------------------------------------------------------
  // Internals

  private defaultToken(): string {
    return VPSieSimulator.DEFAULT_TOKEN;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        await this.manager.tick(() => this.running);
      } catch (err) {
        this.error('tick', err);
      }
      for (const w of this.tickWaiters.splice(0)) w();
      if (!this.running) break;
      const wait = Math.max(10, this.tickMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private error(where: string, err: unknown): void {
    this.errors.push(`${where}: ${describeError(err)}`);
  }

  private versionJoins(version: string): boolean {
    const policy: VersionPolicy = this.options.versionPolicy ?? 'same-minor';
    return versionJoins(policy, this.clusterVersion, version);
  }
}
