/**
 * Upstream's state machine (`vpsienode/phases.go`): one handler per phase, each mutating the VPSieNode in memory
 * and answering a requeue and maybe an error. Timeouts are checked when the handler runs, so a node only fails
 * at its first reconcile past the limit.
 */
import type { VPSieNodeControllerContext } from './context';
import type { Logger } from './controller-log';
import { checkJoinStatus, JoinError, monitorNode } from './joiner';
import { Reason } from './names';
import { provision, ProvisionError } from './provisioner';
import { deleteWithRetries, drainAndDelete } from './terminator';
import type { VPSieNodeObj } from './types';
import { conditionOf, goDuration, parseTime } from './util';
import { recordError, setNodeJoined, setPhase, setVPSReady } from './vpsienode-status';
import type { Result } from './workqueue';

const CALLER = 'vpsienode/phases.go';

/** client.IsTerminalError: errors retrying cannot fix (cluster capacity, quota, plan limits). */
const TERMINAL = [
  'exceeds the allowed limit',
  'quota exceeded',
  'plan does not allow',
  'maximum number of',
  'limit reached',
  'subscription does not allow',
];
export const isTerminal = (message: string) => TERMINAL.some((p) => message.toLowerCase().includes(p));

export async function handlePhase(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const phase = vn.status?.phase ?? '';
  const name = vn.metadata.name;
  switch (phase) {
    case 'Pending':
      log.info(`${CALLER}:125`, 'Handling Pending phase', { vpsienode: name });
      setPhase(vn, 'Provisioning');
      setVPSReady(vn, false, Reason.Provisioning, 'VPS provisioning started');
      return { requeue: true };
    case 'Provisioning':
      return provisioning(ctx, vn, log);
    case 'Provisioned':
      log.info(`${CALLER}:194`, 'Handling Provisioned phase', { vpsienode: name });
      log.info('vpsienode/joiner.go:35', 'Preparing node for joining', {
        vpsienode: name,
        nodeName: vn.spec.nodeName ?? '',
      });
      setPhase(vn, 'Joining');
      setNodeJoined(vn, false, Reason.Joining, 'Node joining started');
      return { after: ctx.timings().fastRequeueMs };
    case 'Joining':
      return joining(ctx, vn, log);
    case 'Ready':
      return monitorNode(ctx, vn, log);
    case 'Terminating':
      log.info(`${CALLER}:282`, 'Handling Terminating phase', { vpsienode: name });
      return drainAndDelete(ctx, vn, log);
    case 'Deleting':
      log.info(`${CALLER}:296`, 'Handling Deleting phase', { vpsienode: name });
      return deleteWithRetries(ctx, vn, log);
    case 'Failed':
      return failed(ctx, vn, log);
    default:
      return { error: `no handler for phase ${phase}` };
  }
}

async function provisioning(ctx: VPSieNodeControllerContext, vn: VPSieNodeObj, log: Logger): Promise<Result> {
  const name = vn.metadata.name;
  log.info(`${CALLER}:142`, 'Handling Provisioning phase', { vpsienode: name });
  const createdAt = parseTime(vn.status?.createdAt);
  if (createdAt !== undefined) {
    const elapsed = Date.now() - createdAt;
    if (elapsed > ctx.timings().provisioningTimeoutMs) {
      log.warn(`${CALLER}:148`, 'Provisioning timeout exceeded', {
        vpsienode: name,
        elapsed: goDuration(elapsed),
      });
      setPhase(vn, 'Failed');
      recordError(vn, Reason.ProvisioningTimeout, `Provisioning timeout exceeded (${goDuration(elapsed)})`);
      return {};
    }
  }
  try {
    return await provision(ctx, vn, log);
  } catch (err) {
    if (!(err instanceof ProvisionError)) throw err;
    log.error(`${CALLER}:161`, 'Failed to provision VPS', { vpsienode: name, error: err.message });
    if (isTerminal(err.message)) {
      log.error(`${CALLER}:169`, 'Terminal provisioning error - failing immediately without retry', {
        vpsienode: name,
        error: err.message,
      });
      setPhase(vn, 'Failed');
      recordError(vn, Reason.CapacityLimitReached, err.message);
      return {};
    }
    recordError(vn, Reason.VPSieAPIError, err.message);
    return { after: ctx.timings().requeueMs, error: err.message };
  }
}

async function joining(ctx: VPSieNodeControllerContext, vn: VPSieNodeObj, log: Logger): Promise<Result> {
  const name = vn.metadata.name;
  log.info(`${CALLER}:221`, 'Handling Joining phase', { vpsienode: name });
  const provisionedAt = parseTime(vn.status?.provisionedAt);
  if (provisionedAt !== undefined) {
    const elapsed = Date.now() - provisionedAt;
    if (elapsed > ctx.timings().joiningTimeoutMs) {
      log.warn(`${CALLER}:227`, 'Joining timeout exceeded', {
        vpsienode: name,
        elapsed: goDuration(elapsed),
      });
      setPhase(vn, 'Failed');
      recordError(vn, Reason.JoiningTimeout, `Node joining timeout exceeded (${goDuration(elapsed)})`);
      return {};
    }
  }
  try {
    return await checkJoinStatus(ctx, vn, log);
  } catch (err) {
    if (!(err instanceof JoinError)) throw err;
    log.error(`${CALLER}:240`, 'Failed to check node join status', { vpsienode: name, error: err.message });
    recordError(vn, Reason.Failed, err.message);
    return { after: ctx.timings().requeueMs, error: err.message };
  }
}

/** Failed: deleted `failedNodeTtlMs` after the Error condition's last transition (else its creation). */
async function failed(ctx: VPSieNodeControllerContext, vn: VPSieNodeObj, log: Logger): Promise<Result> {
  const name = vn.metadata.name;
  log.info(`${CALLER}:311`, 'Handling Failed phase', { vpsienode: name });
  const ttl = ctx.timings().failedNodeTtlMs;
  if (ttl <= 0) return {};
  const errorCond = conditionOf(vn.status?.conditions, 'Error');
  const failedAt =
    parseTime(errorCond?.lastTransitionTime) ?? parseTime(vn.metadata.creationTimestamp) ?? Date.now();
  const elapsed = Date.now() - failedAt;
  const remaining = ttl - elapsed;
  if (remaining > 0) {
    log.info(`${CALLER}:342`, 'VPSieNode TTL not expired, will check again', {
      vpsienode: name,
      checkAfter: goDuration(remaining),
    });
    return { after: remaining };
  }
  log.warn(`${CALLER}:350`, 'VPSieNode TTL expired, initiating deletion', {
    vpsienode: name,
    ttl: goDuration(ttl),
    inFailedState: goDuration(elapsed),
    lastError: vn.status?.lastError ?? '',
  });
  await ctx.custom.deleteNamespacedCustomObject({
    group: 'autoscaler.vpsie.com',
    version: 'v1alpha1',
    namespace: vn.metadata.namespace ?? ctx.namespace,
    plural: 'vpsienodes',
    name,
  });
  log.info(`${CALLER}:374`, 'VPSieNode deleted due to TTL expiration', { vpsienode: name });
  return {};
}
