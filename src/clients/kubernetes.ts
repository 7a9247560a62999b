import {
  ApiException,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  Health,
  KubeConfig,
  PatchStrategy,
  ServerConfiguration,
  setHeaderOptions,
  VersionApi,
  type Configuration,
  type RequestContext,
  type CoreV1Event,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { delimiter } from 'node:path';
import {
  toEventSummary,
  type ClusterVersion,
  type ControllerPodLog,
  type ControllerSelector,
  type NodeGroupRef,
  type VPSieNodeRef,
} from '../runbook';

export const AUTOSCALER_GROUP = 'autoscaler.vpsie.com';
export const AUTOSCALER_VERSION = 'v1alpha1';
/** Sent with every request, so that the apiserver's audit log tells the product's requests from anyone else's. */
export const KUBERNETES_USER_AGENT = 'vpsie-runbook/0.1.0';

/** `kubeConfig.makeApiClient(api)`, with the product's User-Agent on every request. */
function makeApiClient<T>(kubeConfig: KubeConfig, api: new (config: Configuration) => T): T {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('No active cluster!');
  return new api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: {
        default: {
          getName: () => 'default',
          applySecurityAuthentication: async (context: RequestContext) => {
            await kubeConfig.applySecurityAuthentication(context);
            context.setHeaderParam('User-Agent', KUBERNETES_USER_AGENT);
          },
        },
      },
    }),
  );
}

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
   * Set when a 403 came from an apiserver whose /readyz was failing: one that has just started refuses
   * everyone until its authorization caches are filled (about 350 ms measured after a restart), so that
   * refusal is no verdict on the identity's rights and is retried.
   */
  notReady = false;
  /**
   * 400/401/403/404/409/422 will not change by retrying; anything else (5xx, 429, network) may. 409 is a failed
   * precondition (UID or resourceVersion): the object is no longer the one that was diagnosed.
   */
  get permanent(): boolean {
    return !this.notReady && [400, 401, 403, 404, 409, 422].includes(this.status);
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

export interface ControllerLogOptions extends ControllerSelector {
  /** Lines read from the end of each pod's log before filtering (`kubectl logs --tail`); default 200. */
  tailLines?: number;
  /** Keeps only the lines it matches (`| grep -i ...`); unset keeps every line. */
  filter?: RegExp;
}

export type DeleteResult = 'deleted' | 'already-gone';

/**
 * Only the object with this UID may be deleted. Never a resourceVersion as well: the controller rewrites a
 * VPSieNode's status every few seconds while it is in flight, so that precondition would refuse nearly every delete.
 */
export interface DeletePrecondition {
  uid: string;
}

/**
 * A change of spec.kubernetesVersion from the value that was diagnosed (`from`) to `to`, on the NodeGroup with
 * `uid` when given. Sent as a JSON Patch that `test`s both, so the apiserver refuses it (422) when either changed.
 */
export interface KubernetesVersionChange {
  from: string;
  to: string;
  uid?: string;
}

const DEFAULT_TAIL_LINES = 200;
/** Bound on the bytes read per pod log, whatever tailLines says. */
const LOG_LIMIT_BYTES = 1024 * 1024;

function timeOf(iso: string | null): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** The named container when the pod has it (`controller` upstream; Helm may name it otherwise), else the first. */
function controllerContainer(pod: V1Pod, wanted: string): string | null {
  const containers = pod.spec?.containers ?? [];
  return (containers.find((c) => c.name === wanted) ?? containers[0])?.name ?? null;
}

/** The project's one door to the Kubernetes API. Credentials stay inside the KubeConfig, never in results. */
export class KubernetesClient {
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;
  private readonly version: VersionApi;

  constructor(readonly kubeConfig: KubeConfig) {
    this.custom = makeApiClient(kubeConfig, CustomObjectsApi);
    this.core = makeApiClient(kubeConfig, CoreV1Api);
    this.version = makeApiClient(kubeConfig, VersionApi);
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

  /** `kubectl get nodegroups -A`: every NodeGroup (the orphan sweep finds the VPSie clusters through them). */
  async listNodeGroups(): Promise<unknown[]> {
    const list = await this.call('list nodegroups in all namespaces', () =>
      this.custom.listClusterCustomObject({
        group: AUTOSCALER_GROUP,
        version: AUTOSCALER_VERSION,
        plural: 'nodegroups',
      }),
    );
    const items = (list as { items?: unknown } | null)?.items;
    return Array.isArray(items) ? items : [];
  }

  /**
   * Deletes the VPSieNode only if it is still the object with `precondition.uid`: the apiserver checks the UID
   * atomically, so a same-named replacement is never touched (it answers 409 Conflict, thrown as a permanent
   * KubernetesApiError). 'already-gone' when nothing by that name exists (a retried delete is success). With the
   * controller's finalizer on it, the object is only marked for deletion ('deleted' then means accepted).
   */
  async deleteVPSieNode(ref: VPSieNodeRef, precondition: DeletePrecondition): Promise<DeleteResult> {
    if (!precondition.uid)
      throw new Error('deleteVPSieNode needs the UID of the VPSieNode that was diagnosed');
    const preconditions = { uid: precondition.uid };
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

  /**
   * Creates an Event in `namespace` (core/v1). The caller names it: 'already-exists' when an Event of that name is
   * there (409), so a retried create is success and never a second Event.
   */
  async createEvent(namespace: string, event: CoreV1Event): Promise<'created' | 'already-exists'> {
    try {
      await this.call(`create event ${namespace}/${event.metadata.name ?? ''}`, () =>
        this.core.createNamespacedEvent({ namespace, body: event }),
      );
      return 'created';
    } catch (err) {
      if (err instanceof KubernetesApiError && err.status === 409) return 'already-exists';
      throw err;
    }
  }

  // ---- Controller pods and logs (runbook step 3) --------------------------------------------------------

  /**
   * `kubectl get pods -n <namespace> -l <labelSelector>`: the controller's pods, found by label (the runbook's
   * role reads pods in that namespace, not Deployments), running ones first, then newest first.
   */
  async controllerPods(selector: Pick<ControllerSelector, 'namespace' | 'labelSelector'>): Promise<V1Pod[]> {
    const { namespace, labelSelector } = selector;
    const list = await this.call(`list pods in ${namespace} with ${labelSelector}`, () =>
      this.core.listNamespacedPod({ namespace, labelSelector }),
    );
    const created = (p: V1Pod) => {
      const t = p.metadata?.creationTimestamp as unknown;
      return t instanceof Date ? t.getTime() : timeOf(typeof t === 'string' ? t : null);
    };
    return [...list.items].sort(
      (a, b) =>
        Number(b.status?.phase === 'Running') - Number(a.status?.phase === 'Running') ||
        created(b) - created(a),
    );
  }

  /**
   * `kubectl logs -n <namespace> -l <labelSelector> -c <container> --tail=<tailLines> | grep -i <filter>`, for
   * every matching pod (with leader election only one of them logs the work). A pod whose log cannot be read
   * (not scheduled, container not started, kubelet unreachable, gone meanwhile) gets `error` instead of lines.
   * Thrown: authorization failures (401/403), and a transient failure when no pod's log could be read at all.
   */
  async controllerLogs(options: ControllerLogOptions): Promise<ControllerPodLog[]> {
    const { namespace, labelSelector } = options;
    const tailLines = options.tailLines ?? DEFAULT_TAIL_LINES;
    // a /g or /y RegExp keeps state between test() calls: use a stateless copy
    const filter =
      options.filter && new RegExp(options.filter.source, options.filter.flags.replace(/[gy]/g, ''));
    const pods = await this.controllerPods({ namespace, labelSelector });
    const transient: KubernetesApiError[] = [];
    const logs = await Promise.all(
      pods.map(async (pod): Promise<ControllerPodLog> => {
        const name = pod.metadata?.name ?? '';
        const container = controllerContainer(pod, options.container);
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
   * Sets spec.kubernetesVersion from `change.from` to `change.to` with a JSON Patch that first `test`s the old
   * value (and the UID when given): the apiserver applies it atomically or answers 422 (a permanent
   * KubernetesApiError), also when the value is not one the CRD accepts. Only that field is compared, so the
   * controller rewriting status meanwhile does not get in the way, as a resourceVersion precondition would.
   */
  async setNodeGroupKubernetesVersion(ref: NodeGroupRef, change: KubernetesVersionChange): Promise<unknown> {
    const patch = [
      ...(change.uid ? [{ op: 'test', path: '/metadata/uid', value: change.uid }] : []),
      { op: 'test', path: '/spec/kubernetesVersion', value: change.from },
      { op: 'replace', path: '/spec/kubernetesVersion', value: change.to },
    ];
    return this.call(
      `set kubernetesVersion ${change.from} -> ${change.to} on nodegroup ${ref.namespace}/${ref.name}`,
      () =>
        this.custom.patchNamespacedCustomObject(
          { ...this.crd('nodegroups', ref.namespace), name: ref.name, body: patch },
          setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
        ),
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
      if (!(err instanceof ApiException)) throw err;
      const e = new KubernetesApiError(err.code, operation, serverMessage(err.body));
      // Only a 403: the token was accepted, so /readyz answers it; a 401 (a token not accepted) is final.
      if (err.code === 403 && !(await this.ready())) {
        e.notReady = true;
        e.message += ' (the apiserver was not ready yet)';
      }
      throw e;
    }
  }

  /** Whether the apiserver says it is ready (`/readyz`, which every identity may read). */
  private async ready(): Promise<boolean> {
    try {
      return await new Health(this.kubeConfig).readyz({ timeout: 5_000 });
    } catch {
      return false;
    }
  }
}
