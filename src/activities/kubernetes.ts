import { ApplicationFailure } from '@temporalio/common';
import {
  CONTROLLER_DEPLOYMENT,
  CONTROLLER_NAMESPACE,
  KubernetesApiError,
  type ControllerSelector,
  type DeletePrecondition,
  type KubernetesClient,
} from '../clients/kubernetes';
import {
  controllerLogFilter,
  RECONCILE_TRIGGER_ANNOTATION,
  sanitizeLogLine,
  toEventSummary,
  toNodeGroupSnapshot,
  toNodeSnapshot,
  toVPSieNodeSnapshot,
  VPSIENODE_LABEL,
  type ClusterVersion,
  type ControllerPodLog,
  type EventSummary,
  type NodeGroupRef,
  type NodeGroupSnapshot,
  type NodeSnapshot,
  type VPSieNodeRef,
  type VPSieNodeSnapshot,
} from '../runbook';

/** Permanent API answers fail the activity at once with a type a workflow can branch on; the rest retry. */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof KubernetesApiError && err.permanent) {
    return ApplicationFailure.nonRetryable(err.message, `Kubernetes${err.status}`);
  }
  return err;
}

async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw asActivityFailure(err);
  }
}

/** Most recent events kept per VPSieNode: enough for a story, small enough for history. */
export const MAX_EVENTS = 50;

export interface ReadControllerLogsOptions extends ControllerSelector {
  /** `kubectl logs --tail`; default 200. */
  tailLines?: number;
}

/** Runbook step 3: the controller's log lines about one VPSieNode, per controller pod. */
export interface ControllerLogEvidence {
  namespace: string;
  deployment: string;
  /** Empty when the deployment has no pods: the controller is not running at all. */
  pods: ControllerPodLog[];
}

export interface DeleteVPSieNodeResult {
  /**
   * - `deleted`: the apiserver accepted this delete of the object with the given UID;
   * - `already-deleting`: that object was already marked for deletion (a retry after our own delete, or someone
   *   else's); its resourceVersion moved on with the mark;
   * - `already-gone`: nothing by that name exists any more.
   */
  outcome: 'deleted' | 'already-deleting' | 'already-gone';
  /** Finalizers still holding the object (the controller's, until it has terminated the VM); [] once gone. */
  pendingFinalizers: string[];
}

export interface SetKubernetesVersionResult {
  /** `already-set`: a 409 on the expected resourceVersion, but the NodeGroup already has this version. */
  outcome: 'updated' | 'already-set';
  nodeGroup: NodeGroupSnapshot;
}

/** Label values are at most 63 characters of [A-Za-z0-9._-], starting and ending alphanumeric. */
function isLabelValue(v: string): boolean {
  return v.length <= 63 && /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/.test(v);
}

function metadataOf(raw: unknown): { uid?: string; deletionTimestamp?: string; finalizers?: string[] } {
  return ((raw as { metadata?: unknown } | null)?.metadata ?? {}) as {
    uid?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
  };
}

export function createKubernetesActivities(kube: KubernetesClient) {
  return {
    /** Runbook step 1, "Check VPSieNode Status": null when the VPSieNode does not exist. */
    async checkVPSieNode(ref: VPSieNodeRef): Promise<VPSieNodeSnapshot | null> {
      return mapped(async () => {
        const obj = await kube.getVPSieNode(ref);
        return obj === null ? null : toVPSieNodeSnapshot(obj);
      });
    },

    /** Runbook step 1, `kubectl get vpsienodes -A`: every VPSieNode (or one namespace's), as snapshots. */
    async listVPSieNodes(namespace?: string, labelSelector?: string): Promise<VPSieNodeSnapshot[]> {
      return mapped(async () =>
        (await kube.listVPSieNodes(namespace, labelSelector)).map(toVPSieNodeSnapshot),
      );
    },

    /**
     * Runbook step 2, "Check VPSieNode Events": the events about this VPSieNode (only the object with `uid` when
     * given), oldest first, at most the last MAX_EVENTS.
     */
    async listVPSieNodeEvents(ref: VPSieNodeRef, uid?: string): Promise<EventSummary[]> {
      return mapped(async () =>
        (await kube.listEventsFor(ref, 'VPSieNode', uid)).map(toEventSummary).slice(-MAX_EVENTS),
      );
    },

    /**
     * Runbook step 3, "Check Controller Logs": `kubectl logs -n kube-system deployment/vpsie-autoscaler
     * --tail=200 | grep -i "<vpsienode-name>\|provision\|failed"`, with credentials redacted from the lines.
     */
    async readControllerLogs(
      ref: VPSieNodeRef,
      opts: ReadControllerLogsOptions = {},
    ): Promise<ControllerLogEvidence> {
      return mapped(async () => {
        const namespace = opts.namespace ?? CONTROLLER_NAMESPACE;
        const deployment = opts.deployment ?? CONTROLLER_DEPLOYMENT;
        const logs = await kube.controllerLogs({
          namespace,
          deployment,
          tailLines: opts.tailLines,
          filter: controllerLogFilter(ref.name),
        });
        return {
          namespace,
          deployment,
          pods: logs.map((l) => ({ ...l, lines: l.lines.map(sanitizeLogLine) })),
        };
      });
    },

    /**
     * Runbook step 5, "Check Node Registration": the Node the controller labelled for this VPSieNode, else the
     * Node named `expectedNodeName`; null when neither exists (the kubelet never registered).
     */
    async checkNodeRegistration(ref: VPSieNodeRef, expectedNodeName?: string): Promise<NodeSnapshot | null> {
      return mapped(async () => {
        if (isLabelValue(ref.name)) {
          const labelled = (await kube.listNodes(`${VPSIENODE_LABEL}=${ref.name}`)).map(toNodeSnapshot);
          const best =
            labelled.find((n) => n.name === expectedNodeName) ??
            labelled.sort((a, b) => (b.creationTimestamp ?? '').localeCompare(a.creationTimestamp ?? ''))[0];
          if (best) return best;
        }
        if (!expectedNodeName) return null;
        const node = await kube.getNode(expectedNodeName);
        return node === null ? null : toNodeSnapshot(node);
      });
    },

    /** Causes 4 and 5: the NodeGroup's configuration (kubernetesVersion, sshKeyIDs, ...); null when absent. */
    async getNodeGroup(ref: NodeGroupRef): Promise<NodeGroupSnapshot | null> {
      return mapped(async () => {
        const obj = await kube.getNodeGroup(ref);
        return obj === null ? null : toNodeGroupSnapshot(obj);
      });
    },

    /** Cause 4, `kubectl version`. */
    async getClusterVersion(): Promise<ClusterVersion> {
      return mapped(() => kube.serverVersion());
    },

    /**
     * "Delete and Recreate": deletes the VPSieNode only if it is still the object with `precondition.uid` (and
     * resourceVersion, when given). Idempotent: a retry finds it gone or already being deleted. A same-named
     * replacement makes it fail with the non-retryable type Kubernetes409 and is left alone.
     */
    async deleteVPSieNode(
      ref: VPSieNodeRef,
      precondition: DeletePrecondition,
    ): Promise<DeleteVPSieNodeResult> {
      return mapped(async () => {
        let outcome: DeleteVPSieNodeResult['outcome'];
        try {
          outcome = await kube.deleteVPSieNode(ref, precondition);
        } catch (err) {
          // Only a resourceVersion can move on under our own (earlier, retried) delete; the UID never does.
          if (!(err instanceof KubernetesApiError && err.status === 409 && precondition.resourceVersion))
            throw err;
          const meta = metadataOf(await kube.getVPSieNode(ref));
          if (meta.uid !== precondition.uid || !meta.deletionTimestamp) throw err;
          outcome = 'already-deleting';
        }
        if (outcome === 'already-gone') return { outcome, pendingFinalizers: [] };
        // What is left: the controller's finalizer holds the object until it has terminated the VM.
        const meta = metadataOf(await kube.getVPSieNode(ref));
        return { outcome, pendingFinalizers: meta.uid === precondition.uid ? (meta.finalizers ?? []) : [] };
      });
    },

    /**
     * "Force NodeGroup Reconciliation": `kubectl annotate nodegroup <name> reconcile-trigger=$(date +%s)
     * --overwrite`. The time comes from the workflow, so a retried attempt writes the same value.
     */
    async forceNodeGroupReconciliation(
      ref: NodeGroupRef,
      nowUnixSeconds: number,
    ): Promise<NodeGroupSnapshot> {
      if (!Number.isSafeInteger(nowUnixSeconds) || nowUnixSeconds <= 0)
        throw ApplicationFailure.nonRetryable(
          `reconcile-trigger must be a unix time in seconds, got ${nowUnixSeconds}`,
          'InvalidInput',
        );
      return mapped(async () =>
        toNodeGroupSnapshot(
          await kube.annotateNodeGroup(ref, RECONCILE_TRIGGER_ANNOTATION, String(nowUnixSeconds)),
        ),
      );
    },

    /**
     * Cause 4 resolution, "Update NodeGroup kubernetesVersion to match cluster". With `expectedResourceVersion`
     * a NodeGroup changed since it was read is refused (non-retryable Kubernetes409), unless it already has the
     * version (a retry after our own write).
     */
    async setNodeGroupKubernetesVersion(
      ref: NodeGroupRef,
      version: string,
      expectedResourceVersion?: string,
    ): Promise<SetKubernetesVersionResult> {
      return mapped(async () => {
        try {
          const patched = await kube.setNodeGroupKubernetesVersion(ref, version, expectedResourceVersion);
          return { outcome: 'updated', nodeGroup: toNodeGroupSnapshot(patched) };
        } catch (err) {
          if (!(err instanceof KubernetesApiError && err.status === 409)) throw err;
          const current = await kube.getNodeGroup(ref);
          const snapshot = current === null ? null : toNodeGroupSnapshot(current);
          if (snapshot?.kubernetesVersion !== version) throw err;
          return { outcome: 'already-set', nodeGroup: snapshot };
        }
      });
    },
  };
}
