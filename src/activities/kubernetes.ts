import { ApplicationFailure } from '@temporalio/common';
import { inActivity } from './keep-alive';
import { KubernetesApiError, type DeletePrecondition, type KubernetesClient } from '../clients/kubernetes';
import {
  controllerLogFilter,
  DEFAULT_CONTROLLER_CONTAINER,
  DEFAULT_CONTROLLER_LABEL_SELECTOR,
  DEFAULT_CONTROLLER_NAMESPACE,
  findRegisteredNode,
  noControllerPodsNote,
  RECONCILE_TRIGGER_ANNOTATION,
  sanitizeLogLine,
  toEventSummary,
  toNodeGroupSnapshot,
  toVPSieNodeSnapshot,
  type ClusterVersion,
  type ControllerPodLog,
  type ControllerSelector,
  type EventSummary,
  type NodeGroupRef,
  type NodeGroupSnapshot,
  type NodeRegistration,
  type NodeRegistrationTarget,
  type VPSieNodeRef,
  type VPSieNodeSnapshot,
} from '../runbook';

/**
 * Failure type of an act refused because its target is no longer what was diagnosed: a VPSieNode replaced by a
 * same-named one (another UID), a NodeGroup whose kubernetesVersion someone else changed. Non-retryable: the run
 * must look again before it acts.
 */
export const PRECONDITION_FAILED = 'PreconditionFailed';

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

function preconditionFailed(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, PRECONDITION_FAILED);
}

/** Most recent events kept per VPSieNode: enough for a story, small enough for history. */
export const MAX_EVENTS = 50;

/** Where the Kubernetes activities find the controller; each unset field takes its default. */
export interface KubernetesActivityOptions {
  controller?: Partial<ControllerSelector>;
}

export interface ReadControllerLogsOptions extends Partial<ControllerSelector> {
  /** `kubectl logs --tail`; default 200. */
  tailLines?: number;
}

/** Runbook step 3: the controller's log lines about one VPSieNode, per controller pod. */
export interface ControllerLogEvidence {
  namespace: string;
  labelSelector: string;
  container: string;
  /** Every pod the selector matched; empty when none did. */
  pods: ControllerPodLog[];
  /**
   * When no pod matched, says exactly that ('no pods match app=vpsie-autoscaler in kube-system'): the selector
   * may be wrong for this installation, so it is not evidence that the controller is down. null otherwise.
   */
  note: string | null;
}

export interface DeleteVPSieNodeResult {
  /**
   * - `deleted`: the apiserver accepted this delete of the object with the given UID;
   * - `already-deleting`: that object was already marked for deletion (a retry after our own delete, or someone
   *   else's), so nothing was sent;
   * - `already-gone`: nothing by that name exists any more.
   */
  outcome: 'deleted' | 'already-deleting' | 'already-gone';
  /** Finalizers still holding the object (the controller's, until it has terminated the VM); [] once gone. */
  pendingFinalizers: string[];
}

/** Cause 4's fix: what the NodeGroup's spec.kubernetesVersion was when diagnosed, and what it should become. */
export interface SetKubernetesVersionInput {
  from: string;
  to: string;
  /** The NodeGroup's UID when diagnosed: a same-named replacement is refused too. */
  uid?: string;
}

export interface SetKubernetesVersionResult {
  /** `already-set`: the NodeGroup already had `to` (a retry after our own write): nothing was sent. */
  outcome: 'updated' | 'already-set';
  nodeGroup: NodeGroupSnapshot;
}

function checkText(field: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '')
    throw ApplicationFailure.nonRetryable(
      `${field} must be a non-empty string, got ${JSON.stringify(value)}`,
      'InvalidInput',
    );
}

/** The configured controller selector, each unset field taking the upstream default. */
export function controllerSelectorOf(options: Partial<ControllerSelector> = {}): ControllerSelector {
  return {
    namespace: options.namespace ?? DEFAULT_CONTROLLER_NAMESPACE,
    labelSelector: options.labelSelector ?? DEFAULT_CONTROLLER_LABEL_SELECTOR,
    container: options.container ?? DEFAULT_CONTROLLER_CONTAINER,
  };
}

/** Runbook step 2: the events about a VPSieNode (only the object with `uid` when given), oldest first, the last `max`. */
export async function readEvents(
  kube: KubernetesClient,
  ref: VPSieNodeRef,
  uid?: string,
  max = MAX_EVENTS,
): Promise<EventSummary[]> {
  return (await kube.listEventsFor(ref, 'VPSieNode', uid)).map(toEventSummary).slice(-max);
}

/** Runbook step 3: the runbook's grep of the controller's log for one VPSieNode, credentials redacted. */
export async function readControllerLogEvidence(
  kube: KubernetesClient,
  ref: VPSieNodeRef,
  selector: ControllerSelector,
  tailLines?: number,
): Promise<ControllerLogEvidence> {
  const logs = await kube.controllerLogs({ ...selector, tailLines, filter: controllerLogFilter(ref.name) });
  return {
    ...selector,
    pods: logs.map((l) => ({ ...l, lines: l.lines.map(sanitizeLogLine) })),
    note: logs.length === 0 ? noControllerPodsNote(selector) : null,
  };
}

/** Runbook step 5 against the Nodes as they are now. */
export async function readNodeRegistration(
  kube: KubernetesClient,
  target: NodeRegistrationTarget,
): Promise<NodeRegistration | null> {
  return findRegisteredNode(target, await kube.listNodes());
}

/** The NodeGroup as causes 4 and 5 see it; null when absent. */
export async function readNodeGroup(
  kube: KubernetesClient,
  ref: NodeGroupRef,
): Promise<NodeGroupSnapshot | null> {
  const obj = await kube.getNodeGroup(ref);
  return obj === null ? null : toNodeGroupSnapshot(obj);
}

export function createKubernetesActivities(kube: KubernetesClient, options: KubernetesActivityOptions = {}) {
  const controller = controllerSelectorOf(options.controller);

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
      return mapped(() => readEvents(kube, ref, uid));
    },

    /**
     * Runbook step 3, "Check Controller Logs": `kubectl logs -n <namespace> -l <labelSelector> -c <container>
     * --tail=200 | grep -i "<vpsienode-name>\|provision\|failed"`, credentials redacted from the lines. The
     * selector is the worker's configuration unless the call names its own.
     */
    async readControllerLogs(
      ref: VPSieNodeRef,
      opts: ReadControllerLogsOptions = {},
    ): Promise<ControllerLogEvidence> {
      const selector: ControllerSelector = {
        namespace: opts.namespace ?? controller.namespace,
        labelSelector: opts.labelSelector ?? controller.labelSelector,
        container: opts.container ?? controller.container,
      };
      return mapped(() => readControllerLogEvidence(kube, ref, selector, opts.tailLines));
    },

    /**
     * Runbook step 5, "Check Node Registration": the Node whose InternalIP/ExternalIP is the VM's, else the one
     * the controller labelled `autoscaler.vpsie.com/vpsienode=<name>`, else the one by node name or hostname
     * (build the target with `registrationTargetOf(snapshot)`); null when none (the kubelet never registered).
     */
    async checkNodeRegistration(target: NodeRegistrationTarget): Promise<NodeRegistration | null> {
      checkText('target.vpsieNode', target?.vpsieNode);
      return mapped(() => readNodeRegistration(kube, target));
    },

    /** Causes 4 and 5: the NodeGroup's configuration (kubernetesVersion, sshKeyIDs, ...); null when absent. */
    async getNodeGroup(ref: NodeGroupRef): Promise<NodeGroupSnapshot | null> {
      return mapped(() => readNodeGroup(kube, ref));
    },

    /** Cause 4, `kubectl version`. */
    async getClusterVersion(): Promise<ClusterVersion> {
      return mapped(() => kube.serverVersion());
    },

    /**
     * "Delete and Recreate": re-reads the VPSieNode, then deletes it with the UID as the only precondition (the
     * controller rewrites status meanwhile, which a resourceVersion precondition would trip over). Idempotent:
     * a retry finds it gone or already being deleted. A same-named replacement, whether seen by the re-read or
     * refused by the apiserver (409), fails with the non-retryable type PreconditionFailed and is left alone.
     */
    async deleteVPSieNode(
      ref: VPSieNodeRef,
      precondition: DeletePrecondition,
    ): Promise<DeleteVPSieNodeResult> {
      checkText('precondition.uid', precondition?.uid);
      const { uid } = precondition;
      const replaced = (now: string) =>
        preconditionFailed(
          `VPSieNode ${ref.namespace}/${ref.name} is now another object (uid ${now}, diagnosed ${uid}): not deleted`,
        );
      return mapped(async () => {
        const before = await kube.getVPSieNode(ref);
        // A retry that finds it gone: the earlier attempt's delete went through and only its answer was lost
        // (a worker killed right after it); the run goes on to verify the replacement, as after its own delete.
        if (before === null)
          return {
            outcome: (inActivity()?.info.attempt ?? 1) > 1 ? 'deleted' : 'already-gone',
            pendingFinalizers: [],
          };
        const seen = toVPSieNodeSnapshot(before);
        if (seen.uid !== uid) throw replaced(seen.uid);
        if (seen.deletionTimestamp)
          return { outcome: 'already-deleting', pendingFinalizers: seen.finalizers };
        try {
          if ((await kube.deleteVPSieNode(ref, { uid })) === 'already-gone')
            return { outcome: 'already-gone', pendingFinalizers: [] };
        } catch (err) {
          if (!(err instanceof KubernetesApiError && err.status === 409)) throw err;
          throw preconditionFailed(
            `${err.message}: VPSieNode ${ref.namespace}/${ref.name} was replaced, not deleted`,
          );
        }
        // What is left: the controller's finalizer holds the object until it has terminated the VM.
        const after = await kube.getVPSieNode(ref);
        const left = after === null ? null : toVPSieNodeSnapshot(after);
        return { outcome: 'deleted', pendingFinalizers: left?.uid === uid ? left.finalizers : [] };
      });
    },

    /**
     * "Force NodeGroup Reconciliation": `kubectl annotate nodegroup <name> reconcile-trigger=$(date +%s)
     * --overwrite`. The time comes from the workflow, so a retried attempt writes the same value. The controller
     * only reconciles NodeGroups labelled managed (see the snapshot's `managed`).
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
     * Cause 4 resolution, "Update NodeGroup kubernetesVersion to match cluster": from `change.from` (what was
     * diagnosed) to `change.to`, by a JSON Patch that `test`s the old value, so a NodeGroup whose version someone
     * else changed meanwhile is refused (non-retryable PreconditionFailed), whatever the controller does to
     * status. Idempotent: a NodeGroup that already has `to` is `already-set`, without a write.
     */
    async setNodeGroupKubernetesVersion(
      ref: NodeGroupRef,
      change: SetKubernetesVersionInput,
    ): Promise<SetKubernetesVersionResult> {
      checkText('change.from', change?.from);
      checkText('change.to', change?.to);
      const where = `NodeGroup ${ref.namespace}/${ref.name}`;
      /** already-set, or why the NodeGroup is not the one diagnosed; null: it still is. */
      const judge = (ng: NodeGroupSnapshot): SetKubernetesVersionResult | ApplicationFailure | null => {
        if (change.uid && ng.uid !== change.uid)
          return preconditionFailed(
            `${where} is now another object (uid ${ng.uid}, diagnosed ${change.uid})`,
          );
        if (ng.kubernetesVersion === change.to) return { outcome: 'already-set', nodeGroup: ng };
        if (ng.kubernetesVersion !== change.from)
          return preconditionFailed(
            `${where} has kubernetesVersion ${ng.kubernetesVersion ?? '(none)'} now, not the ${change.from} ` +
              `that was diagnosed: not changed to ${change.to}`,
          );
        return null;
      };
      const read = async (): Promise<NodeGroupSnapshot> => {
        const raw = await kube.getNodeGroup(ref);
        if (raw === null) throw ApplicationFailure.nonRetryable(`${where} does not exist`, 'Kubernetes404');
        return toNodeGroupSnapshot(raw);
      };
      return mapped(async () => {
        const current = await read();
        const before = judge(current);
        if (before instanceof ApplicationFailure) throw before;
        if (before) return before;
        try {
          // pinned to the UID just read, so a replacement made meanwhile is refused even with the same version
          const patched = await kube.setNodeGroupKubernetesVersion(ref, {
            from: change.from,
            to: change.to,
            uid: current.uid,
          });
          return { outcome: 'updated', nodeGroup: toNodeGroupSnapshot(patched) };
        } catch (err) {
          // 422 is both a failed `test` (changed since the read just now) and a value the CRD refuses.
          if (!(err instanceof KubernetesApiError && (err.status === 422 || err.status === 404))) throw err;
          const after = judge(await read());
          if (after instanceof ApplicationFailure) throw after;
          if (after) return after;
          throw err;
        }
      });
    },
  };
}
