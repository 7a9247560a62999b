/** What the simulated controllers share: API clients, the VPSie client, logs, Events, timings and the world. */
import type { CoreV1Api, CustomObjectsApi, V1Node } from '@kubernetes/client-node';
import type { Logger } from './controller-log';
import type { EventRecorder } from './events';
import { GROUP, LABEL_SIMULATOR, VERSION } from './names';
import type { SimTimings, VPSieNodeObj } from './types';
import type { Override, VPSieClient, VPS } from './vpsie-client';

/** The world's side of the controller's calls: staged answers, and who asked for which machine. */
export interface WorldHooks {
  /** Answers VPSie's part for a staged VPSieNode, or undefined. */
  overrideFor(vn: VPSieNodeObj): Override | undefined;
  /** Called right before the controller sends add/slave for `vn`, and with VPSie's answer after. */
  addSlaveStarting(vn: VPSieNodeObj): void;
  addSlaveDone(vn: VPSieNodeObj, answer: VPS | undefined): void;
}

export interface ControllerContext {
  core: CoreV1Api;
  custom: CustomObjectsApi;
  vpsie: VPSieClient;
  namespace: string;
  /** The simulator's id: the Nodes of this simulated cluster carry it in LABEL_SIMULATOR. */
  simulatorId: string;
  timings: () => SimTimings;
  world: WorldHooks;
  /** Reports a problem of the simulator itself (a faithful run has none). */
  error: (where: string, err: unknown) => void;
}

export interface VPSieNodeControllerContext extends ControllerContext {
  log: Logger;
  /** The discoverer's logger (`logger.Named("discoverer")` of the root logger). */
  discovererLog: Logger;
  events: EventRecorder;
}

export const crd = (namespace: string, plural: 'vpsienodes' | 'nodegroups') => ({
  group: GROUP,
  version: VERSION,
  namespace,
  plural,
});

/** The Nodes of this simulated cluster (the apiserver is shared with other test files' simulators). */
export async function listClusterNodes(ctx: ControllerContext): Promise<V1Node[]> {
  return (await ctx.core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${ctx.simulatorId}` })).items;
}

/** Addresses of a Node of a type (InternalIP, ExternalIP, Hostname). */
export function addressesOf(node: V1Node, ...types: string[]): string[] {
  return (node.status?.addresses ?? []).filter((a) => types.includes(a.type)).map((a) => a.address);
}
