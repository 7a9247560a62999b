/**
 * Plays the world around the runbook on a real kube-apiserver, as the admin identity: the vpsie-k8s-autoscaler
 * (its VPSieNode and NodeGroup controllers, its Events and its logs) and the kubelets of the VMs it makes in
 * the {@link VPSieSimulator}. Never the code under test: the runbook only ever meets what this writes through
 * the real API (objects, status, Events, `pods/log`).
 *
 * What it does, polling every `tickMs` (lists are cheap on a test apiserver and polling is robust to restarts):
 *
 * - VPSieNode controller (one namespace): adds the finalizer, moves each VPSieNode through
 *   Pending → Provisioning → Provisioned → Joining → Ready, writing `status.phase`, the timestamps
 *   (`createdAt`, `provisionedAt`, `joinedAt`, `readyAt`, `terminatingAt`, `deletedAt`; millisecond RFC 3339),
 *   conditions (`VPSReady`, `NodeJoined`, `NodeReady`, `Error`), `lastError`, `vpsieStatus`, and
 *   `spec.vpsieInstanceID` / `spec.ipAddress` once the VM exists. Events (core/v1, involvedObject = the
 *   VPSieNode) for every step: `Provisioning`, `Provisioned`, `Joining`, `Joined`, `Ready`, `Terminating`,
 *   `Deleting`, and Warnings `VPSieAPIError`, `ProvisioningTimeout`, `JoiningTimeout`, `VPSDeleteFailed`,
 *   `Failed`. Its limits (10 min to provision, 15 min to join, as the real controller) are knobs.
 *   Deleting: a VPSieNode with `deletionTimestamp` goes Terminating, its Node is deleted, its VM terminated in
 *   the VPSie simulator (after `vmTerminateMs`), then Deleting, and only then is the finalizer removed.
 * - VPSie (physics of the VMs): a VM is created `provisioning` and turns `running` after `vmBootMs`. The
 *   controller's VMs are created and terminated in-process (`addVM` / `removeVM`), not through HTTP, so the
 *   VPSie simulator's request log holds only what the code under test did.
 * - kubelet: `nodeRegisterMs` after its VM runs, registers a Node named as the VPSieNode's `spec.nodeName`
 *   (default: the VPSieNode's name) with the controller's labels, the NodeGroup's labels and taints,
 *   `kubeletVersion` = the node's Kubernetes version, and `Ready` (False, then True after `nodeReadyMs`).
 *   A kubelet whose version does not match the cluster's (see `versionPolicy`) never joins and the controller
 *   logs the version mismatch.
 * - NodeGroup controller: keeps the number of VPSieNodes of each NodeGroup (not being deleted) at
 *   `spec.minNodes` (or {@link ClusterSimulator.setDesiredNodes}), creating `<nodegroup>-<random>` VPSieNodes
 *   from the NodeGroup's spec; writes `status` (currentNodes, desiredNodes, readyNodes, nodes, conditions).
 *   It reconciles on a NodeGroup change (spec or any annotation, e.g. `reconcile-trigger`), on a change of its
 *   VPSieNodes (unless stalled, {@link ClusterSimulator.stallNodeGroup}), and every `nodeGroupResyncMs`;
 *   each reconcile is recorded in {@link ClusterSimulator.reconciles} and logged.
 * - The controller's pod: `kube-system/vpsie-autoscaler-<hash>-<id>` (owned by ReplicaSet
 *   `vpsie-autoscaler-<hash>`, owned by the Deployment `vpsie-autoscaler`, which is created when absent and
 *   shared by the simulators of parallel test files), bound to a Node `controller-node-<id>` whose kubelet is a
 *   {@link FakeKubelet} on 127.0.0.1: its log lines travel apiserver → kubelet like on a real cluster.
 *
 * Causes of the runbook are staged per VPSieNode or per NodeGroup with {@link ClusterSimulator.stage}.
 */
import { randomBytes } from 'node:crypto';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  VersionApi,
} from '@kubernetes/client-node';
import type { CoreV1Event, KubeConfig, V1Node, V1NodeCondition, V1Taint } from '@kubernetes/client-node';
import { kubeApiserverVersion } from './control-plane';
import { FakeKubelet } from './fake-kubelet';
import type { SimVM, VPSieSimulator } from './vpsie-simulator';

// ---------------------------------------------------------------------------------------------------------
// Names the controller uses (domain.md §2)

export const GROUP = 'autoscaler.vpsie.com';
export const VERSION = 'v1alpha1';
export const FINALIZER = 'vpsienode.autoscaler.vpsie.com/finalizer';
export const LABEL_MANAGED = 'autoscaler.vpsie.com/managed';
export const LABEL_NODEGROUP = 'autoscaler.vpsie.com/nodegroup';
export const LABEL_VPSIENODE = 'autoscaler.vpsie.com/vpsienode';
export const LABEL_DATACENTER = 'autoscaler.vpsie.com/datacenter';
export const LABEL_OFFERING = 'autoscaler.vpsie.com/offering';
export const ANNOTATION_VPS_ID = 'autoscaler.vpsie.com/vps-id';
export const RECONCILE_TRIGGER = 'reconcile-trigger';
/** On every object this simulator makes outside the test namespace (Nodes, the controller's pod): its id. */
export const LABEL_SIMULATOR = 'vpsie-runbook.test/simulator';
/** Name of the controller's Deployment, in `controllerNamespace`. */
export const CONTROLLER_DEPLOYMENT = 'vpsie-autoscaler';
/** Name of the controller's container. */
export const CONTROLLER_CONTAINER = 'manager';
/** Labels of the controller's pods (the Deployment's selector). */
export const CONTROLLER_POD_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'vpsie-autoscaler',
  app: 'vpsie-autoscaler',
};

// ---------------------------------------------------------------------------------------------------------
// Public types

/**
 * Behaviour of one VPSieNode (or of the next VPSieNodes of a NodeGroup):
 * - `healthy`: VM boots, kubelet registers, Ready.
 * - `vm-creation-fails` (cause 1): VPSie answers an error to the create; `vpsieInstanceID` stays 0; phase Failed,
 *   reason VPSieAPIError; `failed to create VM: ...` in the controller's logs.
 * - `never-registers` (cause 2): the VM runs but no Node ever appears; JoiningTimeout after the join limit.
 * - `stuck-provisioning` (cause 3): the VM stays `provisioning`, the VPSieNode Provisioning; ProvisioningTimeout
 *   after the provisioning limit.
 * - `version-mismatch` (cause 4): writes a Kubernetes version that does not match the cluster's into the
 *   target's `spec.kubernetesVersion` (the NodeGroup's, or the VPSieNode's before it provisions); the kubelet
 *   then fails to join (version mismatch in the logs), JoiningTimeout after the join limit. The behaviour
 *   follows the data: a VPSieNode with a matching version joins, so fixing the NodeGroup fixes replacements.
 * - `unknown-ssh-keys` (cause 5): writes SSH key ids the VPSie account does not have into the target's
 *   `spec.sshKeyIDs`; the VM runs without them (warning in the logs) and the node never registers while its
 *   keys are unknown (the situation in which an engineer needs SSH and cannot get it).
 * - `vm-delete-fails`: terminating the VM fails (VPSDeleteFailed), so the finalizer stays.
 */
export type Scenario =
  | 'healthy'
  | 'vm-creation-fails'
  | 'never-registers'
  | 'stuck-provisioning'
  | 'version-mismatch'
  | 'unknown-ssh-keys'
  | 'vm-delete-fails';

/** A VPSieNode by name (in the simulator's namespace), or a NodeGroup. */
export type StageTarget = string | { vpsieNode: string } | { nodeGroup: string };

export interface StageOptions {
  /**
   * NodeGroup targets: how many VPSieNodes of the group first seen from now on get the scenario (default: all
   * of them). `version-mismatch` and `unknown-ssh-keys` follow the data instead and ignore it.
   */
  count?: number;
  /** `vm-creation-fails`: the error VPSie answers. */
  error?: string;
  /** `version-mismatch`: the wrong version to write (default: four minors older than the cluster). */
  kubernetesVersion?: string;
  /** `unknown-ssh-keys`: the unknown key ids to write (default: one random id). */
  sshKeyIDs?: string[];
}

export interface SimTimings {
  /** VPSie: how long a VM stays `provisioning` before it runs. Default 300 ms. */
  vmBootMs: number;
  /** kubelet: from the VM running to the Node registered. Default 200 ms. */
  nodeRegisterMs: number;
  /** kubelet: from the Node registered to Ready=True. Default 100 ms. */
  nodeReadyMs: number;
  /** VPSie: how long terminating a VM takes once the VPSieNode is being deleted. Default 200 ms. */
  vmTerminateMs: number;
  /** The controller's limit for the VM to provision (production: 10 min). */
  provisioningTimeoutMs: number;
  /** The controller's limit for the node to join, from the VM running (production: 15 min). */
  joiningTimeoutMs: number;
  /** The NodeGroup controller's periodic resync (production: hours; default 10 min). */
  nodeGroupResyncMs: number;
}

export const DEFAULT_TIMINGS: Readonly<SimTimings> = {
  vmBootMs: 300,
  nodeRegisterMs: 200,
  nodeReadyMs: 100,
  vmTerminateMs: 200,
  provisioningTimeoutMs: 10 * 60_000,
  joiningTimeoutMs: 15 * 60_000,
  nodeGroupResyncMs: 10 * 60_000,
};

export interface ClusterSimulatorOptions {
  /** Admin identity (the controller's and the kubelets' writes). */
  kubeConfig: KubeConfig;
  vpsie: VPSieSimulator;
  /** The namespace whose VPSieNodes and NodeGroups this simulator controls. */
  namespace: string;
  /** Poll period of the controllers. Default 100 ms. */
  tickMs?: number;
  timings?: Partial<SimTimings>;
  /**
   * The cluster's Kubernetes version. Default: the apiserver's `GET /version`, or, when that is unset
   * (`v0.0.0-master...`, a build without version ldflags), the version tools/kube-apiserver builds.
   */
  clusterVersion?: string;
  /**
   * When a kubelet's version lets it join: `same-minor` (default: the runbook's "match the cluster"), or
   * `kubelet-skew` (Kubernetes' skew policy: not newer than the apiserver, at most 3 minors older), or `any`.
   */
  versionPolicy?: 'same-minor' | 'kubelet-skew' | 'any';
  /**
   * Check `instanceType` (offering), `datacenterID` and `osImageID` against the VPSie simulator's catalog and
   * its VM quota before creating a VM (unknown ids fail with VPSieAPIError, like the real API). Default true.
   */
  validateCatalog?: boolean;
  /** Where the controller's Deployment, ReplicaSet and Pod live. Default kube-system. */
  controllerNamespace?: string;
  /** Only VPSieNodes / NodeGroups matching this label selector are controlled (default: all in namespace). */
  labelSelector?: string;
}

export interface NodeGroupReconcile {
  nodeGroup: string;
  /** Why: `created` (first seen), `spec-changed`, `annotations-changed`, `vpsienodes-changed`, `resync`. */
  reason: 'created' | 'spec-changed' | 'annotations-changed' | 'vpsienodes-changed' | 'resync';
  /** The `reconcile-trigger` annotation's value at the time. */
  trigger?: string;
  /** VPSieNodes this reconcile created. */
  created: string[];
  at: Date;
}

export interface ControllerPod {
  namespace: string;
  name: string;
  container: string;
  nodeName: string;
  replicaSet: string;
  labels: Record<string, string>;
}

export interface OrphanVMOptions {
  /** Name of the (gone) VPSieNode; default `<nodeGroup>-<random>`. */
  vpsieNodeName?: string;
  nodeGroup?: string;
  /** VM status; default running. */
  status?: string;
  /** Also register a Node for it (a node whose VPSieNode is gone). Default false. */
  withNode?: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Wire shapes of the custom resources (what the simulator reads and writes)

interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

interface VPSieNodeSpec {
  vpsieInstanceID?: number;
  instanceType?: string;
  nodeGroupName?: string;
  datacenterID?: string;
  resourceIdentifier?: string;
  project?: string;
  osImageID?: string;
  kubernetesVersion?: string;
  sshKeyIDs?: string[];
  nodeName?: string;
  ipAddress?: string;
  ipv6Address?: string;
}

interface VPSieNodeStatus {
  phase?: string;
  nodeName?: string;
  vpsieStatus?: string;
  hostname?: string;
  createdAt?: string;
  provisionedAt?: string;
  joinedAt?: string;
  readyAt?: string;
  terminatingAt?: string;
  deletedAt?: string;
  conditions?: Condition[];
  lastError?: string;
  observedGeneration?: number;
}

interface VPSieNodeObj {
  metadata: Meta;
  spec?: VPSieNodeSpec;
  status?: VPSieNodeStatus;
}

interface NodeGroupSpec {
  minNodes?: number;
  maxNodes?: number;
  datacenterID?: string;
  resourceIdentifier?: string;
  project?: string;
  offeringIDs?: string[];
  osImageID?: string;
  kubernetesVersion?: string;
  preferredInstanceType?: string;
  labels?: Record<string, string>;
  taints?: V1Taint[];
  sshKeyIDs?: string[];
  tags?: string[];
  notes?: string;
}

interface NodeGroupObj {
  metadata: Meta;
  spec?: NodeGroupSpec;
  status?: { conditions?: Condition[]; lastScaleTime?: string; [k: string]: unknown };
}

interface StageEntry {
  scenario: Scenario;
  options: StageOptions;
  /** NodeGroup stages: VPSieNodes left to give it to. */
  remaining: number;
  /** version-mismatch / unknown-ssh-keys: the data has been written. */
  dataWritten?: boolean;
}

/** What the controller remembers of one VPSieNode (by uid). */
interface NodeRecord {
  name: string;
  scenario: Scenario;
  stage?: StageEntry;
  vmBootAt?: number;
  nodeRegisteredAt?: number;
  joinFailureReported?: boolean;
  sshWarningLogged?: boolean;
  deletion?: { startedAt: number; deleteFailureReported?: boolean };
}

interface NodeGroupRecord {
  generation?: number;
  annotations: string;
  children: string;
  lastReconcileAt: number;
  stalled: boolean;
}

const DATA_SCENARIOS: ReadonlySet<Scenario> = new Set(['version-mismatch', 'unknown-ssh-keys']);
const PHASE_ORDER = ['Pending', 'Provisioning', 'Provisioned', 'Joining', 'Ready'];

function rand(n: number): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  const bytes = randomBytes(n);
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

function iso(ms: number = Date.now()): string {
  return new Date(ms).toISOString();
}

function parseTime(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: string } | string | undefined;
    const msg = typeof body === 'string' ? body : body?.message;
    return `HTTP ${err.code}${msg ? `: ${msg}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** vX.Y.Z → [X, Y], or undefined. */
function majorMinor(version: string | undefined): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?/.exec(version ?? '');
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export class ClusterSimulator {
  readonly namespace: string;
  readonly vpsie: VPSieSimulator;
  /** The fake kubelet that serves the controller pod's logs. */
  readonly kubelet = new FakeKubelet();
  /** This simulator's id: in the names of its controller pod and node, and in LABEL_SIMULATOR. */
  readonly id = rand(6);
  /** Errors the simulator met in its loops (a faithful run has none; tests may assert it stays empty). */
  readonly errors: string[] = [];
  /** Every NodeGroup reconcile, in order. */
  readonly reconciles: NodeGroupReconcile[] = [];

  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly version: VersionApi;
  private readonly tickMs: number;
  private readonly timingsValue: SimTimings;
  private readonly versionPolicy: 'same-minor' | 'kubelet-skew' | 'any';
  private readonly validateCatalog: boolean;
  private readonly controllerNamespace: string;
  private readonly labelSelector?: string;
  private clusterVersionValue?: string;

  private readonly records = new Map<string, NodeRecord>();
  private readonly nodeGroups = new Map<string, NodeGroupRecord>();
  private readonly vnStages = new Map<string, StageEntry>();
  private readonly ngStages = new Map<string, StageEntry>();
  private readonly desired = new Map<string, number>();
  private readonly stalled = new Set<string>();
  private readonly logLines: string[] = [];
  private pod?: ControllerPod;
  private running = false;
  private started = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private tickWaiters: (() => void)[] = [];
  private eventSeq = 0;

  constructor(options: ClusterSimulatorOptions) {
    this.namespace = options.namespace;
    this.vpsie = options.vpsie;
    this.tickMs = options.tickMs ?? 100;
    this.timingsValue = { ...DEFAULT_TIMINGS, ...options.timings };
    this.versionPolicy = options.versionPolicy ?? 'same-minor';
    this.validateCatalog = options.validateCatalog ?? true;
    this.controllerNamespace = options.controllerNamespace ?? 'kube-system';
    this.labelSelector = options.labelSelector;
    this.clusterVersionValue = options.clusterVersion;
    this.core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.apps = options.kubeConfig.makeApiClient(AppsV1Api);
    this.custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.version = options.kubeConfig.makeApiClient(VersionApi);
  }

  // ------------------------------------------------------------------------------------------------------
  // Lifecycle

  /** Starts the fake kubelet, registers the controller's node and pod, and starts the controllers' loop. */
  async start(): Promise<void> {
    if (this.running) return;
    const port = await this.kubelet.start();
    this.started = true;
    try {
      if (!this.clusterVersionValue) {
        const info = await this.version.getCode();
        const git = info.gitVersion;
        this.clusterVersionValue =
          majorMinor(git) && !git.startsWith('v0.0.0') ? git.replace(/\+.*$/, '') : kubeApiserverVersion();
      }
      await this.registerController(port);
    } catch (err) {
      await this.removeObjects();
      this.started = false;
      await this.kubelet.stop();
      throw err;
    }
    this.log('INFO', 'setup', 'starting manager', { version: 'v0.0.0-sim' });
    this.log('INFO', 'controller', 'Starting Controller', { controller: 'vpsienode' });
    this.log('INFO', 'controller', 'Starting Controller', { controller: 'nodegroup' });
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Stops the loops (waits for the tick in flight), removes what it made outside the test namespace (its
   * Nodes, the controller's pod, ReplicaSet and node) unless `keepObjects`, and stops the fake kubelet.
   */
  async stop(opts: { keepObjects?: boolean } = {}): Promise<void> {
    this.running = false;
    this.wake?.();
    if (this.loop) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.loop, new Promise<void>((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    this.loop = undefined;
    for (const w of this.tickWaiters.splice(0)) w();
    if (this.started && !opts.keepObjects) await this.removeObjects();
    this.started = false;
    await this.kubelet.stop();
  }

  /** Deletes what this simulator made outside the test namespace: its Nodes, the controller's pod and RS. */
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

  /** Resolves after the next complete tick of the controllers (at once when stopped). */
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

  /** The controller's pod (after start()). */
  get controllerPod(): ControllerPod {
    if (!this.pod) throw new Error('ClusterSimulator: not started');
    return this.pod;
  }

  /** The controller's log lines so far (what `pods/log` serves, without the kubelet's timestamps). */
  controllerLogs(): string[] {
    return [...this.logLines];
  }

  /** Appends a raw line to the controller's log (e.g. noise around the lines a test looks for). */
  appendLog(line: string): void {
    this.logLines.push(line);
    if (this.pod) this.kubelet.append(this.pod.namespace, this.pod.name, this.pod.container, line);
  }

  /**
   * Stages a runbook cause for a VPSieNode (by name; before or after it exists: effects already past stay) or
   * for the next VPSieNodes of a NodeGroup (see {@link StageOptions.count}). `healthy` clears a stage. Resolves
   * once the simulator has acted on it (data written when the target exists).
   */
  async stage(target: StageTarget, scenario: Scenario, options: StageOptions = {}): Promise<void> {
    const entry: StageEntry = { scenario, options, remaining: options.count ?? Infinity };
    if (typeof target === 'string' || 'vpsieNode' in target) {
      const name = typeof target === 'string' ? target : target.vpsieNode;
      this.vnStages.set(name, entry);
      for (const rec of this.records.values()) {
        if (rec.name === name) {
          rec.scenario = scenario;
          rec.stage = entry;
        }
      }
    } else {
      this.ngStages.set(target.nodeGroup, entry);
    }
    await this.sync();
  }

  /**
   * The NodeGroup controller of `nodeGroup` misses the events of its VPSieNodes: it reconciles only when the
   * NodeGroup itself changes (spec, or an annotation such as `reconcile-trigger`) or at the periodic resync.
   */
  stallNodeGroup(nodeGroup: string, stalled = true): void {
    if (stalled) this.stalled.add(nodeGroup);
    else this.stalled.delete(nodeGroup);
  }

  /** The number of VPSieNodes a NodeGroup wants (default spec.minNodes); undefined goes back to minNodes. */
  setDesiredNodes(nodeGroup: string, count: number | undefined): void {
    if (count === undefined) this.desired.delete(nodeGroup);
    else this.desired.set(nodeGroup, count);
  }

  /** Reconciles of one NodeGroup, in order. */
  reconcilesOf(nodeGroup: string): NodeGroupReconcile[] {
    return this.reconciles.filter((r) => r.nodeGroup === nodeGroup);
  }

  /**
   * A VM in VPSie shaped like the controller's, whose VPSieNode is gone (it never existed in this namespace):
   * what the runbook's "Manual VM Cleanup" finds. Optionally with a registered Node.
   */
  async addOrphanVM(opts: OrphanVMOptions = {}): Promise<SimVM> {
    const nodeGroup = opts.nodeGroup ?? 'orphans';
    const name = opts.vpsieNodeName ?? `${nodeGroup}-${rand(5)}`;
    const vm = this.vpsie.addVM({
      name,
      hostname: name,
      status: opts.status ?? 'running',
      tags: this.vmTags(name, nodeGroup, undefined, []),
      notes: this.vmNotes(name),
    });
    if (opts.withNode) {
      await this.registerNode(
        { metadata: { name, namespace: this.namespace, uid: '' }, spec: { nodeGroupName: nodeGroup } },
        vm,
        name,
        this.clusterVersion,
        true,
      );
    }
    return vm;
  }

  // ------------------------------------------------------------------------------------------------------
  // The loop

  private async run(): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        await this.tick();
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
    const line = `${where}: ${describeError(err)}`;
    this.errors.push(line);
    this.log('ERROR', 'simulator', line, {});
  }

  private async tick(): Promise<void> {
    const crd = (plural: string) => ({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural,
      ...(this.labelSelector ? { labelSelector: this.labelSelector } : {}),
    });
    const [vnList, ngList, nodeList] = await Promise.all([
      this.custom.listNamespacedCustomObject(crd('vpsienodes')) as Promise<{ items: VPSieNodeObj[] }>,
      this.custom.listNamespacedCustomObject(crd('nodegroups')) as Promise<{ items: NodeGroupObj[] }>,
      this.core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${this.id}` }),
    ]);
    const nodes = new Map(nodeList.items.map((n) => [n.metadata?.name ?? '', n]));
    const seen = new Set<string>();
    const vns: VPSieNodeObj[] = [];
    for (const vn of vnList.items) {
      if (!this.running) return;
      seen.add(vn.metadata.uid);
      try {
        const after = await this.reconcileVPSieNode(vn, nodes);
        if (after) vns.push(after);
      } catch (err) {
        if (statusOf(err) === 404 || statusOf(err) === 409) vns.push(vn);
        else this.error(`VPSieNode ${vn.metadata.name}`, err);
      }
    }
    for (const uid of this.records.keys()) if (!seen.has(uid)) this.records.delete(uid);
    for (const ng of ngList.items) {
      if (!this.running) return;
      try {
        await this.reconcileNodeGroup(ng, vns);
      } catch (err) {
        if (statusOf(err) !== 404 && statusOf(err) !== 409) this.error(`NodeGroup ${ng.metadata.name}`, err);
      }
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // VPSieNode controller

  private record(vn: VPSieNodeObj): NodeRecord {
    let rec = this.records.get(vn.metadata.uid);
    if (!rec) {
      let stage = this.vnStages.get(vn.metadata.name);
      const ng = vn.spec?.nodeGroupName ?? vn.metadata.labels?.[LABEL_NODEGROUP];
      if (!stage && ng) {
        const ngStage = this.ngStages.get(ng);
        if (ngStage && DATA_SCENARIOS.has(ngStage.scenario)) stage = ngStage;
        else if (ngStage && ngStage.remaining > 0) {
          ngStage.remaining -= 1;
          stage = ngStage;
        }
      }
      rec = { name: vn.metadata.name, scenario: stage?.scenario ?? 'healthy', stage };
      this.records.set(vn.metadata.uid, rec);
    }
    return rec;
  }

  /** One step (or a few that need no waiting) of one VPSieNode; answers the object as it is afterwards. */
  private async reconcileVPSieNode(
    vn: VPSieNodeObj,
    nodes: Map<string, V1Node>,
  ): Promise<VPSieNodeObj | undefined> {
    const rec = this.record(vn);
    if (vn.metadata.deletionTimestamp) return this.reconcileDeletion(vn, rec, nodes);
    if (!(vn.metadata.finalizers ?? []).includes(FINALIZER)) {
      // The Go controller updates the whole object: its non-omitempty vpsieInstanceID shows up as 0.
      vn = await this.patchMeta(
        vn,
        { finalizers: [...(vn.metadata.finalizers ?? []), FINALIZER] },
        vn.spec?.vpsieInstanceID === undefined ? { vpsieInstanceID: 0 } : undefined,
      );
    }
    for (let step = 0; step < 6; step++) {
      const next = await this.step(vn, rec, nodes);
      if (!next) return vn;
      vn = next;
    }
    return vn;
  }

  /** Answers the object after a transition, or undefined when it has to wait. */
  private async step(
    vn: VPSieNodeObj,
    rec: NodeRecord,
    nodes: Map<string, V1Node>,
  ): Promise<VPSieNodeObj | undefined> {
    const name = vn.metadata.name;
    const status = vn.status ?? {};
    const spec = vn.spec ?? {};
    const now = Date.now();
    const t = this.timingsValue;

    switch (status.phase ?? '') {
      case '':
        return this.patchStatus(vn, { phase: 'Pending', observedGeneration: vn.metadata.generation });

      case 'Pending': {
        // A data cause staged on this VPSieNode: write it before the VM is asked for.
        const own = this.vnStages.get(name);
        if (own && own === rec.stage && DATA_SCENARIOS.has(own.scenario) && !own.dataWritten) {
          own.dataWritten = true;
          const patch = this.stagedData(own, spec);
          if (patch) return this.patchSpec(vn, patch);
        }
        vn = await this.patchStatus(vn, {
          phase: 'Provisioning',
          createdAt: iso(now),
          conditions: setCondition(
            status.conditions,
            'VPSReady',
            'False',
            'Provisioning',
            'VM is being created',
          ),
        });
        await this.event(vn, 'Normal', 'Provisioning', `Provisioning VPS for VPSieNode ${name}`);
        this.log('INFO', 'vpsienode', `provisioning VPSieNode ${name}`, this.fields(vn));
        return this.createVM(vn, rec);
      }

      case 'Provisioning': {
        const id = spec.vpsieInstanceID ?? 0;
        if (id === 0) {
          const started = parseTime(status.createdAt) ?? now;
          if (now - started > t.provisioningTimeoutMs) return this.provisioningTimeout(vn);
          return this.createVM(vn, rec);
        }
        let vm = this.vpsie.getVM(id);
        if (!vm) return this.fail(vn, 'VPSieAPIError', `VM ${id} not found in VPSie (HTTP 404)`);
        rec.vmBootAt ??= now + t.vmBootMs;
        if (vm.status === 'provisioning' && rec.scenario !== 'stuck-provisioning' && now >= rec.vmBootAt) {
          vm = this.vpsie.setVMStatus(id, 'running');
        }
        if (vm.status === 'running') {
          vn = await this.patchStatus(vn, {
            phase: 'Provisioned',
            provisionedAt: iso(now),
            vpsieStatus: vm.status,
            conditions: setCondition(
              status.conditions,
              'VPSReady',
              'True',
              'Provisioned',
              `VM ${id} is running`,
            ),
          });
          await this.event(vn, 'Normal', 'Provisioned', `VM ${id} is running (${vm.default_ip})`);
          this.log('INFO', 'vpsienode', `VM ${id} for VPSieNode ${name} is running`, this.fields(vn));
          return vn;
        }
        if (vm.status === 'error') return this.fail(vn, 'VPSieAPIError', `VM ${id} is in state error`);
        const started = parseTime(status.createdAt) ?? now;
        if (now - started > t.provisioningTimeoutMs) return this.provisioningTimeout(vn);
        if (status.vpsieStatus !== vm.status) return this.patchStatus(vn, { vpsieStatus: vm.status });
        return undefined;
      }

      case 'Provisioned': {
        const nodeName = spec.nodeName || name;
        vn = await this.patchStatus(vn, {
          phase: 'Joining',
          conditions: setCondition(
            status.conditions,
            'NodeJoined',
            'False',
            'Joining',
            `waiting for node ${nodeName}`,
          ),
        });
        await this.event(vn, 'Normal', 'Joining', `Waiting for node ${nodeName} to join the cluster`);
        this.log(
          'INFO',
          'vpsienode',
          `waiting for node ${nodeName} of VPSieNode ${name} to join`,
          this.fields(vn),
        );
        return vn;
      }

      case 'Joining':
        return this.joining(vn, rec, nodes);

      case 'Ready':
        return undefined;

      default:
        // Failed (the runbook's to handle), Terminating/Deleting without deletionTimestamp, unknown phases.
        return undefined;
    }
  }

  /** The spec patch that stages a data scenario, or undefined when the data is already wrong. */
  private stagedData(stage: StageEntry, spec: { kubernetesVersion?: string; sshKeyIDs?: string[] }) {
    if (stage.scenario === 'version-mismatch') {
      if (spec.kubernetesVersion && !this.versionJoins(spec.kubernetesVersion)) return undefined;
      return { kubernetesVersion: stage.options.kubernetesVersion ?? this.wrongVersion() };
    }
    if (stage.scenario === 'unknown-ssh-keys') {
      if (this.unknownKeys(spec.sshKeyIDs).length > 0) return undefined;
      return { sshKeyIDs: stage.options.sshKeyIDs ?? [`sshkey-${rand(8)}`] };
    }
    return undefined;
  }

  private wrongVersion(): string {
    const [major, minor] = majorMinor(this.clusterVersion) ?? [1, 34];
    return `v${major}.${Math.max(0, minor - 4)}.0`;
  }

  private versionJoins(version: string | undefined): boolean {
    if (!version || this.versionPolicy === 'any') return true;
    const node = majorMinor(version);
    const cluster = majorMinor(this.clusterVersion);
    if (!node || !cluster) return true;
    if (node[0] !== cluster[0]) return false;
    if (this.versionPolicy === 'same-minor') return node[1] === cluster[1];
    return node[1] <= cluster[1] && node[1] >= cluster[1] - 3;
  }

  private unknownKeys(ids: string[] | undefined): string[] {
    const keys = this.vpsie.sshKeysList();
    return (ids ?? []).filter((id) => !keys.some((k) => String(k.id) === id || k.identifier === id));
  }

  /** Asks VPSie for the VM; on failure the VPSieNode goes Failed with VPSieAPIError. */
  private async createVM(vn: VPSieNodeObj, rec: NodeRecord): Promise<VPSieNodeObj | undefined> {
    const name = vn.metadata.name;
    const spec = vn.spec ?? {};
    const existing = spec.vpsieInstanceID ? this.vpsie.getVM(spec.vpsieInstanceID) : undefined;
    if (existing) return undefined; // adopted: a VM is already there

    let error: string | undefined;
    const offerings = this.vpsie.offeringsList();
    const datacenters = this.vpsie.datacentersList();
    const images = this.vpsie.imagesList();
    const offering = spec.instanceType
      ? offerings.find((o) => String(o.id) === spec.instanceType)
      : offerings[0];
    const datacenter = spec.datacenterID
      ? datacenters.find((d) => String(d.id) === spec.datacenterID)
      : datacenters[0];
    const image = spec.osImageID ? images.find((i) => String(i.id) === spec.osImageID) : images[0];
    if (rec.scenario === 'vm-creation-fails') {
      error = rec.stage?.options.error ?? 'HTTP 500: Internal server error';
    } else if (this.validateCatalog) {
      const quota = this.vpsie.quota();
      if (!offering) error = `HTTP 404: Offering ${spec.instanceType} not found`;
      else if (!datacenter) error = `HTTP 404: Datacenter ${spec.datacenterID} not found`;
      else if (!image) error = `HTTP 404: Image ${spec.osImageID} not found`;
      else if (quota.vms.used >= quota.vms.limit)
        error = `HTTP 422: VM quota exceeded (${quota.vms.used}/${quota.vms.limit})`;
    }
    if (error) {
      const message = `failed to create VM: ${error}`;
      this.log('ERROR', 'vpsienode', message, { ...this.fields(vn), error });
      await this.event(vn, 'Warning', 'VPSieAPIError', message);
      return this.fail(vn, 'VPSieAPIError', message);
    }

    const nodeName = spec.nodeName || name;
    const ng = spec.nodeGroupName ?? vn.metadata.labels?.[LABEL_NODEGROUP];
    const vm = this.vpsie.addVM({
      name,
      hostname: nodeName,
      status: 'provisioning',
      ...(offering
        ? { boxsize_id: offering.id, cpu: offering.cpu, ram: offering.ram, ssd: offering.disk }
        : {}),
      ...(datacenter ? { datacenter_id: datacenter.id } : {}),
      ...(image ? { os_name: image.name.split(' ')[0], os_version: image.version } : {}),
      tags: this.vmTags(name, ng, spec.resourceIdentifier, []),
      notes: this.vmNotes(name),
    });
    rec.vmBootAt = Date.now() + this.timingsValue.vmBootMs;
    this.log('INFO', 'vpsienode', `created VM ${vm.id} for VPSieNode ${name}`, {
      ...this.fields(vn),
      vmID: vm.id,
    });
    const unknown = this.unknownKeys(spec.sshKeyIDs);
    if (unknown.length > 0) {
      this.log(
        'WARN',
        'vpsienode',
        `SSH key(s) ${unknown.join(', ')} not found in the VPSie account: VM ${vm.id} created without them`,
        this.fields(vn),
      );
    }
    vn = await this.patchSpec(vn, {
      vpsieInstanceID: vm.id,
      nodeName,
      ...(vm.default_ip ? { ipAddress: vm.default_ip } : {}),
      ...(vm.default_ipv6 ? { ipv6Address: vm.default_ipv6 } : {}),
    });
    vn = await this.patchMeta(vn, { annotations: { [ANNOTATION_VPS_ID]: String(vm.id) } });
    return this.patchStatus(vn, {
      vpsieStatus: vm.status,
      hostname: vm.hostname,
      resources: { cpu: vm.cpu, memoryMB: vm.ram, diskGB: vm.ssd },
      observedGeneration: vn.metadata.generation,
    });
  }

  private async joining(
    vn: VPSieNodeObj,
    rec: NodeRecord,
    nodes: Map<string, V1Node>,
  ): Promise<VPSieNodeObj | undefined> {
    const name = vn.metadata.name;
    const spec = vn.spec ?? {};
    const status = vn.status ?? {};
    const nodeName = spec.nodeName || name;
    const now = Date.now();
    const t = this.timingsValue;
    const provisionedAt = parseTime(status.provisionedAt) ?? now;
    const node = nodes.get(nodeName);

    if (!node) {
      const vm = spec.vpsieInstanceID ? this.vpsie.getVM(spec.vpsieInstanceID) : undefined;
      if (vm?.status === 'running' && now >= provisionedAt + t.nodeRegisterMs) {
        const version = spec.kubernetesVersion || this.clusterVersion;
        const blockedByKeys =
          rec.scenario === 'unknown-ssh-keys' && this.unknownKeys(spec.sshKeyIDs).length > 0;
        if (!this.versionJoins(version)) {
          if (!rec.joinFailureReported) {
            rec.joinFailureReported = true;
            const message =
              `node ${nodeName} failed to join: version mismatch: kubelet ${version} does not match the control ` +
              `plane version ${this.clusterVersion}`;
            this.log('ERROR', 'vpsienode', message, { ...this.fields(vn), kubeletVersion: version });
            return this.patchStatus(vn, {
              lastError: message,
              conditions: setCondition(status.conditions, 'NodeJoined', 'False', 'Joining', message),
            });
          }
        } else if (rec.scenario !== 'never-registers' && !blockedByKeys) {
          await this.registerNode(vn, vm, nodeName, version, false);
          rec.nodeRegisteredAt = now;
          return undefined;
        }
      }
      if (now - provisionedAt > t.joiningTimeoutMs) {
        const message = `node ${nodeName} did not join within ${Math.round(t.joiningTimeoutMs / 1000)}s`;
        this.log('ERROR', 'vpsienode', message, this.fields(vn));
        await this.event(vn, 'Warning', 'JoiningTimeout', message);
        return this.fail(vn, 'JoiningTimeout', message);
      }
      return undefined;
    }

    // The kubelet becomes Ready a moment after registering.
    const ready = (node.status?.conditions ?? []).find((c) => c.type === 'Ready');
    if (ready?.status !== 'True' && now >= (rec.nodeRegisteredAt ?? now) + t.nodeReadyMs) {
      await this.setNodeReady(nodeName);
      return undefined;
    }
    if (!status.joinedAt) {
      vn = await this.patchStatus(vn, {
        nodeName,
        joinedAt: iso(now),
        conditions: setCondition(
          status.conditions,
          'NodeJoined',
          'True',
          'Joined',
          `node ${nodeName} registered`,
        ),
      });
      await this.event(vn, 'Normal', 'Joined', `Node ${nodeName} joined the cluster`);
      this.log('INFO', 'vpsienode', `node ${nodeName} of VPSieNode ${name} joined`, this.fields(vn));
      return vn;
    }
    if (ready?.status === 'True') {
      vn = await this.patchStatus(vn, {
        phase: 'Ready',
        readyAt: iso(now),
        conditions: setCondition(
          status.conditions,
          'NodeReady',
          'True',
          'Ready',
          `node ${nodeName} is Ready`,
        ),
      });
      await this.event(vn, 'Normal', 'Ready', `Node ${nodeName} is Ready`);
      this.log('INFO', 'vpsienode', `VPSieNode ${name} is Ready`, this.fields(vn));
      return undefined;
    }
    return undefined;
  }

  private async provisioningTimeout(vn: VPSieNodeObj): Promise<VPSieNodeObj> {
    const t = this.timingsValue;
    const message = `VM was not provisioned within ${Math.round(t.provisioningTimeoutMs / 1000)}s`;
    this.log('ERROR', 'vpsienode', `VPSieNode ${vn.metadata.name}: ${message}`, this.fields(vn));
    await this.event(vn, 'Warning', 'ProvisioningTimeout', message);
    return this.fail(vn, 'ProvisioningTimeout', message);
  }

  private async fail(vn: VPSieNodeObj, reason: string, message: string): Promise<VPSieNodeObj> {
    let conditions = setCondition(vn.status?.conditions, 'Error', 'True', reason, message);
    if (reason === 'VPSieAPIError' || reason === 'ProvisioningTimeout')
      conditions = setCondition(conditions, 'VPSReady', 'False', reason, message);
    if (reason === 'JoiningTimeout')
      conditions = setCondition(conditions, 'NodeJoined', 'False', reason, message);
    vn = await this.patchStatus(vn, { phase: 'Failed', lastError: message, conditions });
    await this.event(vn, 'Warning', 'Failed', `VPSieNode ${vn.metadata.name} failed: ${message}`);
    this.log('ERROR', 'vpsienode', `VPSieNode ${vn.metadata.name} failed: ${message}`, {
      ...this.fields(vn),
      reason,
    });
    return vn;
  }

  /** Terminating: delete the Node, terminate the VM, then Deleting and remove the finalizer. */
  private async reconcileDeletion(
    vn: VPSieNodeObj,
    rec: NodeRecord,
    nodes: Map<string, V1Node>,
  ): Promise<VPSieNodeObj | undefined> {
    if (!(vn.metadata.finalizers ?? []).includes(FINALIZER)) return vn;
    const name = vn.metadata.name;
    const id = vn.spec?.vpsieInstanceID ?? 0;
    const now = Date.now();
    if (!rec.deletion) {
      rec.deletion = { startedAt: now };
      vn = await this.patchStatus(vn, { phase: 'Terminating', terminatingAt: iso(now) });
      await this.event(
        vn,
        'Normal',
        'Terminating',
        `Terminating VPSieNode ${name}${id ? ` (VM ${id})` : ''}`,
      );
      this.log('INFO', 'vpsienode', `terminating VPSieNode ${name}`, { ...this.fields(vn), vmID: id });
      const nodeName = vn.status?.nodeName || vn.spec?.nodeName || name;
      if (nodes.get(nodeName)?.metadata?.labels?.[LABEL_VPSIENODE] === name) {
        await this.core.deleteNode({ name: nodeName }).catch((err: unknown) => {
          if (statusOf(err) !== 404) throw err;
        });
        this.log('INFO', 'vpsienode', `deleted node ${nodeName}`, this.fields(vn));
      }
    }
    if (id && this.vpsie.hasVM(id)) {
      if (now < rec.deletion.startedAt + this.timingsValue.vmTerminateMs) return vn;
      if (rec.scenario === 'vm-delete-fails') {
        if (!rec.deletion.deleteFailureReported) {
          rec.deletion.deleteFailureReported = true;
          const message = `failed to delete VM ${id}: HTTP 500: Internal server error`;
          this.log('ERROR', 'vpsienode', message, this.fields(vn));
          await this.event(vn, 'Warning', 'VPSDeleteFailed', message);
          vn = await this.patchStatus(vn, { lastError: message });
        }
        return vn;
      }
      this.vpsie.removeVM(id);
      this.log('INFO', 'vpsienode', `terminated VM ${id} of VPSieNode ${name}`, this.fields(vn));
    }
    vn = await this.patchStatus(vn, { phase: 'Deleting', deletedAt: iso() });
    await this.event(vn, 'Normal', 'Deleting', `VM ${id || '(none)'} terminated; removing finalizer`);
    await this.patchMeta(vn, { finalizers: (vn.metadata.finalizers ?? []).filter((f) => f !== FINALIZER) });
    this.log('INFO', 'vpsienode', `removed finalizer of VPSieNode ${name}`, this.fields(vn));
    return undefined;
  }

  // ------------------------------------------------------------------------------------------------------
  // kubelet

  private async registerNode(
    vn: VPSieNodeObj,
    vm: SimVM,
    nodeName: string,
    version: string,
    ready: boolean,
  ): Promise<void> {
    const ng = vn.spec?.nodeGroupName ?? vn.metadata.labels?.[LABEL_NODEGROUP] ?? '';
    const ngObj = ng ? await this.getNodeGroup(ng) : undefined;
    const labels: Record<string, string> = {
      ...(ngObj?.spec?.labels ?? {}),
      'kubernetes.io/hostname': nodeName,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'node.kubernetes.io/instance-type': String(vm.boxsize_id),
      [LABEL_MANAGED]: 'true',
      [LABEL_NODEGROUP]: ng,
      [LABEL_VPSIENODE]: vn.metadata.name,
      [LABEL_DATACENTER]: String(vm.datacenter_id),
      [LABEL_OFFERING]: String(vm.boxsize_id),
      [LABEL_SIMULATOR]: this.id,
    };
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: nodeName, labels, annotations: { [ANNOTATION_VPS_ID]: String(vm.id) } },
      spec: {
        providerID: `vpsie://${vm.id}`,
        ...(ngObj?.spec?.taints?.length ? { taints: ngObj.spec.taints } : {}),
      },
    };
    try {
      await this.core.createNode({ body });
    } catch (err) {
      if (statusOf(err) === 409)
        throw new Error(`kubelet: Node ${nodeName} exists already (use unique node names)`);
      throw err;
    }
    const now = iso();
    await this.core.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            addresses: [
              ...(vm.default_ip ? [{ type: 'InternalIP', address: vm.default_ip }] : []),
              { type: 'Hostname', address: nodeName },
            ],
            capacity: {
              cpu: String(vm.cpu),
              memory: `${vm.ram}Mi`,
              pods: '110',
              'ephemeral-storage': `${vm.ssd}Gi`,
            },
            allocatable: {
              cpu: String(vm.cpu),
              memory: `${vm.ram}Mi`,
              pods: '110',
              'ephemeral-storage': `${vm.ssd}Gi`,
            },
            conditions: nodeConditions(ready, now),
            daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
            nodeInfo: {
              architecture: 'amd64',
              bootID: vm.identifier,
              containerRuntimeVersion: 'containerd://1.7.22',
              kernelVersion: '5.15.0-122-generic',
              kubeProxyVersion: version,
              kubeletVersion: version,
              machineID: vm.identifier.replace(/-/g, ''),
              operatingSystem: 'linux',
              osImage: `${vm.os_name} ${vm.os_version}`,
              systemUUID: vm.identifier,
            },
          },
        },
      },
      MERGE,
    );
    this.log('INFO', 'vpsienode', `node ${nodeName} registered (kubelet ${version})`, {
      namespace: vn.metadata.namespace,
      vpsienode: vn.metadata.name,
    });
  }

  private async setNodeReady(nodeName: string): Promise<void> {
    await this.core.patchNodeStatus(
      { name: nodeName, body: { status: { conditions: nodeConditions(true, iso()) } } },
      MERGE,
    );
  }

  // ------------------------------------------------------------------------------------------------------
  // NodeGroup controller

  private async reconcileNodeGroup(ng: NodeGroupObj, vns: VPSieNodeObj[]): Promise<void> {
    const name = ng.metadata.name;
    const stage = this.ngStages.get(name);
    if (stage && DATA_SCENARIOS.has(stage.scenario) && !stage.dataWritten) {
      stage.dataWritten = true;
      const patch = this.stagedData(stage, ng.spec ?? {});
      if (patch) {
        ng = (await this.custom.patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            namespace: this.namespace,
            plural: 'nodegroups',
            name,
            body: { spec: patch },
          },
          MERGE,
        )) as NodeGroupObj;
      }
    }

    const children = vns.filter(
      (v) => (v.spec?.nodeGroupName ?? v.metadata.labels?.[LABEL_NODEGROUP]) === name,
    );
    const annotations = JSON.stringify(ng.metadata.annotations ?? {});
    const childrenKey = children
      .map((v) => `${v.metadata.name}:${v.metadata.deletionTimestamp ? 'deleting' : (v.status?.phase ?? '')}`)
      .sort()
      .join(',');
    const prev = this.nodeGroups.get(name);
    const stalled = this.stalled.has(name);
    const now = Date.now();
    let reason: NodeGroupReconcile['reason'] | undefined;
    if (!prev) reason = 'created';
    else if (prev.generation !== ng.metadata.generation) reason = 'spec-changed';
    else if (prev.annotations !== annotations) reason = 'annotations-changed';
    else if (!stalled && prev.children !== childrenKey) reason = 'vpsienodes-changed';
    else if (now - prev.lastReconcileAt >= this.timingsValue.nodeGroupResyncMs) reason = 'resync';
    if (!reason) return;

    const trigger = ng.metadata.annotations?.[RECONCILE_TRIGGER];
    const record: NodeGroupReconcile = {
      nodeGroup: name,
      reason,
      created: [],
      at: new Date(now),
      ...(trigger ? { trigger } : {}),
    };
    this.reconciles.push(record);
    this.log('INFO', 'nodegroup', `reconciling NodeGroup ${name}`, {
      namespace: this.namespace,
      nodegroup: name,
      reason,
      ...(trigger ? { trigger } : {}),
    });

    const spec = ng.spec ?? {};
    const active = children.filter((v) => !v.metadata.deletionTimestamp);
    const max = spec.maxNodes ?? Infinity;
    const desired = Math.min(this.desired.get(name) ?? spec.minNodes ?? 0, max);
    const createdNow: VPSieNodeObj[] = [];
    for (let i = active.length; i < desired; i++) {
      const created = await this.createVPSieNode(ng);
      record.created.push(created.metadata.name);
      createdNow.push(created);
      await this.event(
        ng,
        'Normal',
        'ScalingUp',
        `Created VPSieNode ${created.metadata.name} (${i + 1}/${desired} nodes)`,
        'NodeGroup',
      );
    }
    const all = [...active, ...createdNow];
    const ready = all.filter((v) => v.status?.phase === 'Ready').length;
    const prevStatus = ng.status ?? {};
    let conditions = setCondition(
      prevStatus.conditions,
      'Ready',
      ready >= desired ? 'True' : 'False',
      ready >= desired ? 'NodesReady' : 'NodesNotReady',
      `${ready}/${desired} nodes ready`,
    );
    conditions = setCondition(
      conditions,
      'AtMinCapacity',
      all.length <= (spec.minNodes ?? 0) ? 'True' : 'False',
      'Capacity',
      `${all.length} nodes, min ${spec.minNodes ?? 0}`,
    );
    const failed = all.filter((v) => v.status?.phase === 'Failed').map((v) => v.metadata.name);
    conditions = setCondition(
      conditions,
      'Error',
      failed.length ? 'True' : 'False',
      failed.length ? 'NodesFailed' : 'NoError',
      failed.length ? `failed VPSieNodes: ${failed.join(', ')}` : 'no failed nodes',
    );
    const status = {
      currentNodes: all.length,
      desiredNodes: desired,
      readyNodes: ready,
      nodes: all.map((v) => ({
        nodeName: v.status?.nodeName || v.spec?.nodeName || v.metadata.name,
        vpsID: v.spec?.vpsieInstanceID ?? 0,
        instanceType: v.spec?.instanceType ?? '',
        status: v.status?.phase ?? 'Pending',
      })),
      conditions,
      observedGeneration: ng.metadata.generation,
      ...(createdNow.length ? { lastScaleTime: iso(now) } : {}),
    };
    await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'nodegroups',
        name,
        body: { status },
      },
      MERGE,
    );
    const childKeyAfter = createdNow.length
      ? [...children, ...createdNow]
          .map(
            (v) =>
              `${v.metadata.name}:${v.metadata.deletionTimestamp ? 'deleting' : (v.status?.phase ?? '')}`,
          )
          .sort()
          .join(',')
      : childrenKey;
    this.nodeGroups.set(name, {
      generation: ng.metadata.generation,
      annotations,
      children: childKeyAfter,
      lastReconcileAt: now,
      stalled,
    });
  }

  private async createVPSieNode(ng: NodeGroupObj): Promise<VPSieNodeObj> {
    const spec = ng.spec ?? {};
    const ngName = ng.metadata.name;
    const name = `${ngName}-${rand(5)}`;
    const instanceType = spec.preferredInstanceType || spec.offeringIDs?.[0] || '';
    const stage = this.ngStages.get(ngName);
    if (stage && !DATA_SCENARIOS.has(stage.scenario) && stage.remaining > 0 && !this.vnStages.has(name)) {
      stage.remaining -= 1;
      this.vnStages.set(name, stage);
    }
    const labels: Record<string, string> = { [LABEL_MANAGED]: 'true', [LABEL_NODEGROUP]: ngName };
    if (spec.datacenterID) labels[LABEL_DATACENTER] = spec.datacenterID;
    if (instanceType) labels[LABEL_OFFERING] = instanceType;
    const body = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'VPSieNode',
      metadata: {
        name,
        namespace: this.namespace,
        labels,
        ownerReferences: [
          {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: 'NodeGroup',
            name: ngName,
            uid: ng.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        vpsieInstanceID: 0,
        instanceType,
        nodeGroupName: ngName,
        ...(spec.datacenterID ? { datacenterID: spec.datacenterID } : {}),
        ...(spec.resourceIdentifier ? { resourceIdentifier: spec.resourceIdentifier } : {}),
        ...(spec.project ? { project: spec.project } : {}),
        ...(spec.osImageID ? { osImageID: spec.osImageID } : {}),
        ...(spec.kubernetesVersion ? { kubernetesVersion: spec.kubernetesVersion } : {}),
        sshKeyIDs: spec.sshKeyIDs ?? [],
        nodeName: name,
      },
    };
    const created = (await this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'vpsienodes',
      body,
    })) as VPSieNodeObj;
    this.log('INFO', 'nodegroup', `created VPSieNode ${name} for NodeGroup ${ngName}`, {
      namespace: this.namespace,
      nodegroup: ngName,
      vpsienode: name,
    });
    return created;
  }

  private async getNodeGroup(name: string): Promise<NodeGroupObj | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'nodegroups',
        name,
      })) as NodeGroupObj;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------------------
  // The controller's pod, node and logs

  private async registerController(kubeletPort: number): Promise<void> {
    const ns = this.controllerNamespace;
    const hash = rand(10);
    const nodeName = `controller-node-${this.id}`;
    const rsName = `${CONTROLLER_DEPLOYMENT}-${hash}`;
    const podName = `${rsName}-${this.id.slice(0, 5)}`;
    const podLabels = { ...CONTROLLER_POD_LABELS, 'pod-template-hash': hash, [LABEL_SIMULATOR]: this.id };
    const container = { name: CONTROLLER_CONTAINER, image: 'ghcr.io/vpsie/vpsie-k8s-autoscaler:v0.0.0-sim' };

    await this.core.createNode({
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: nodeName,
          labels: {
            'kubernetes.io/hostname': nodeName,
            'kubernetes.io/os': 'linux',
            'node-role.kubernetes.io/control-plane': '',
            [LABEL_SIMULATOR]: this.id,
          },
        },
      },
    });
    const now = iso();
    await this.core.patchNodeStatus(
      {
        name: nodeName,
        body: {
          status: {
            // Only an InternalIP: the apiserver's default address preference (Hostname first) would otherwise
            // try to resolve the node's name.
            addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
            daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
            conditions: nodeConditions(true, now),
            capacity: { cpu: '4', memory: '8Gi', pods: '110' },
            allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
            nodeInfo: {
              architecture: 'amd64',
              bootID: this.id,
              containerRuntimeVersion: 'containerd://1.7.22',
              kernelVersion: '5.15.0-122-generic',
              kubeProxyVersion: this.clusterVersion,
              kubeletVersion: this.clusterVersion,
              machineID: this.id,
              operatingSystem: 'linux',
              osImage: 'Ubuntu 22.04',
              systemUUID: this.id,
            },
          },
        },
      },
      MERGE,
    );

    // The Deployment is shared by every simulator on this apiserver (parallel test files): create when absent.
    let deploymentUid: string | undefined;
    try {
      const d = await this.apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          metadata: { name: CONTROLLER_DEPLOYMENT, namespace: ns, labels: { ...CONTROLLER_POD_LABELS } },
          spec: {
            replicas: 1,
            selector: { matchLabels: { ...CONTROLLER_POD_LABELS } },
            template: {
              metadata: { labels: { ...CONTROLLER_POD_LABELS } },
              spec: { containers: [container] },
            },
          },
        },
      });
      deploymentUid = d.metadata?.uid;
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      const d = await this.apps.readNamespacedDeployment({ namespace: ns, name: CONTROLLER_DEPLOYMENT });
      deploymentUid = d.metadata?.uid;
    }
    const rs = await this.apps.createNamespacedReplicaSet({
      namespace: ns,
      body: {
        metadata: {
          name: rsName,
          namespace: ns,
          labels: podLabels,
          ownerReferences: deploymentUid
            ? [
                {
                  apiVersion: 'apps/v1',
                  kind: 'Deployment',
                  name: CONTROLLER_DEPLOYMENT,
                  uid: deploymentUid,
                  controller: true,
                },
              ]
            : [],
        },
        spec: {
          replicas: 1,
          selector: { matchLabels: podLabels },
          template: { metadata: { labels: podLabels }, spec: { containers: [container] } },
        },
      },
    });
    await this.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: {
          name: podName,
          namespace: ns,
          labels: podLabels,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: rsName,
              uid: rs.metadata?.uid ?? '',
              controller: true,
            },
          ],
        },
        spec: { nodeName, containers: [container], terminationGracePeriodSeconds: 0 },
      },
    });
    this.pod = {
      namespace: ns,
      name: podName,
      container: CONTROLLER_CONTAINER,
      nodeName,
      replicaSet: rsName,
      labels: podLabels,
    };
    await this.core.patchNamespacedPodStatus(
      {
        namespace: ns,
        name: podName,
        body: {
          status: {
            phase: 'Running',
            hostIP: '127.0.0.1',
            podIP: '10.244.0.10',
            startTime: now,
            conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
              type,
              status: 'True',
              lastTransitionTime: now,
            })),
            containerStatuses: [
              {
                name: CONTROLLER_CONTAINER,
                image: container.image,
                imageID: `${container.image}@sha256:${'0'.repeat(64)}`,
                ready: true,
                started: true,
                restartCount: 0,
                state: { running: { startedAt: now } },
              },
            ],
          },
        },
      },
      MERGE,
    );
    this.kubelet.addContainer(ns, podName, CONTROLLER_CONTAINER);
    for (const line of this.logLines) this.kubelet.append(ns, podName, CONTROLLER_CONTAINER, line);
  }

  /** A zap-style line, as controller-runtime prints: time, level, logger, message, JSON fields. */
  private log(level: string, logger: string, message: string, fields: Record<string, unknown>): void {
    this.appendLog(`${iso()}\t${level}\t${logger}\t${message}\t${JSON.stringify(fields)}`);
  }

  private fields(vn: VPSieNodeObj): Record<string, unknown> {
    return { namespace: vn.metadata.namespace ?? this.namespace, vpsienode: vn.metadata.name };
  }

  private vmTags(name: string, nodeGroup: string | undefined, cluster: string | undefined, extra: string[]) {
    return [
      'vpsie-autoscaler',
      `namespace:${this.namespace}`,
      `vpsienode:${name}`,
      ...(nodeGroup ? [`nodegroup:${nodeGroup}`] : []),
      ...(cluster ? [`cluster:${cluster}`] : []),
      ...extra,
    ];
  }

  private vmNotes(name: string): string {
    return `Managed by vpsie-k8s-autoscaler: VPSieNode ${this.namespace}/${name}`;
  }

  // ------------------------------------------------------------------------------------------------------
  // API writes

  private async patchStatus(vn: VPSieNodeObj, status: Record<string, unknown>): Promise<VPSieNodeObj> {
    return (await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: vn.metadata.namespace ?? this.namespace,
        plural: 'vpsienodes',
        name: vn.metadata.name,
        body: { status },
      },
      MERGE,
    )) as VPSieNodeObj;
  }

  private async patchSpec(vn: VPSieNodeObj, spec: Record<string, unknown>): Promise<VPSieNodeObj> {
    return (await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: vn.metadata.namespace ?? this.namespace,
        plural: 'vpsienodes',
        name: vn.metadata.name,
        body: { spec },
      },
      MERGE,
    )) as VPSieNodeObj;
  }

  /** Metadata patch guarded by resourceVersion (a concurrent change answers 409; the next tick retries). */
  private async patchMeta(
    vn: VPSieNodeObj,
    metadata: Record<string, unknown>,
    spec?: Record<string, unknown>,
  ): Promise<VPSieNodeObj> {
    return (await this.custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace: vn.metadata.namespace ?? this.namespace,
        plural: 'vpsienodes',
        name: vn.metadata.name,
        body: {
          metadata: { ...metadata, resourceVersion: vn.metadata.resourceVersion },
          ...(spec ? { spec } : {}),
        },
      },
      MERGE,
    )) as VPSieNodeObj;
  }

  /** An Event as client-go's recorder writes it (name `<object>.<hex time>`), plus a microsecond eventTime. */
  private async event(
    obj: { metadata: Meta },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    kind = 'VPSieNode',
  ): Promise<void> {
    const now = new Date();
    const ns = obj.metadata.namespace ?? this.namespace;
    const suffix = (BigInt(now.getTime()) * 1_000_000n + BigInt(this.eventSeq++ % 1_000_000)).toString(16);
    const body: CoreV1Event = {
      metadata: { name: `${obj.metadata.name}.${suffix}`, namespace: ns },
      involvedObject: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind,
        name: obj.metadata.name,
        namespace: ns,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: kind === 'VPSieNode' ? 'vpsienode-controller' : 'nodegroup-controller' },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      eventTime: new V1MicroTime(now.getTime()),
      action: reason,
      reportingComponent: 'vpsie-autoscaler',
      reportingInstance: this.pod?.name ?? 'vpsie-autoscaler',
    };
    try {
      await this.core.createNamespacedEvent({ namespace: ns, body });
    } catch (err) {
      this.error(`event ${reason} for ${kind} ${obj.metadata.name}`, err);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/** Sets one condition, keeping lastTransitionTime when the status does not change. */
function setCondition(
  conditions: Condition[] | undefined,
  type: string,
  status: string,
  reason: string,
  message: string,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type,
    status,
    reason,
    message,
    lastTransitionTime:
      prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : iso(),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

function nodeConditions(ready: boolean, now: string): V1NodeCondition[] {
  const at = now as unknown as Date; // client-node's Date fields pass strings through unchanged
  return [
    ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({
      type,
      status: 'False',
      reason: `KubeletHasNo${type}`,
      message: `kubelet has no ${type}`,
      lastHeartbeatTime: at,
      lastTransitionTime: at,
    })),
    {
      type: 'Ready',
      status: ready ? 'True' : 'False',
      reason: ready ? 'KubeletReady' : 'KubeletNotReady',
      message: ready ? 'kubelet is posting ready status' : 'container runtime network not ready',
      lastHeartbeatTime: at,
      lastTransitionTime: at,
    },
  ];
}

/** The canonical order of the phases a healthy VPSieNode goes through. */
export const HEALTHY_PHASES: readonly string[] = PHASE_ORDER;
