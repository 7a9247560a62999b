/**
 * Upstream's Provisioner (`vpsienode/provisioner.go`): creating the machine through VPSie's managed-Kubernetes
 * API, following it until it runs, and deleting it.
 */
import { discoverVPS } from './discoverer';
import type { VPSieNodeControllerContext } from './context';
import { ANNOTATION_CREATION_REQUESTED, Reason } from './names';
import type { Logger } from './controller-log';
import type { VPSieNodeObj } from './types';
import { metaTime } from './util';
import { recordError, setPhase, setVPSReady, statusOf } from './vpsienode-status';
import { VPSieClientError, type VPS } from './vpsie-client';
import type { Result } from './workqueue';

const CALLER = 'vpsienode/provisioner.go';

/** A provisioning failure: the handler records it (VPSieAPIError, or CapacityLimitReached when terminal). */
export class ProvisionError extends Error {}

export async function provision(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  if (vn.spec.vpsieInstanceID !== 0) return checkVPSStatus(ctx, vn, log);
  return createVPS(ctx, vn, log);
}

async function createVPS(ctx: VPSieNodeControllerContext, vn: VPSieNodeObj, log: Logger): Promise<Result> {
  const t = ctx.timings();
  const name = vn.metadata.name;
  if (vn.metadata.annotations?.[ANNOTATION_CREATION_REQUESTED] === 'true') {
    log.info(`${CALLER}:57`, 'Node creation already requested, attempting discovery', { vpsienode: name });
    const found = await discoverVPS(ctx, vn);
    if (found.kind === 'error') log.warn(`${CALLER}:65`, 'VPS discovery failed', { error: found.message });
    if (found.kind === 'timeout') {
      log.error(`${CALLER}:69`, 'VPS discovery timeout exceeded', { vpsienode: name });
      throw new ProvisionError('VPS discovery timeout exceeded');
    }
    if (found.kind === 'found') {
      const vps = found.vps;
      log.info(`${CALLER}:75`, 'VPS discovered successfully', {
        vpsID: vps.id,
        hostname: vps.hostname,
        ip: vps.ip,
      });
      vn.spec.vpsieInstanceID = vps.id;
      vn.spec.ipAddress = vps.ip;
      vn.spec.ipv6Address = vps.ipv6;
      if (!vn.spec.nodeName && vps.hostname) vn.spec.nodeName = vps.hostname;
      const s = statusOf(vn);
      s.hostname = vps.hostname;
      s.vpsieStatus = vps.status;
      s.resources = { cpu: vps.cpu, memoryMB: vps.ram, diskGB: vps.ssd };
      if (vps.id === 0 && vps.ip) {
        log.info(`${CALLER}:99`, 'K8s-managed node discovered, transitioning to Provisioned', {
          vpsienode: name,
          hostname: vps.hostname,
          ip: vps.ip,
        });
        if (!s.nodeName && vps.hostname) s.nodeName = vps.hostname;
        setPhase(vn, 'Provisioned');
        setVPSReady(vn, true, Reason.Provisioned, 'K8s node is running');
        s.createdAt ??= metaTime();
        s.provisionedAt = metaTime();
        return { after: t.fastRequeueMs };
      }
      return checkVPSStatus(ctx, vn, log);
    }
    return { after: t.fastRequeueMs };
  }

  log.info(`${CALLER}:127`, 'Creating new Kubernetes node via VPSie API', {
    vpsienode: name,
    instanceType: vn.spec.instanceType,
    datacenter: vn.spec.datacenterID,
    resourceIdentifier: vn.spec.resourceIdentifier,
    project: vn.spec.project,
    groupID: vn.spec.vpsieGroupID ?? 0,
  });
  if (!vn.spec.vpsieGroupID) {
    log.error(`${CALLER}:138`, 'VPSieGroupID is required to add node to cluster', { vpsienode: name });
    throw new ProvisionError('VPSieGroupID is required');
  }
  let vps: VPS;
  ctx.world.addSlaveStarting(vn);
  try {
    vps = await ctx.vpsie.addK8sSlaveToGroup(
      vn.spec.resourceIdentifier,
      vn.spec.vpsieGroupID,
      ctx.world.overrideFor(vn),
    );
  } catch (err) {
    ctx.world.addSlaveDone(vn, undefined);
    const message = err instanceof Error ? err.message : String(err);
    log.error(`${CALLER}:148`, 'Failed to create K8s node via VPSie API', {
      vpsienode: name,
      groupID: vn.spec.vpsieGroupID,
      error: message,
    });
    throw new ProvisionError(`failed to create VPS: ${message}`);
  }
  ctx.world.addSlaveDone(vn, vps);
  log.info(`${CALLER}:156`, 'K8s node creation request accepted', {
    vpsienode: name,
    vpsID: vps.id,
    hostname: vps.hostname,
    status: vps.status,
  });
  const s = statusOf(vn);
  if (vps.id === 0) {
    log.info(`${CALLER}:166`, 'Node creation requested but ID not yet assigned (async provisioning)', {
      vpsienode: name,
      vpsieNodeIdentifier: vps.identifier,
    });
    vn.metadata.annotations = { ...vn.metadata.annotations, [ANNOTATION_CREATION_REQUESTED]: 'true' };
    if (vps.identifier) vn.spec.vpsieNodeIdentifier = vps.identifier;
    s.vpsieStatus = 'provisioning';
    setVPSReady(vn, false, Reason.Provisioning, 'Node creation requested, waiting for VPSie to provision');
    s.createdAt = metaTime();
    return { after: t.fastRequeueMs };
  }
  vn.spec.vpsieInstanceID = vps.id;
  vn.spec.ipAddress = vps.ip;
  vn.spec.ipv6Address = vps.ipv6;
  if (vps.identifier) vn.spec.vpsieNodeIdentifier = vps.identifier;
  if (!vn.spec.nodeName) vn.spec.nodeName = vps.hostname || name;
  s.hostname = vps.hostname;
  s.vpsieStatus = vps.status;
  s.resources = { cpu: vps.cpu, memoryMB: vps.ram, diskGB: vps.ssd };
  s.createdAt = metaTime();
  setVPSReady(vn, false, Reason.Provisioning, 'VPS is being provisioned');
  return { after: t.fastRequeueMs };
}

async function checkVPSStatus(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const t = ctx.timings();
  const name = vn.metadata.name;
  const id = vn.spec.vpsieInstanceID;
  let vps: VPS;
  try {
    vps = await ctx.vpsie.getVM(id, ctx.world.overrideFor(vn));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log.error(`${CALLER}:229`, 'Failed to get VPS status', { vpsienode: name, vpsID: id, error: message });
    if (err instanceof VPSieClientError && err.notFound) {
      log.warn(`${CALLER}:237`, 'VPS not found, may have been deleted externally', {
        vpsienode: name,
        vpsID: id,
      });
      setPhase(vn, 'Failed');
      recordError(vn, Reason.VPSieAPIError, 'VPS not found');
      return {};
    }
    throw new ProvisionError(`failed to get VPS status: ${message}`);
  }
  const s = statusOf(vn);
  s.vpsieStatus = vps.status;
  s.hostname = vps.hostname;
  vn.spec.ipAddress = vps.ip;
  vn.spec.ipv6Address = vps.ipv6;
  s.resources = { cpu: vps.cpu, memoryMB: vps.ram, diskGB: vps.ssd };
  if (vps.status === 'running') {
    log.info(`${CALLER}:267`, 'VPS is now running', { vpsienode: name, vpsID: vps.id });
    setPhase(vn, 'Provisioned');
    setVPSReady(vn, true, Reason.Provisioned, 'VPS is running');
    s.provisionedAt = metaTime();
  }
  return { after: t.fastRequeueMs };
}

/**
 * Provisioner.Delete: through the managed-Kubernetes API when the cluster and the node's identifier are known
 * (looked up by hostname when missing: a node not listed counts as deleted), else `DELETE /vm/{id}`. Sets
 * `status.deletedAt` on success. Throws the error upstream returns.
 */
export async function deleteVPS(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<void> {
  const name = vn.metadata.name;
  const cluster = vn.spec.resourceIdentifier;
  const s = statusOf(vn);
  const override = ctx.world.overrideFor(vn);
  let identifier = vn.spec.vpsieNodeIdentifier ?? '';
  if (cluster && !identifier) {
    const hostname = s.hostname || vn.spec.nodeName || s.nodeName || '';
    if (hostname) {
      log.info(`${CALLER}:307`, 'Looking up K8s node identifier by hostname', {
        vpsienode: name,
        hostname,
        clusterIdentifier: cluster,
      });
      try {
        const found = await ctx.vpsie.findK8sNodeIdentifier(cluster, hostname, override);
        if (!found) {
          log.info(`${CALLER}:336`, 'Node not found in cluster info, treating as already deleted', {
            vpsienode: name,
            hostnameSearched: hostname,
            resourceIdentifier: cluster,
          });
          return;
        }
        log.info(`${CALLER}:327`, 'Found node identifier via cluster info lookup', {
          vpsienode: name,
          nodeIdentifier: found,
        });
        identifier = found;
      } catch (err) {
        log.warn(`${CALLER}:315`, 'Failed to look up node identifier, will try other deletion methods', {
          vpsienode: name,
          hostnameUsed: hostname,
          resourceIdentifier: cluster,
          vpsieInstanceID: vn.spec.vpsieInstanceID,
          error: (err as Error).message,
        });
      }
    }
  }
  if (cluster && identifier) {
    log.info(`${CALLER}:349`, 'Deleting K8s node via cluster API', {
      vpsienode: name,
      clusterIdentifier: cluster,
      nodeIdentifier: identifier,
    });
    try {
      await ctx.vpsie.deleteK8sNode(cluster, identifier, override);
    } catch (err) {
      if (err instanceof VPSieClientError && err.notFound) return;
      log.error(`${CALLER}:366`, 'Failed to delete K8s node via cluster API', {
        vpsienode: name,
        nodeIdentifier: identifier,
        error: (err as Error).message,
      });
      throw new VPSieClientError(`failed to delete K8s node: ${(err as Error).message}`);
    }
    log.info(`${CALLER}:374`, 'K8s node deleted successfully via cluster API', {
      vpsienode: name,
      nodeIdentifier: identifier,
    });
    s.deletedAt = metaTime();
    return;
  }
  if (!vn.spec.vpsieInstanceID) {
    log.warn(`${CALLER}:386`, 'No VPS ID or K8s node identifier available for deletion', {
      vpsienode: name,
      resourceIdentifier: cluster,
      hostname: s.hostname ?? '',
    });
    throw new VPSieClientError(
      `cannot delete VPS: no VPSieInstanceID or VPSieNodeIdentifier available (hostname: ${s.hostname ?? ''})`,
    );
  }
  log.info(`${CALLER}:395`, 'Deleting VPS via VM API (fallback)', {
    vpsienode: name,
    vpsID: vn.spec.vpsieInstanceID,
  });
  try {
    await ctx.vpsie.deleteVM(vn.spec.vpsieInstanceID, override);
  } catch (err) {
    log.error(`${CALLER}:412`, 'Failed to delete VPS', {
      vpsienode: name,
      vpsID: vn.spec.vpsieInstanceID,
      error: (err as Error).message,
    });
    throw new VPSieClientError(`failed to delete VPS: ${(err as Error).message}`);
  }
  log.info(`${CALLER}:420`, 'VPS deleted successfully', { vpsienode: name, vpsID: vn.spec.vpsieInstanceID });
  s.deletedAt = metaTime();
}
