/**
 * Upstream's Joiner (`vpsienode/joiner.go`): finds the VPSieNode's Node (by `spec.ipAddress` among InternalIP
 * and ExternalIP addresses first, then by `spec.nodeName`, then by `status.hostname`), labels it (managed,
 * nodegroup, vpsienode, datacenter: nothing from the NodeGroup's `labels`/`taints`, which upstream leaves as a
 * TODO), and follows its Ready condition.
 */
import type { V1Node } from '@kubernetes/client-node';
import { addressesOf, listClusterNodes, type VPSieNodeControllerContext } from './context';
import type { Logger } from './controller-log';
import { LABEL_DATACENTER, LABEL_MANAGED, LABEL_NODEGROUP, LABEL_VPSIENODE, Reason } from './names';
import type { VPSieNodeObj } from './types';
import { describeError, metaTime } from './util';
import { setNodeJoined, setNodeReady, setPhase, statusOf } from './vpsienode-status';
import type { Result } from './workqueue';

const CALLER = 'vpsienode/joiner.go';

export class JoinError extends Error {}

const isReady = (node: V1Node) =>
  (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

export async function findNode(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
): Promise<V1Node | undefined> {
  const nodes = await listClusterNodes(ctx);
  const ip = vn.spec.ipAddress;
  if (ip) {
    const byIP = nodes.find((n) => addressesOf(n, 'InternalIP', 'ExternalIP').includes(ip));
    if (byIP) return byIP;
  }
  if (vn.spec.nodeName) {
    const byName = nodes.find((n) => n.metadata?.name === vn.spec.nodeName);
    if (byName) return byName;
  }
  const hostname = vn.status?.hostname;
  if (hostname) {
    return nodes.find((n) => addressesOf(n, 'Hostname').includes(hostname) || n.metadata?.name === hostname);
  }
  return undefined;
}

/** CheckJoinStatus, for the Joining phase. */
export async function checkJoinStatus(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const t = ctx.timings();
  const node = await findNode(ctx, vn);
  if (!node) return { after: t.fastRequeueMs };
  const nodeName = node.metadata?.name ?? '';
  log.info(`${CALLER}:74`, 'Node has joined the Kubernetes cluster', {
    vpsienode: vn.metadata.name,
    nodeName,
  });
  const s = statusOf(vn);
  s.nodeName = nodeName;
  if (!vn.spec.nodeName) vn.spec.nodeName = nodeName;
  try {
    await applyNodeConfiguration(ctx, vn, node, log);
  } catch (err) {
    log.error(`${CALLER}:87`, 'Failed to apply node configuration', {
      vpsienode: vn.metadata.name,
      nodeName,
      error: describeError(err),
    });
    throw new JoinError(`failed to update node labels: ${describeError(err)}`);
  }
  if (isReady(node)) {
    log.info(`${CALLER}:98`, 'Node is ready', { vpsienode: vn.metadata.name, nodeName });
    setPhase(vn, 'Ready');
    setNodeJoined(vn, true, Reason.Joined, 'Node has joined the cluster');
    setNodeReady(vn, true, Reason.Ready, 'Node is ready');
    s.joinedAt ??= metaTime();
    s.readyAt ??= metaTime();
    return { after: t.requeueMs };
  }
  setNodeJoined(vn, true, Reason.Joined, 'Node has joined but not ready');
  setNodeReady(vn, false, Reason.Joining, 'Node is not ready yet');
  s.joinedAt ??= metaTime();
  return { after: t.fastRequeueMs };
}

/** MonitorNode, for the Ready phase. */
export async function monitorNode(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  log: Logger,
): Promise<Result> {
  const t = ctx.timings();
  const nodeName = vn.status?.nodeName ?? '';
  const node = (await listClusterNodes(ctx)).find((n) => n.metadata?.name === nodeName);
  if (!node) {
    log.warn(`${CALLER}:148`, 'Node disappeared from Kubernetes', { vpsienode: vn.metadata.name, nodeName });
    setNodeReady(vn, false, Reason.NodeNotFound, 'Node not found in Kubernetes');
    return { after: t.requeueMs };
  }
  if (isReady(node)) setNodeReady(vn, true, Reason.Ready, 'Node is ready');
  else {
    log.warn(`${CALLER}:170`, 'Node is no longer ready', { vpsienode: vn.metadata.name, nodeName });
    setNodeReady(vn, false, 'NotReady', 'Node is not ready');
  }
  return { after: t.requeueMs };
}

async function applyNodeConfiguration(
  ctx: VPSieNodeControllerContext,
  vn: VPSieNodeObj,
  node: V1Node,
  log: Logger,
): Promise<void> {
  const nodeName = node.metadata?.name ?? '';
  log.info(`${CALLER}:282`, 'Applying node configuration', { vpsienode: vn.metadata.name, nodeName });
  const wanted: Record<string, string> = {
    [LABEL_MANAGED]: 'true',
    [LABEL_NODEGROUP]: vn.spec.nodeGroupName,
    [LABEL_VPSIENODE]: vn.metadata.name,
    [LABEL_DATACENTER]: vn.spec.datacenterID,
  };
  const labels = node.metadata?.labels ?? {};
  if (Object.entries(wanted).every(([k, v]) => labels[k] === v)) return;
  log.info(`${CALLER}:313`, 'Updating node labels', { vpsienode: vn.metadata.name, nodeName });
  // An Update of the Node as read: a Node changed since answers 409.
  await ctx.core.replaceNode({
    name: nodeName,
    body: { ...node, metadata: { ...node.metadata, labels: { ...labels, ...wanted } } },
  });
}
