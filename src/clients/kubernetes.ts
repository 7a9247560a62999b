import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  VersionApi,
  type CoreV1Event,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { delimiter } from 'node:path';
import {
  toEventSummary,
  type ClusterVersion,
  type ControllerPodLog,
  type NodeGroupRef,
  type VPSieNodeRef,
} from '../runbook';

export const AUTOSCALER_GROUP = 'autoscaler.vpsie.com';
export const AUTOSCALER_VERSION = 'v1alpha1';

/** Where the vpsie-k8s-autoscaler runs (runbook step 3: `kubectl logs -n kube-system deployment/vpsie-autoscaler`). */
export const CONTROLLER_NAMESPACE = 'kube-system';
export const CONTROLLER_DEPLOYMENT = 'vpsie-autoscaler';

export interface KubernetesSettings {
  /** Path to a kubeconfig; unset means the usual search (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeconfig?: string;
  /** Context to use from the kubeconfig; unset means its current context. */
  context?: string;
}

/** A Kubernetes API answer the runbook can act on: status code and the server's own message. */
export class KubernetesApiError extends Error {
  override name = 'KubernetesApiError';
  constructor(
    readonly status: number,
    readonly operation: string,
    serverMessage: string,
  ) {
    super(`${operation}: HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`);
  }
  /**
   * 400/401/403/404/409/422 will not change by retrying; anything else (5xx, 429, network) may. 409 is a failed
   * precondition (UID or resourceVersion): the object is no longer the one that was diagnosed.
   */
  get permanent(): boolean {
    return [400, 401, 403, 404, 409, 422].includes(this.status);
  }
}

function serverMessage(body: unknown): string {
  if (typeof body === 'string') {
    try {
      return serverMessage(JSON.parse(body));
    } catch {
      return body.slice(0, 300);
    }
  }
  const m = (body as { message?: unknown } | null)?.message;
  return typeof m === 'string' ? m : '';
}

export function loadKubeConfig(settings: KubernetesSettings): KubeConfig {
  const kc = new KubeConfig();
  // A KUBECONFIG list (a:b) is merged by the client's own default loader, which reads the variable itself.
  if (settings.kubeconfig && !settings.kubeconfig.includes(delimiter)) kc.loadFromFile(settings.kubeconfig);
  else kc.loadFromDefault();
  if (settings.context) kc.setCurrentContext(settings.context);
  return kc;
}

/** Which deployment's pods are the controller's (defaults: kube-system/vpsie-autoscaler). */
export interface ControllerSelector {
  namespace?: string;
  deployment?: string;
}

export interface ControllerLogOptions extends ControllerSelector {
  /** Lines read from the end of each pod's log before filtering (`kubectl logs --tail`); default 200. */
  tailLines?: number;
  /** Keeps only the lines it matches (`| grep -i ...`); unset keeps every line. */
  filter?: RegExp;
}

export type DeleteResult = 'deleted' | 'already-gone';

/** Only the object with this UID (and, when given, this resourceVersion) may be deleted. */
export interface DeletePrecondition {
  uid: string;
  resourceVersion?: string;
}

const DEFAULT_TAIL_LINES = 200;
/** Bound on the bytes read per pod log, whatever tailLines says. */
const LOG_LIMIT_BYTES = 1024 * 1024;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function timeOf(iso: string | null): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** Ownership of a pod by the deployment: its ReplicaSet `<deployment>-<pod-template-hash>`, else its name. */
function isControllerPod(pod: V1Pod, deployment: string): boolean {
  const owners = pod.metadata?.ownerReferences ?? [];
  const replicaSet = new RegExp(`^${escapeRegExp(deployment)}-[a-z0-9]{1,10}$`);
  if (owners.length > 0) return owners.some((o) => o.kind === 'ReplicaSet' && replicaSet.test(o.name));
  // No owner at all (not made by a Deployment as far as the API knows): its name is all there is to go by.
  return new RegExp(`^${escapeRegExp(deployment)}-[a-z0-9]{1,10}-[a-z0-9]{5}$`).test(
    pod.metadata?.name ?? '',
  );
}

/** The controller's own container when the pod has several (named like the deployment), else the first. */
function controllerContainer(pod: V1Pod, deployment: string): string | null {
  const containers = pod.spec?.containers ?? [];
  return (containers.find((c) => c.name === deployment) ?? containers[0])?.name ?? null;
}

/** The project's one door to the Kubernetes API. Credentials stay inside the KubeConfig, never in results. */
export class KubernetesClient {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly version: VersionApi;

  constructor(readonly kubeConfig: KubeConfig) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.version = kubeConfig.makeApiClient(VersionApi);
  }

  // ---- VPSieNodes (runbook step 1, "Delete and Recreate") --------------------------------------------------

  /** The raw VPSieNode object, or null when it does not exist. */
  async getVPSieNode(ref: VPSieNodeRef): Promise<unknown | null> {
    return this.orNull(
      this.call(`get vpsienode ${ref.namespace}/${ref.name}`, () =>
        this.custom.getNamespacedCustomObject({ ...this.crd('vpsienodes', ref.namespace), name: ref.name }),
      ),
    );
  }

  /** `kubectl get vpsienodes -A` (or in one namespace), optionally by label selector: the raw objects. */
  async listVPSieNodes(namespace?: string, labelSelector?: string): Promise<unknown[]> {
    const where = namespace ? `in ${namespace}` : 'in all namespaces';
    const list = await this.call(`list vpsienodes ${where}`, () =>
      namespace
        ? this.custom.listNamespacedCustomObject({ ...this.crd('vpsienodes', namespace), labelSelector })
        : this.custom.listClusterCustomObject({
            group: AUTOSCALER_GROUP,
            version: AUTOSCALER_VERSION,
            plural: 'vpsienodes',
            labelSelector,
          }),
    );
    const items = (list as { items?: unknown } | null)?.items;
    return Array.isArray(items) ? items : [];
  }

  /**
   * Deletes the VPSieNode only if it is still the object with `precondition.uid` (and resourceVersion when
   * given): the apiserver checks the preconditions atomically, so a same-named replacement is never touched.
   * 'already-gone' when nothing by that name exists (a retried delete is success). A replacement, or a changed
   * resourceVersion, makes the apiserver answer 409 Conflict, thrown as a permanent KubernetesApiError. With the
   * controller's finalizer on it, the object is only marked for deletion ('deleted' then means accepted).
   */
  async deleteVPSieNode(ref: VPSieNodeRef, precondition: DeletePrecondition): Promise<DeleteResult> {
    if (!precondition.uid)
      throw new Error('deleteVPSieNode needs the UID of the VPSieNode that was diagnosed');
    const preconditions = {
      uid: precondition.uid,
      ...(precondition.resourceVersion ? { resourceVersion: precondition.resourceVersion } : {}),
    };
    try {
      await this.call(`delete vpsienode ${ref.namespace}/${ref.name} (uid ${precondition.uid})`, () =>
        this.custom.deleteNamespacedCustomObject({
          ...this.crd('vpsienodes', ref.namespace),
          name: ref.name,
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions },
        }),
      );
      return 'deleted';
    } catch (err) {
      if (err instanceof KubernetesApiError && err.status === 404) return 'already-gone';
      throw err;
    }
  }

  // ---- Events (runbook step 2) -------------------------------------------------------------------------

  /**
   * `kubectl get events --field-selector involvedObject.name=<name> -n <namespace>`, narrowed to the kind (and
   * to the UID when given, which leaves out a deleted namesake's events), oldest first.
   */
  async listEventsFor(ref: VPSieNodeRef, kind = 'VPSieNode', uid?: string): Promise<CoreV1Event[]> {
    const fieldSelector = [
      `involvedObject.name=${ref.name}`,
      `involvedObject.kind=${kind}`,
      ...(uid ? [`involvedObject.uid=${uid}`] : []),
    ].join(',');
    const list = await this.call(`list events of ${kind} ${ref.namespace}/${ref.name}`, () =>
      this.core.listNamespacedEvent({ namespace: ref.namespace, fieldSelector }),
    );
    return list.items
      .map((event) => ({ event, at: timeOf(toEventSummary(event).lastSeen) }))
      .sort((a, b) => a.at - b.at)
      .map((e) => e.event);
  }

  // ---- Controller pods and logs (runbook step 3) --------------------------------------------------------

  /**
   * The pods of the controller's Deployment, found without reading the Deployment (the runbook's role has no
   * access to deployments): pods owned by a ReplicaSet `<deployment>-<hash>`; a pod without any owner counts
   * when its name is `<deployment>-<hash>-<suffix>`. Running pods first, then newest first.
   */
  async controllerPods(selector: ControllerSelector = {}): Promise<V1Pod[]> {
    const namespace = selector.namespace ?? CONTROLLER_NAMESPACE;
    const deployment = selector.deployment ?? CONTROLLER_DEPLOYMENT;
    const list = await this.call(`list pods in ${namespace}`, () =>
      this.core.listNamespacedPod({ namespace }),
    );
    const created = (p: V1Pod) => {
      const t = p.metadata?.creationTimestamp as unknown;
      return t instanceof Date ? t.getTime() : timeOf(typeof t === 'string' ? t : null);
    };
    return list.items
      .filter((p) => isControllerPod(p, deployment))
      .sort(
        (a, b) =>
          Number(b.status?.phase === 'Running') - Number(a.status?.phase === 'Running') ||
          created(b) - created(a),
      );
  }

  /**
   * `kubectl logs -n <namespace> deployment/<deployment> --tail=<tailLines> | grep -i <filter>`, for every pod
   * of the deployment (with leader election only one of them logs the work). A pod whose log cannot be read
   * (not scheduled, container not started, kubelet unreachable, gone meanwhile) gets `error` instead of lines.
   * Thrown: authorization failures (401/403), and a transient failure when no pod's log could be read at all.
   */
  async controllerLogs(options: ControllerLogOptions = {}): Promise<ControllerPodLog[]> {
    const namespace = options.namespace ?? CONTROLLER_NAMESPACE;
    const deployment = options.deployment ?? CONTROLLER_DEPLOYMENT;
    const tailLines = options.tailLines ?? DEFAULT_TAIL_LINES;
    // a /g or /y RegExp keeps state between test() calls: use a stateless copy
    const filter =
      options.filter && new RegExp(options.filter.source, options.filter.flags.replace(/[gy]/g, ''));
    const pods = await this.controllerPods({ namespace, deployment });
    const transient: KubernetesApiError[] = [];
    const logs = await Promise.all(
      pods.map(async (pod): Promise<ControllerPodLog> => {
        const name = pod.metadata?.name ?? '';
        const container = controllerContainer(pod, deployment);
        if (!container) return { pod: name, container: '', lines: [], error: 'pod has no containers' };
        // (the apiserver answers 200 with no body and no content type, which client-node cannot parse)
        if (!pod.spec?.nodeName)
          return {
            pod: name,
            container,
            lines: [],
            error: 'pod is not scheduled to a node yet: no log to read',
          };
        try {
          const text = await this.call(`read log of pod ${namespace}/${name} container ${container}`, () =>
            this.core.readNamespacedPodLog({
              namespace,
              name,
              container,
              tailLines,
              limitBytes: LOG_LIMIT_BYTES,
            }),
          );
          const lines = String(text ?? '')
            .split('\n')
            .filter((l) => l !== '' && (!filter || filter.test(l)));
          return { pod: name, container, lines, error: null };
        } catch (err) {
          if (!(err instanceof KubernetesApiError) || err.status === 401 || err.status === 403) throw err;
          if (!err.permanent) transient.push(err);
          return { pod: name, container, lines: [], error: err.message };
        }
      }),
    );
    if (transient.length > 0 && transient.length === logs.length) throw transient[0];
    return logs;
  }

  // ---- Nodes (runbook step 5, "Check Node Registration") ------------------------------------------------

  /** The Node, or null when no Node has that name. */
  async getNode(name: string): Promise<V1Node | null> {
    return this.orNull(this.call(`get node ${name}`, () => this.core.readNode({ name })));
  }

  /** `kubectl get nodes`, optionally by label selector (e.g. `autoscaler.vpsie.com/vpsienode=<name>`). */
  async listNodes(labelSelector?: string): Promise<V1Node[]> {
    const list = await this.call(`list nodes${labelSelector ? ` with ${labelSelector}` : ''}`, () =>
      this.core.listNode({ labelSelector }),
    );
    return list.items;
  }

  // ---- NodeGroups (causes 4 and 5, "Force NodeGroup Reconciliation") -------------------------------------

  /** The raw NodeGroup object, or null when it does not exist. */
  async getNodeGroup(ref: NodeGroupRef): Promise<unknown | null> {
    return this.orNull(
      this.call(`get nodegroup ${ref.namespace}/${ref.name}`, () =>
        this.custom.getNamespacedCustomObject({ ...this.crd('nodegroups', ref.namespace), name: ref.name }),
      ),
    );
  }

  /** `kubectl annotate nodegroup <name> <key>=<value> --overwrite`: returns the patched object. */
  async annotateNodeGroup(ref: NodeGroupRef, key: string, value: string): Promise<unknown> {
    return this.mergePatchNodeGroup(ref, `annotate nodegroup ${ref.namespace}/${ref.name} ${key}`, {
      metadata: { annotations: { [key]: value } },
    });
  }

  /**
   * Sets spec.kubernetesVersion. With `expectedResourceVersion` the apiserver applies the patch only to that
   * version of the object and answers 409 Conflict (a permanent KubernetesApiError) when it changed meanwhile.
   */
  async setNodeGroupKubernetesVersion(
    ref: NodeGroupRef,
    version: string,
    expectedResourceVersion?: string,
  ): Promise<unknown> {
    return this.mergePatchNodeGroup(
      ref,
      `set kubernetesVersion ${version} on nodegroup ${ref.namespace}/${ref.name}`,
      {
        ...(expectedResourceVersion ? { metadata: { resourceVersion: expectedResourceVersion } } : {}),
        spec: { kubernetesVersion: version },
      },
    );
  }

  // ---- Cluster (cause 4, "kubectl version") -------------------------------------------------------------

  async serverVersion(): Promise<ClusterVersion> {
    const v = await this.call('get server version', () => this.version.getCode());
    return { major: v.major, minor: v.minor, gitVersion: v.gitVersion };
  }

  // ---- helpers -------------------------------------------------------------------------------------------

  private crd(plural: 'vpsienodes' | 'nodegroups', namespace: string) {
    return { group: AUTOSCALER_GROUP, version: AUTOSCALER_VERSION, plural, namespace };
  }

  private mergePatchNodeGroup(ref: NodeGroupRef, operation: string, patch: object): Promise<unknown> {
    return this.call(operation, () =>
      this.custom.patchNamespacedCustomObject(
        { ...this.crd('nodegroups', ref.namespace), name: ref.name, body: patch },
        // client-node would send application/json-patch+json; the body is a JSON merge patch
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    );
  }

  private async orNull<T>(p: Promise<T>): Promise<T | null> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof KubernetesApiError && err.status === 404) return null;
      throw err;
    }
  }

  private async call<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ApiException)
        throw new KubernetesApiError(err.code, operation, serverMessage(err.body));
      throw err;
    }
  }
}
