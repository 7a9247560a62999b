/**
 * The controller manager's loop, once per tick: list what the informers would hold (the namespace's VPSieNodes
 * and NodeGroups, the cluster's Nodes), reconcile each object its work queue says is due (VPSieNodes first,
 * then NodeGroups, one at a time), and let the world (VPSie and kubelets) move on. Every reconcile is recorded,
 * which is how a test knows the controller has looked at an object after a point in time.
 */
import type { V1Node } from '@kubernetes/client-node';
import { crd, type VPSieNodeControllerContext } from './context';
import { reconcileNodeGroup, type NodeGroupControllerContext } from './nodegroup-controller';
import { DATA_SCENARIOS, type Stages } from './scenarios';
import type { NodeGroupObj, NodeGroupReconcile, ReconcileRecord, SimTimings, VPSieNodeObj } from './types';
import { LABEL_SIMULATOR } from './names';
import { describeError, MERGE } from './util';
import { reconcileVPSieNode } from './vpsienode-controller';
import { WorkQueue } from './workqueue';
import type { World } from './world';

export interface ManagerDeps {
  vn: VPSieNodeControllerContext;
  ng: NodeGroupControllerContext;
  stages: Stages;
  world: World;
  /** NodeGroups whose controller only hears about changes to the NodeGroup itself. */
  stalled: Set<string>;
  /** Writes the spec data a data scenario stages; answers the patch or undefined when already wrong. */
  stagedSpec: (
    scenario: string,
    options: Record<string, unknown>,
    spec: { kubernetesVersion?: string; sshKeyIDs?: string[] },
  ) => Record<string, unknown> | undefined;
  onRecord: (r: ReconcileRecord) => void;
  onNodeGroupReconcile: (r: NodeGroupReconcile) => void;
}

interface NGSeen {
  generation?: number;
  annotations: string;
  labels: string;
}

export class Manager {
  private readonly vnQueue = new WorkQueue();
  private readonly ngQueue = new WorkQueue();
  /** What the NodeGroup controller's VPSieNode watch has delivered: rv by VPSieNode uid, with its owner. */
  private readonly ownedSeen = new Map<string, { rv: string; owner?: string }>();
  private readonly ngSeen = new Map<string, NGSeen>();

  constructor(private readonly d: ManagerDeps) {}

  private get timings(): SimTimings {
    return this.d.vn.timings();
  }

  async tick(running: () => boolean): Promise<void> {
    const { vn: ctx } = this.d;
    const [vnList, ngList, nodeList] = await Promise.all([
      ctx.custom.listNamespacedCustomObject(crd(ctx.namespace, 'vpsienodes')) as Promise<{
        items: VPSieNodeObj[];
      }>,
      ctx.custom.listNamespacedCustomObject(crd(ctx.namespace, 'nodegroups')) as Promise<{
        items: NodeGroupObj[];
      }>,
      ctx.core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${ctx.simulatorId}` }),
    ]);
    for (const v of vnList.items)
      this.d.stages.observe(v.metadata.uid, v.metadata.name, v.spec?.nodeGroupName ?? '');
    // A NodeGroup whose spec was just staged is reconciled from its next listing, as after any edit.
    const edited = await this.writeStagedData(vnList.items, ngList.items);

    const vns = new Map<string, VPSieNodeObj>();
    for (const v of vnList.items) {
      if (!running()) return;
      vns.set(v.metadata.name, await this.reconcileVN(v));
    }
    this.pokeOwners(vnList.items);
    for (const ng of ngList.items) {
      if (!running()) return;
      if (!edited.has(ng.metadata.name)) await this.reconcileNG(ng);
    }
    const nodes = new Map<string, V1Node>(nodeList.items.map((n) => [n.metadata?.name ?? '', n]));
    await this.d.world.tick(vns, nodes);
    this.vnQueue.forgetExcept(new Set(vnList.items.map((v) => v.metadata.uid)));
    this.ngQueue.forgetExcept(new Set(ngList.items.map((n) => n.metadata.uid)));
  }

  private async reconcileVN(vn: VPSieNodeObj): Promise<VPSieNodeObj> {
    const now = Date.now();
    const rv = vn.metadata.resourceVersion ?? '';
    const trigger = this.vnQueue.due(vn.metadata.uid, rv, now, this.timings);
    if (!trigger) return vn;
    const phaseBefore = vn.status?.phase;
    const outcome = await reconcileVPSieNode(this.d.vn, vn);
    const end = Date.now();
    this.vnQueue.done(vn.metadata.uid, rv, outcome, end, this.timings);
    this.d.onRecord({
      controller: 'vpsienode',
      name: vn.metadata.name,
      uid: vn.metadata.uid,
      trigger,
      startedAt: now,
      endedAt: end,
      ...(phaseBefore ? { phaseBefore } : {}),
      ...(outcome.phaseAfter ? { phaseAfter: outcome.phaseAfter } : {}),
      ...(outcome.requeue
        ? { requeueAfterMs: 0 }
        : outcome.after !== undefined
          ? { requeueAfterMs: outcome.after }
          : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      wrote: outcome.wrote,
    });
    return vn;
  }

  /** The NodeGroup controller Owns VPSieNodes: any change of one (or its deletion) wakes its owner. */
  private pokeOwners(vns: VPSieNodeObj[]): void {
    const present = new Set<string>();
    for (const v of vns) {
      present.add(v.metadata.uid);
      const owner = v.metadata.ownerReferences?.find((o) => o.controller && o.kind === 'NodeGroup')?.uid;
      const prev = this.ownedSeen.get(v.metadata.uid);
      if (owner && prev?.rv !== v.metadata.resourceVersion) this.ngQueue.poke(owner);
      this.ownedSeen.set(v.metadata.uid, { rv: v.metadata.resourceVersion ?? '', owner });
    }
    for (const [uid, seen] of this.ownedSeen) {
      if (present.has(uid)) continue;
      if (seen.owner) this.ngQueue.poke(seen.owner);
      this.ownedSeen.delete(uid);
    }
  }

  private async reconcileNG(ng: NodeGroupObj): Promise<void> {
    const now = Date.now();
    const uid = ng.metadata.uid;
    const rv = ng.metadata.resourceVersion ?? '';
    let trigger = this.ngQueue.due(uid, rv, now, this.timings);
    if (trigger && this.d.stalled.has(ng.metadata.name) && trigger !== 'created' && trigger !== 'updated')
      trigger = undefined;
    if (!trigger) return;
    const outcome = await reconcileNodeGroup(this.d.ng, ng);
    const end = Date.now();
    this.ngQueue.done(uid, outcome.resourceVersion, outcome, end, this.timings);
    const seen: NGSeen = {
      generation: ng.metadata.generation,
      annotations: JSON.stringify(ng.metadata.annotations ?? {}),
      labels: JSON.stringify(ng.metadata.labels ?? {}),
    };
    const prev = this.ngSeen.get(uid);
    this.ngSeen.set(uid, seen);
    const reason: NodeGroupReconcile['reason'] =
      trigger === 'created' || !prev
        ? 'created'
        : trigger === 'updated'
          ? prev.generation !== seen.generation
            ? 'spec-changed'
            : prev.annotations !== seen.annotations
              ? 'annotations-changed'
              : prev.labels !== seen.labels
                ? 'labels-changed'
                : 'status-changed'
          : trigger === 'owned-vpsienode'
            ? 'vpsienodes-changed'
            : trigger === 'resync'
              ? 'resync'
              : 'requeue';
    const triggerValue = ng.metadata.annotations?.['reconcile-trigger'];
    this.d.onNodeGroupReconcile({
      nodeGroup: ng.metadata.name,
      reason,
      managed: outcome.managed,
      ...(triggerValue ? { trigger: triggerValue } : {}),
      created: outcome.created,
      at: new Date(now),
    });
    this.d.onRecord({
      controller: 'nodegroup',
      name: ng.metadata.name,
      uid,
      trigger,
      startedAt: now,
      endedAt: end,
      ...(outcome.requeue
        ? { requeueAfterMs: 0 }
        : outcome.after !== undefined
          ? { requeueAfterMs: outcome.after }
          : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      wrote: outcome.wrote,
    });
  }

  /** Data scenarios: the wrong value goes into the target's spec once, as a person's edit would. */
  private async writeStagedData(vns: VPSieNodeObj[], ngs: NodeGroupObj[]): Promise<Set<string>> {
    const ctx = this.d.vn;
    const edited = new Set<string>();
    const targets: [
      Map<string, { scenario: string; options: object; written: boolean }[]>,
      { metadata: { name: string }; spec: object }[],
      'vpsienodes' | 'nodegroups',
    ][] = [
      [this.d.stages.ngData, ngs, 'nodegroups'],
      [this.d.stages.vnData, vns, 'vpsienodes'],
    ];
    for (const [data, objects, plural] of targets) {
      for (const obj of objects) {
        for (const stage of data.get(obj.metadata.name) ?? []) {
          if (stage.written || !DATA_SCENARIOS.has(stage.scenario as never)) continue;
          stage.written = true;
          const patch = this.d.stagedSpec(stage.scenario, stage.options as Record<string, unknown>, obj.spec);
          if (!patch) continue;
          try {
            await ctx.custom.patchNamespacedCustomObject(
              { ...crd(ctx.namespace, plural), name: obj.metadata.name, body: { spec: patch } },
              MERGE,
            );
            if (plural === 'nodegroups') edited.add(obj.metadata.name);
          } catch (err) {
            ctx.error(`staging ${stage.scenario} on ${obj.metadata.name}: ${describeError(err)}`, err);
          }
        }
      }
    }
    return edited;
  }
}
