/**
 * Upstream's Terminator and Drainer (`vpsienode/terminator.go`, `drainer.go`): Terminating drains the Node
 * (cordon, evict its pods) and deletes it, recording DrainFailed / NodeDeleteFailed but going on; Deleting
 * removes the machine with three attempts `vpsDeleteRetryDelayMs` apart (inside one reconcile), then either
 * sets `status.deletedAt` (the finalizer goes next) or records VPSDeleteFailed and sets phase Failed.
 */
import type { VPSieNodeControllerContext } from './context';
import type { Logger } from './controller-log';
import { Reason } from './names';
import { deleteVPS } from './provisioner';
import type { VPSieNodeObj } from './types';
import { describeError, isNotFound, metaTime, sleep } from './util';
import { recordError, setPhase, statusOf } from './vpsienode-status';
import { VPSieClientError } from './vpsie-client';
import type { Result } from './workqueue';

const TERMINATOR = 'vpsienode/terminator.go';
const DRAINER = 'vpsienode/drainer.go';
const MAX_RETRIES = 3;

export async function drainAndDelete(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const s = statusOf(vn);
  const nodeName = s.nodeName || vn.spec.nodeName || '';
  log.info(`${TERMINATOR}:62`, 'Draining and deleting node', {
    vpsienode: vn.metadata.name,
    nodeName: s.nodeName ?? '',
  });
  if (nodeName) {
    log.info(`${TERMINATOR}:74`, 'Draining node', { node: nodeName });
    try {
      await drain(ctx, nodeName, log);
      log.info(`${TERMINATOR}:84`, 'Successfully drained node', { node: nodeName });
    } catch (err) {
      log.error(`${TERMINATOR}:76`, 'Failed to drain node', { node: nodeName, error: describeError(err) });
      recordError(vn, Reason.DrainFailed, `Failed to drain node: ${describeError(err)}`);
    }
    log.info(`${TERMINATOR}:88`, 'Deleting Kubernetes Node', { node: nodeName });
    log.info(`${DRAINER}:351`, 'Deleting Kubernetes Node object', { node: nodeName });
    try {
      await ctx.core.deleteNode({ name: nodeName });
      log.info(`${DRAINER}:368`, 'Successfully deleted Kubernetes Node', { node: nodeName });
      log.info(`${TERMINATOR}:97`, 'Successfully deleted Kubernetes Node', { node: nodeName });
    } catch (err) {
      if (isNotFound(err)) log.info(`${DRAINER}:362`, 'Node not found, already deleted', { node: nodeName });
      else {
        const message = `failed to delete node: ${describeError(err)}`;
        log.error(`${TERMINATOR}:90`, 'Failed to delete Kubernetes Node', { node: nodeName, error: message });
        recordError(vn, Reason.NodeDeleteFailed, `Failed to delete Node: ${message}`);
      }
    }
  }
  setPhase(vn, 'Deleting');
  return { requeue: true };
}

async function drain(ctx: VPSieNodeControllerContext, nodeName: string, log: Logger): Promise<void> {
  log.info(`${DRAINER}:52`, 'Starting node drain', { node: nodeName, timeout: '10m0s' });
  try {
    const node = await ctx.core.readNode({ name: nodeName });
    if (!node.spec?.unschedulable) {
      await ctx.core.replaceNode({
        name: nodeName,
        body: { ...node, spec: { ...node.spec, unschedulable: true } },
      });
      log.info(`${DRAINER}:116`, 'Successfully cordoned node', { node: nodeName });
    }
  } catch (err) {
    if (!isNotFound(err))
      throw new Error(`failed to cordon node: failed to update node: ${describeError(err)}`);
    log.info(`${DRAINER}:98`, 'Node not found, skipping cordon', { node: nodeName });
  }
  const pods = (await ctx.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${nodeName}` })).items;
  const evict = pods.filter(
    (p) =>
      !['Succeeded', 'Failed'].includes(p.status?.phase ?? '') &&
      !(p.metadata?.ownerReferences ?? []).some((o) => o.kind === 'DaemonSet') &&
      !((p.metadata?.ownerReferences ?? []).length === 0 && p.metadata?.namespace === 'kube-system'),
  );
  log.info(`${DRAINER}:73`, 'Found pods to evict', {
    node: nodeName,
    totalPods: pods.length,
    podsToEvict: evict.length,
  });
  if (evict.length === 0) log.info(`${DRAINER}:212`, 'No pods to evict');
  for (const pod of evict) {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    log.info(`${DRAINER}:234`, 'Evicting pod', { pod: name, namespace });
    await ctx.core.createNamespacedPodEviction({
      name,
      namespace,
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
    });
  }
  log.info(`${DRAINER}:89`, 'Successfully drained node', { node: nodeName });
}

export async function deleteWithRetries(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const t = ctx.timings();
  const s = statusOf(vn);
  const name = vn.metadata.name;
  const hostname = s.hostname || vn.spec.nodeName || s.nodeName || '';
  if (!(vn.spec.resourceIdentifier && hostname) && !vn.spec.vpsieInstanceID) {
    log.info(`${TERMINATOR}:125`, 'No VPS ID or K8s identifiers available, skipping VPS deletion', {
      vpsienode: name,
      resourceIdentifier: vn.spec.resourceIdentifier,
      hostname,
    });
    s.deletedAt = metaTime();
    return {};
  }
  log.info(`${TERMINATOR}:136`, 'Deleting VPS', {
    vpsienode: name,
    vpsID: vn.spec.vpsieInstanceID,
    resourceIdentifier: vn.spec.resourceIdentifier,
    hostname,
  });
  let last = '';
  for (let attempt = 1; attempt <= MAX_RETRIES; attempt++) {
    try {
      await deleteVPS(ctx, vn, log);
      log.info(`${TERMINATOR}:148`, 'Successfully deleted VPS', {
        vpsienode: name,
        vpsID: vn.spec.vpsieInstanceID,
      });
      s.deletedAt = metaTime();
      return {};
    } catch (err) {
      if (err instanceof VPSieClientError && err.notFound) {
        log.info(`${TERMINATOR}:159`, 'VPS not found, already deleted', { vpsienode: name });
        s.deletedAt = metaTime();
        return {};
      }
      last = (err as Error).message;
      log.warn(`${TERMINATOR}:169`, 'Failed to delete VPS, will retry', {
        vpsienode: name,
        vpsID: vn.spec.vpsieInstanceID,
        attempt,
        maxRetries: MAX_RETRIES,
        error: last,
      });
      if (attempt < MAX_RETRIES) await sleep(t.vpsDeleteRetryDelayMs);
    }
  }
  log.error(`${TERMINATOR}:189`, 'Failed to delete VPS after all retries', {
    vpsienode: name,
    vpsID: vn.spec.vpsieInstanceID,
    retries: MAX_RETRIES,
    error: last,
  });
  recordError(vn, Reason.VPSDeleteFailed, `Failed to delete VPS after ${MAX_RETRIES} retries: ${last}`);
  setPhase(vn, 'Failed');
  return { after: t.requeueMs, error: `failed to delete VPS: ${last}` };
}
