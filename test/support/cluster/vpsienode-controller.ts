/**
 * Upstream's VPSieNode Reconcile (`vpsienode/controller.go`), one call per object:
 *
 * - being deleted: Terminating (a status patch), then the Terminating and Deleting handlers until
 *   `status.deletedAt` is set, then the finalizer is removed (an Update);
 * - no finalizer: an Update adding it, requeue;
 * - no phase: phase Pending and observedGeneration, Event `Initializing`, requeue;
 * - otherwise: ClearError (unless Failed), the phase's handler; on a handler error, a Warning Event
 *   `PhaseFailed` "Failed in <phase> phase: <error>"; an Update when the spec or the creation-requested
 *   annotation changed; then, always, one merge patch of the status from what was read (`lastUpdateTime` of
 *   the conditions changes on every reconcile, so a VPSieNode in flight gets a new resourceVersion at each
 *   requeue that falls in a new second).
 */
import type { VPSieNodeControllerContext } from './context';
import { crd } from './context';
import type { Logger } from './controller-log';
import { ANNOTATION_CREATION_REQUESTED, FINALIZER } from './names';
import type { VPSieNodeObj, VPSieNodeStatus } from './types';
import { clone, describeError, isConflict, MERGE, mergeDiff } from './util';
import { handlePhase } from './vpsienode-phases';
import { clearError, setPhase } from './vpsienode-status';
import type { Result } from './workqueue';

const CALLER = 'vpsienode/controller.go';

export interface VPSieNodeOutcome extends Result {
  /** Whether anything was written to the apiserver. */
  wrote: boolean;
  phaseAfter?: string;
}

export async function reconcileVPSieNode(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
): Promise<VPSieNodeOutcome> {
  const log = ctx.log.forRequest(vn.metadata.namespace ?? ctx.namespace, vn.metadata.name);
  const w = new Writer(ctx, vn);
  let result: Result;
  try {
    result = vn.metadata.deletionTimestamp
      ? await reconcileDelete(ctx, w, log)
      : await reconcile(ctx, w, log);
  } catch (err) {
    // An apiserver error from a write or a read inside a handler: returned to controller-runtime.
    result = { error: describeError(err) };
  }
  if (result.error !== undefined) {
    ctx.log
      .with({
        controller: 'vpsienode',
        controllerGroup: 'autoscaler.vpsie.com',
        controllerKind: 'VPSieNode',
        VPSieNode: { name: vn.metadata.name, namespace: vn.metadata.namespace },
        namespace: vn.metadata.namespace,
        name: vn.metadata.name,
      })
      .named('')
      .error('controller/controller.go:316', 'Reconciler error', { error: result.error });
  }
  return { ...result, wrote: w.wrote, phaseAfter: w.current.status?.phase };
}

async function reconcile(ctx: VPSieNodeControllerContext, w: Writer, log: Logger): Promise<Result> {
  const vn = w.current;
  if (!(vn.metadata.finalizers ?? []).includes(FINALIZER)) {
    await w.update({ finalizers: [...(vn.metadata.finalizers ?? []), FINALIZER] }, undefined);
    log.info(`${CALLER}:162`, 'Added finalizer to VPSieNode');
    return { requeue: true };
  }
  if (!vn.status?.phase) {
    await ctx.events.event(
      { kind: 'VPSieNode', metadata: vn.metadata },
      'Normal',
      'Initializing',
      'VPSieNode created and entering Pending phase',
    );
    await w.patchStatus({
      phase: 'Pending',
      ...(vn.metadata.generation ? { observedGeneration: vn.metadata.generation } : {}),
    });
    return { requeue: true };
  }

  const original = clone(vn);
  log.info(`${CALLER}:247`, 'Processing VPSieNode', {
    phase: vn.status.phase,
    vpsID: vn.spec.vpsieInstanceID,
  });
  if (vn.status.phase !== 'Failed') clearError(vn);
  let result: Result;
  try {
    result = await handlePhase(ctx, vn, log);
  } catch (err) {
    result = { error: describeError(err) };
  }
  if (result.error !== undefined) {
    log.error(`${CALLER}:260`, 'Phase handler error', { phase: vn.status.phase, error: result.error });
    await ctx.events.event(
      { kind: 'VPSieNode', metadata: vn.metadata },
      'Warning',
      'PhaseFailed',
      `Failed in ${vn.status.phase} phase: ${result.error}`,
    );
  }

  const creationRequested = (o: VPSieNodeObj) =>
    o.metadata.annotations?.[ANNOTATION_CREATION_REQUESTED] === 'true';
  const s = original.spec;
  if (
    vn.spec.vpsieInstanceID !== s.vpsieInstanceID ||
    (vn.spec.nodeName ?? '') !== (s.nodeName ?? '') ||
    (vn.spec.ipAddress ?? '') !== (s.ipAddress ?? '') ||
    creationRequested(vn) !== creationRequested(original)
  ) {
    try {
      const annotations = mergeDiff(original.metadata.annotations, vn.metadata.annotations);
      await w.update(
        annotations ? { annotations } : {},
        mergeDiff(omitEmpty(original.spec), omitEmpty(vn.spec)),
      );
    } catch (err) {
      log.error(`${CALLER}:215`, 'Failed to update object', { error: describeError(err) });
      return { ...result, error: result.error ?? describeError(err) };
    }
  }
  if (vn.metadata.generation) vn.status.observedGeneration = vn.metadata.generation;
  await w.patchStatusFrom(original.status, vn.status);
  return result;
}

async function reconcileDelete(ctx: VPSieNodeControllerContext, w: Writer, log: Logger): Promise<Result> {
  const vn = w.current;
  log.info(`${CALLER}:283`, 'Handling VPSieNode deletion');
  if (!(vn.metadata.finalizers ?? []).includes(FINALIZER)) {
    log.info(`${CALLER}:286`, 'Finalizer already removed, nothing to do');
    return {};
  }
  const phase = vn.status?.phase;
  if (phase !== 'Terminating' && phase !== 'Deleting') {
    const original = clone(vn.status);
    setPhase(vn, 'Terminating');
    await w.patchStatusFrom(original, vn.status);
    return { requeue: true };
  }
  let result: Result = {};
  if (!vn.status?.deletedAt) {
    const original = clone(vn.status);
    try {
      result = await handlePhase(ctx, vn, log);
    } catch (err) {
      result = { error: describeError(err) };
    }
    if (result.error !== undefined)
      log.error(`${CALLER}:316`, 'Failed to handle deletion phase', {
        phase: vn.status?.phase,
        error: result.error,
      });
    if (vn.status && vn.metadata.generation) vn.status.observedGeneration = vn.metadata.generation;
    await w.patchStatusFrom(original, vn.status);
    if (!vn.status?.deletedAt) return result;
  }
  await w.update({ finalizers: (vn.metadata.finalizers ?? []).filter((f) => f !== FINALIZER) }, undefined);
  log.info(`${CALLER}:353`, 'Successfully removed finalizer, VPSieNode will be deleted');
  return {};
}

/** Go's omitempty on the spec's optional fields (`vpsieInstanceID` is always written). */
function omitEmpty<T extends object>(o: T | undefined): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o ?? {}).filter(
      ([k, v]) => v !== '' && v !== undefined && !(k === 'vpsieGroupID' && v === 0),
    ),
  );
}

const OPTIONAL_STATUS = ['nodeName', 'vpsieStatus', 'hostname', 'lastError'] as const;

/** The object's writes: Updates guarded by resourceVersion, status merge patches without precondition. */
class Writer {
  wrote = false;
  current: VPSieNodeObj;

  constructor(
    private readonly ctx: VPSieNodeControllerContext,
    vn: VPSieNodeObj,
  ) {
    this.current = vn;
  }

  private get target() {
    return {
      ...crd(this.current.metadata.namespace ?? this.ctx.namespace, 'vpsienodes'),
      name: this.current.metadata.name,
    };
  }

  /** An Update: metadata (and spec) changes, with the resourceVersion read (a concurrent change answers 409). */
  async update(metadata: Record<string, unknown>, spec: Record<string, unknown> | undefined): Promise<void> {
    const body = {
      metadata: { ...metadata, resourceVersion: this.current.metadata.resourceVersion },
      ...(spec ? { spec } : {}),
    };
    const updated = (await this.ctx.custom.patchNamespacedCustomObject(
      { ...this.target, body },
      MERGE,
    )) as VPSieNodeObj;
    this.wrote = true;
    this.current.metadata = updated.metadata;
  }

  async patchStatus(status: Record<string, unknown>): Promise<void> {
    const updated = (await this.ctx.custom.patchNamespacedCustomObjectStatus(
      { ...this.target, body: { status } },
      MERGE,
    )) as VPSieNodeObj;
    this.wrote = true;
    this.current.metadata = updated.metadata;
    this.current.status = updated.status;
  }

  /** `client.MergeFrom(original)`: only what changed; nothing is sent when nothing did. */
  async patchStatusFrom(
    before: VPSieNodeStatus | undefined,
    after: VPSieNodeStatus | undefined,
  ): Promise<void> {
    const diff = mergeDiff(normalise(before), normalise(after));
    if (!diff) return;
    try {
      await this.patchStatus(diff);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }
}

function normalise(status: VPSieNodeStatus | undefined): Record<string, unknown> | undefined {
  if (!status) return undefined;
  const out: Record<string, unknown> = { ...status };
  for (const key of OPTIONAL_STATUS) if (out[key] === '') delete out[key];
  if (out.observedGeneration === 0) delete out.observedGeneration;
  return out;
}
