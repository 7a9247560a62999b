/**
 * Upstream's NodeGroup controller (`nodegroup/controller.go`, `reconciler.go`): only NodeGroups labelled
 * `autoscaler.vpsie.com/managed=true`; the finalizer; spec validation (Event ValidationFailed); the VPSie node
 * group (`status.vpsieGroupID`, found by name or created; Events VPSieAPIError, ValidationFailed when
 * `kubeSizeID` is missing); then the count: VPSieNodes labelled with the group (not being deleted) against
 * `status.desiredNodes` (minNodes at first), one new VPSieNode at a time and only when none is in transition
 * (Event ScalingUp on every such reconcile), CapacityLimitReached when a VPSieNode failed for capacity (its
 * failed nodes are deleted and creation pauses), simple scale-down (Event ScalingDown). Status is one merge patch.
 */
import { crd, type ControllerContext } from './context';
import type { Logger } from './controller-log';
import type { EventRecorder } from './events';
import { API_VERSION, LABEL_MANAGED, LABEL_NODEGROUP, NODEGROUP_FINALIZER } from './names';
import {
  calculateDesired,
  capacityFailures,
  conditionsAfterScale,
  conditionsForReconcile,
  inTransition,
  needsScaleDown,
  needsScaleUp,
  ngStatus,
  setDesired,
  setNGError,
  setNGReady,
  updateFromVPSieNodes,
  validate,
} from './nodegroup-status';
import type { NodeGroupObj, NodeGroupStatus, VPSieNodeObj } from './types';
import { clone, describeError, hex, MERGE, mergeDiff } from './util';
import type { Result } from './workqueue';

const CONTROLLER = 'nodegroup/controller.go';
const RECONCILER = 'nodegroup/reconciler.go';

export interface NodeGroupControllerContext extends ControllerContext {
  log: Logger;
  events: EventRecorder;
}

export interface NodeGroupOutcome extends Result {
  managed: boolean;
  created: string[];
  wrote: boolean;
  /** The resourceVersion after its own writes (its own status patch is not news to it). */
  resourceVersion: string;
}

export async function reconcileNodeGroup(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
): Promise<NodeGroupOutcome> {
  const out: NodeGroupOutcome = {
    managed: ng.metadata.labels?.[LABEL_MANAGED] === 'true',
    created: [],
    wrote: false,
    resourceVersion: ng.metadata.resourceVersion ?? '',
  };
  const log = ctx.log.forRequest(ng.metadata.namespace ?? ctx.namespace, ng.metadata.name);
  log.info(`${CONTROLLER}:343`, 'Reconciling NodeGroup');
  if (!out.managed) return out;
  let result: Result;
  try {
    if (ng.metadata.deletionTimestamp) result = await reconcileDelete(ctx, ng, log, out);
    else if (!(ng.metadata.finalizers ?? []).includes(NODEGROUP_FINALIZER)) {
      await update(ctx, ng, out, { finalizers: [...(ng.metadata.finalizers ?? []), NODEGROUP_FINALIZER] });
      log.info(`${CONTROLLER}:382`, 'Added finalizer to NodeGroup');
      result = { requeue: true };
    } else result = await reconcile(ctx, ng, log, out);
  } catch (err) {
    result = { error: describeError(err) };
  }
  return { ...out, ...result };
}

async function reconcile(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  log: Logger,
  out: NodeGroupOutcome,
): Promise<Result> {
  const t = ctx.timings();
  const invalid = validate(ng);
  if (invalid) {
    log.error(`${RECONCILER}:34`, 'NodeGroup spec validation failed', { error: invalid });
    await event(ctx, ng, 'Warning', 'ValidationFailed', `Spec validation failed: ${invalid}`);
    const before = clone(ng.status);
    setNGError(ng, true, 'ValidationFailed', invalid);
    setNGReady(ng, false, 'ValidationFailed', 'Spec validation failed');
    await patchStatus(ctx, ng, out, before);
    return { error: invalid };
  }
  if (!ng.status?.vpsieGroupID) {
    const ensured = await ensureVPSieNodeGroup(ctx, ng, log, out);
    if (ensured) return ensured;
  }

  const before = clone(ng.status);
  conditionsForReconcile(ng);
  const vns = await listVPSieNodes(ctx, ng);
  log.info(`${RECONCILER}:96`, 'Found VPSieNodes', { count: vns.length });
  updateFromVPSieNodes(ng, vns);
  const desired = calculateDesired(ng);
  const s = ngStatus(ng);
  if (s.desiredNodes !== desired) {
    setDesired(ng, desired);
    log.info(`${RECONCILER}:110`, 'Updated desired node count', { desired, current: s.currentNodes });
  }
  const current = s.currentNodes ?? 0;
  let result: Result;
  let direction: 'up' | 'down' | '' = '';
  if (needsScaleUp(ng)) {
    direction = 'up';
    log.info(`${RECONCILER}:124`, 'Scaling up', { current, desired });
    await event(
      ctx,
      ng,
      'Normal',
      'ScalingUp',
      `Scaling up from ${current} to ${desired} nodes (+${desired - current} nodes)`,
    );
    result = await scaleUp(ctx, ng, vns, log, out);
  } else if (needsScaleDown(ng)) {
    direction = 'down';
    log.info(`${RECONCILER}:133`, 'Scaling down', { current, desired });
    await event(
      ctx,
      ng,
      'Normal',
      'ScalingDown',
      `Scaling down from ${current} to ${desired} nodes (-${current - desired} nodes)`,
    );
    result = await scaleDown(ctx, ng, vns, log);
  } else {
    log.info(`${RECONCILER}:170`, 'No scaling needed', { current, desired, ready: s.readyNodes });
    result = { after: t.requeueMs };
  }
  conditionsAfterScale(ng, direction);
  if (result.error === undefined) setNGError(ng, false, 'Reconciling', '');
  await patchStatus(ctx, ng, out, before);
  log.info(`${RECONCILER}:203`, 'Reconciliation complete', {
    requeue: Boolean(result.requeue || result.after),
    requeueAfter: `${result.after ?? 0}ms`,
  });
  return result;
}

async function scaleUp(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  vns: VPSieNodeObj[],
  log: Logger,
  out: NodeGroupOutcome,
): Promise<Result> {
  const t = ctx.timings();
  const s = ngStatus(ng);
  const toAdd = Math.min(
    (s.desiredNodes ?? 0) - (s.currentNodes ?? 0),
    ng.spec.maxNodes - (s.currentNodes ?? 0),
  );
  if (toAdd <= 0) return { after: t.requeueMs };
  const capacity = capacityFailures(vns);
  if (capacity.length > 0) {
    log.warn(`${RECONCILER}:231`, 'VPSie cluster capacity limit reached - pausing node creation', {
      failedNodes: capacity.length,
    });
    setNGError(
      ng,
      true,
      'ClusterCapacityLimitReached',
      `VPSie cluster has reached its worker node limit. ${capacity.length} node(s) failed to provision. ` +
        'Delete existing workers or increase cluster limits to continue scaling.',
    );
    await event(
      ctx,
      ng,
      'Warning',
      'CapacityLimitReached',
      `VPSie cluster capacity limit reached. ${capacity.length} node(s) failed to provision. Node creation paused.`,
    );
    for (const vn of capacity) {
      log.info(`${RECONCILER}:253`, 'Cleaning up failed VPSieNode (capacity limit)', {
        vpsienode: vn.metadata.name,
      });
      await ctx.custom
        .deleteNamespacedCustomObject({ ...crd(ctx.namespace, 'vpsienodes'), name: vn.metadata.name })
        .then(() => (out.wrote = true))
        .catch((err: unknown) =>
          log.error(`${RECONCILER}:257`, 'Failed to delete failed VPSieNode', {
            vpsienode: vn.metadata.name,
            error: describeError(err),
          }),
        );
    }
    return { after: t.requeueMs * 2 };
  }
  const transit = inTransition(vns);
  if (transit > 0) {
    log.info(`${RECONCILER}:275`, 'Waiting for nodes in transition to be Ready before scaling up', {
      nodesInTransition: transit,
      totalNodesToAdd: toAdd,
    });
    return { after: t.fastRequeueMs };
  }
  const name = `${ng.metadata.name}-${hex(4)}`;
  log.info(`${RECONCILER}:288`, 'Creating new VPSieNode (sequential scaling: 1 at a time)', {
    remainingToAdd: toAdd,
    currentNodes: s.currentNodes,
    desiredNodes: s.desiredNodes,
  });
  try {
    await ctx.custom.createNamespacedCustomObject({
      ...crd(ctx.namespace, 'vpsienodes'),
      body: buildVPSieNode(ng, name),
    });
  } catch (err) {
    log.error(`${RECONCILER}:305`, 'Failed to create VPSieNode', {
      vpsienode: name,
      error: describeError(err),
    });
    setNGError(ng, true, 'NodeProvisioningFailed', `Failed to create VPSieNode: ${describeError(err)}`);
    return { error: describeError(err) };
  }
  out.wrote = true;
  out.created.push(name);
  log.info(`${RECONCILER}:313`, 'Created VPSieNode, waiting for it to be Ready before creating more', {
    vpsienode: name,
    remainingAfterThis: toAdd - 1,
  });
  return { after: t.fastRequeueMs };
}

/** reconcileSimpleScaleDown: deletes the excess, not-Ready VPSieNodes first. */
async function scaleDown(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  vns: VPSieNodeObj[],
  log: Logger,
): Promise<Result> {
  const t = ctx.timings();
  log.warn(`${RECONCILER}:488`, 'Using simple scale-down (ScaleDownManager not available)');
  const s = ngStatus(ng);
  const count = Math.min(
    (s.currentNodes ?? 0) - (s.desiredNodes ?? 0),
    (s.currentNodes ?? 0) - ng.spec.minNodes,
  );
  if (count <= 0) return { after: t.requeueMs };
  log.info(`${RECONCILER}:497`, 'Removing VPSieNodes', { count });
  const ordered = [
    ...vns.filter((v) => v.status?.phase !== 'Ready'),
    ...vns.filter((v) => v.status?.phase === 'Ready'),
  ];
  for (const vn of ordered.slice(0, count)) {
    log.info(`${RECONCILER}:506`, 'Deleting VPSieNode', {
      vpsienode: vn.metadata.name,
      phase: vn.status?.phase ?? '',
    });
    await ctx.custom.deleteNamespacedCustomObject({
      ...crd(ctx.namespace, 'vpsienodes'),
      name: vn.metadata.name,
    });
  }
  return { after: t.fastRequeueMs };
}

async function reconcileDelete(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  log: Logger,
  out: NodeGroupOutcome,
): Promise<Result> {
  log.info(`${CONTROLLER}:392`, 'Handling NodeGroup deletion');
  if (!(ng.metadata.finalizers ?? []).includes(NODEGROUP_FINALIZER)) return {};
  const vns = await listVPSieNodes(ctx, ng);
  for (const vn of vns) {
    log.info(`${CONTROLLER}:421`, 'Deleting VPSieNode', { vpsienode: vn.metadata.name });
    await ctx.custom.deleteNamespacedCustomObject({
      ...crd(ctx.namespace, 'vpsienodes'),
      name: vn.metadata.name,
    });
    out.wrote = true;
  }
  if (vns.length > 0) {
    log.info(`${CONTROLLER}:437`, 'Waiting for VPSieNodes to be deleted', { count: vns.length });
    return { after: ctx.timings().nodeGroupDeleteRequeueMs };
  }
  await update(ctx, ng, out, {
    finalizers: (ng.metadata.finalizers ?? []).filter((f) => f !== NODEGROUP_FINALIZER),
  });
  log.info(`${CONTROLLER}:451`, 'Successfully removed finalizer, NodeGroup will be deleted');
  return {};
}

/** ensureVPSieNodeGroup: finds (or creates) the VPSie node group named like the NodeGroup; undefined = go on. */
async function ensureVPSieNodeGroup(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  log: Logger,
  out: NodeGroupOutcome,
): Promise<Result | undefined> {
  const t = ctx.timings();
  const cluster = ng.spec.resourceIdentifier;
  log.info(`${RECONCILER}:701`, 'Ensuring node group exists on VPSie platform', {
    nodegroup: ng.metadata.name,
    cluster,
    kubeSizeID: ng.spec.kubeSizeID ?? 0,
  });
  if (!ng.spec.kubeSizeID) {
    log.error(`${RECONCILER}:709`, 'KubeSizeID is required to create node group on VPSie');
    await event(
      ctx,
      ng,
      'Warning',
      'ValidationFailed',
      'KubeSizeID is required to create node group on VPSie platform',
    );
    return { error: 'kubeSizeID is required' };
  }
  const find = async () =>
    (await ctx.vpsie.listK8sNodeGroups(cluster)).find((g) => g.groupName === ng.metadata.name)?.id ?? 0;
  let id: number;
  try {
    id = await find();
  } catch (err) {
    const message = (err as Error).message;
    log.error(`${RECONCILER}:727`, 'Failed to list node groups from VPSie', { cluster, error: message });
    await event(ctx, ng, 'Warning', 'VPSieAPIError', `Failed to list node groups from VPSie: ${message}`);
    return { after: t.requeueMs, error: message };
  }
  if (id)
    log.info(`${RECONCILER}:742`, 'Found existing node group on VPSie platform', {
      nodegroup: ng.metadata.name,
      vpsieGroupID: id,
    });
  else {
    log.info(`${RECONCILER}:752`, 'Creating node group on VPSie platform', {
      nodegroup: ng.metadata.name,
      kubeSizeID: ng.spec.kubeSizeID,
    });
    try {
      await ctx.vpsie.createK8sNodeGroup(cluster, ng.metadata.name, ng.spec.kubeSizeID);
      id = await find();
    } catch (err) {
      const message = (err as Error).message;
      log.error(`${RECONCILER}:766`, 'Failed to create node group on VPSie', {
        nodegroup: ng.metadata.name,
        error: message,
      });
      await event(ctx, ng, 'Warning', 'VPSieAPIError', `Failed to create node group on VPSie: ${message}`);
      return { after: t.requeueMs, error: message };
    }
    if (!id) return { after: t.requeueMs, error: 'could not find numeric ID for created node group' };
    log.info(`${RECONCILER}:801`, 'Created node group on VPSie platform', {
      nodegroup: ng.metadata.name,
      vpsieGroupID: id,
    });
    await event(
      ctx,
      ng,
      'Normal',
      'VPSieNodeGroupCreated',
      `Created node group ${ng.metadata.name} on VPSie platform (ID: ${id})`,
    );
  }
  const before = clone(ng.status);
  ngStatus(ng).vpsieGroupID = id;
  try {
    await patchStatus(ctx, ng, out, before);
  } catch (err) {
    log.error(`${RECONCILER}:819`, 'Failed to update status with VPSie group ID', {
      error: describeError(err),
    });
    throw err;
  }
  return { requeue: true };
}

function buildVPSieNode(ng: NodeGroupObj, name: string): Record<string, unknown> {
  const spec = ng.spec;
  return {
    apiVersion: API_VERSION,
    kind: 'VPSieNode',
    metadata: {
      name,
      namespace: ng.metadata.namespace,
      labels: { [LABEL_NODEGROUP]: ng.metadata.name, [LABEL_MANAGED]: 'true' },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'NodeGroup',
          name: ng.metadata.name,
          uid: ng.metadata.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      vpsieInstanceID: 0,
      instanceType: spec.preferredInstanceType || spec.offeringIDs[0],
      nodeGroupName: ng.metadata.name,
      datacenterID: spec.datacenterID,
      resourceIdentifier: spec.resourceIdentifier,
      project: spec.project,
      ...(spec.osImageID ? { osImageID: spec.osImageID } : {}),
      kubernetesVersion: spec.kubernetesVersion,
      ...(spec.sshKeyIDs?.length ? { sshKeyIDs: spec.sshKeyIDs } : {}),
      ...(ng.status?.vpsieGroupID ? { vpsieGroupID: ng.status.vpsieGroupID } : {}),
    },
  };
}

/** The group's VPSieNodes (by its labels), without those being deleted. */
export async function listVPSieNodes(ctx: ControllerContext, ng: NodeGroupObj): Promise<VPSieNodeObj[]> {
  const list = (await ctx.custom.listNamespacedCustomObject({
    ...crd(ng.metadata.namespace ?? ctx.namespace, 'vpsienodes'),
    labelSelector: `${LABEL_NODEGROUP}=${ng.metadata.name},${LABEL_MANAGED}=true`,
  })) as { items: VPSieNodeObj[] };
  return list.items.filter((v) => !v.metadata.deletionTimestamp);
}

async function event(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
) {
  await ctx.events.event({ kind: 'NodeGroup', metadata: ng.metadata }, type, reason, message);
}

async function update(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  out: NodeGroupOutcome,
  metadata: Record<string, unknown>,
) {
  const updated = (await ctx.custom.patchNamespacedCustomObject(
    {
      ...crd(ng.metadata.namespace ?? ctx.namespace, 'nodegroups'),
      name: ng.metadata.name,
      body: { metadata: { ...metadata, resourceVersion: ng.metadata.resourceVersion } },
    },
    MERGE,
  )) as NodeGroupObj;
  out.wrote = true;
  out.resourceVersion = updated.metadata.resourceVersion ?? out.resourceVersion;
}

async function patchStatus(
  ctx: NodeGroupControllerContext,
  ng: NodeGroupObj,
  out: NodeGroupOutcome,
  before: NodeGroupStatus | undefined,
) {
  const diff = mergeDiff(
    before as Record<string, unknown> | undefined,
    ng.status as Record<string, unknown> | undefined,
  );
  if (!diff) return;
  const updated = (await ctx.custom.patchNamespacedCustomObjectStatus(
    {
      ...crd(ng.metadata.namespace ?? ctx.namespace, 'nodegroups'),
      name: ng.metadata.name,
      body: { status: diff },
    },
    MERGE,
  )) as NodeGroupObj;
  out.wrote = true;
  out.resourceVersion = updated.metadata.resourceVersion ?? out.resourceVersion;
}
