/**
 * VPSie's side and the machines' kubelets. The controller's add/slave calls go over HTTP to the VPSie
 * simulator; this actor notes which VPSieNode asked for which request (the controller makes one call at a
 * time), answers in VPSie's place for staged VPSieNodes, and then plays what VPSie and the machine do:
 *
 * - an accepted asynchronous request becomes a machine after `vpsieCreateMs` (`completeSlaveRequest`,
 *   status `provisioning`, listed in `GET /vm` unless the world or the scenario says not), which runs after
 *   `vmBootMs`; `creation-never-completes` leaves the request pending, `stuck-provisioning` the machine booting;
 * - every running machine of the cluster gets a kubelet that registers its Node `nodeRegisterMs` later (once:
 *   a kubelet does not register again after its Node is deleted) and turns it Ready after `nodeReadyMs`,
 *   unless `never-registers`, or its VPSieNode's `spec.kubernetesVersion` does not join the cluster (the
 *   kubelet's journal says why).
 */
import type { V1Node } from '@kubernetes/client-node';
import type { VPSieSimulator } from '../vpsie-simulator';
import type { WorldHooks } from './context';
import type { Kubelets } from './kubelet';
import { stagedAnswer, type Stages } from './scenarios';
import type { AddSlaveAnswer, SimTimings, VPSieNodeObj } from './types';
import type { Override, VPS } from './vpsie-client';

interface Tracked {
  vpsieNode?: string;
  requestId?: number;
  /** The machine's identifier (known from the request's answer, or once VPSie made it). */
  identifier?: string;
  requestedAt: number;
  createdAt?: number;
  runningAt?: number;
  registeredAt?: number;
  /** No kubelet at all (an orphan without Node). */
  noKubelet?: boolean;
}

export interface WorldDeps {
  vpsie: VPSieSimulator;
  kubelets: Kubelets;
  stages: Stages;
  timings: () => SimTimings;
  cluster: () => string;
  answer?: AddSlaveAnswer;
  inVmList: boolean;
  hostnamePrefix: boolean;
  clusterVersion: () => string;
  versionJoins: (version: string) => boolean;
}

export class World implements WorldHooks {
  private readonly tracked: Tracked[] = [];
  private caller?: string;
  private unsubscribe?: () => void;

  constructor(private readonly d: WorldDeps) {}

  start(): void {
    if (this.d.answer) this.d.vpsie.setAddSlaveAnswer(this.d.answer);
    this.unsubscribe = this.d.vpsie.onSlaveRequested((req) => {
      if (req.clusterIdentifier !== this.d.cluster()) return;
      this.tracked.push({
        vpsieNode: this.caller,
        requestId: req.id,
        ...(req.identifier ? { identifier: req.identifier } : {}),
        requestedAt: Date.now(),
      });
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  // ---- hooks the controller calls ----------------------------------------------------------------------

  overrideFor(vn: VPSieNodeObj): Override | undefined {
    const stage = this.d.stages.behaviour(vn.metadata.name);
    if (!stage) return undefined;
    return (method, path) => stagedAnswer(stage, method, path, this.workers());
  }

  addSlaveStarting(vn: VPSieNodeObj): void {
    this.caller = vn.metadata.name;
    const answer = this.d.stages.behaviour(vn.metadata.name)?.options.answer;
    if (answer) this.d.vpsie.setAddSlaveAnswer(answer);
  }

  addSlaveDone(vn: VPSieNodeObj, vps: VPS | undefined): void {
    this.caller = undefined;
    if (this.d.stages.behaviour(vn.metadata.name)?.options.answer)
      this.d.vpsie.setAddSlaveAnswer(this.d.answer ?? 'async-identifier');
    if (vps && vps.id !== 0 && vps.identifier) {
      // A synchronous answer: VPSie made the machine at once (running, unless it is staged not to boot).
      const now = Date.now();
      this.tracked.push({
        vpsieNode: vn.metadata.name,
        identifier: vps.identifier,
        requestedAt: now,
        createdAt: now,
      });
      const stage = this.d.stages.behaviour(vn.metadata.name);
      if (stage?.scenario === 'stuck-provisioning')
        this.d.vpsie.updateK8sNode(this.d.cluster(), vps.identifier, {
          status: stage.options.vmStatus ?? 'provisioning',
        });
    }
  }

  /** A machine that is no VPSieNode's (an orphan), with or without a kubelet. */
  adopt(identifier: string, kubelet: boolean): void {
    this.tracked.push({ identifier, requestedAt: Date.now(), createdAt: Date.now(), noKubelet: !kubelet });
  }

  /** The VPSieNode a machine was made for, if known. */
  vpsieNodeOf(identifier: string): string | undefined {
    return this.tracked.find((t) => t.identifier === identifier)?.vpsieNode;
  }

  private workers(): number {
    const cluster = this.d.vpsie.k8sCluster(this.d.cluster());
    return (cluster?.nodes.length ?? 0) + this.d.vpsie.slaveRequests(this.d.cluster()).length;
  }

  // ---- what happens meanwhile --------------------------------------------------------------------------

  async tick(vns: Map<string, VPSieNodeObj>, nodes: Map<string, V1Node>): Promise<void> {
    const { vpsie, stages } = this.d;
    const t = this.d.timings();
    const now = Date.now();
    const clusterId = this.d.cluster();
    const cluster = vpsie.k8sCluster(clusterId);
    if (!cluster) return;
    const pending = new Set(vpsie.slaveRequests(clusterId).map((r) => r.id));
    for (const m of cluster.nodes) {
      if (!this.tracked.some((x) => x.identifier === m.identifier))
        this.tracked.push({ identifier: m.identifier, requestedAt: now, createdAt: now });
    }

    for (const x of [...this.tracked]) {
      const stage = stages.behaviour(x.vpsieNode);
      const scenario = stage?.scenario ?? 'healthy';
      if (x.requestId !== undefined && x.createdAt === undefined) {
        if (!pending.has(x.requestId)) {
          // Completed by someone else: the machine carries the request's identifier, if it had one.
          x.createdAt = now;
        } else if (scenario !== 'creation-never-completes' && now >= x.requestedAt + t.vpsieCreateMs) {
          const prefix = stage?.options.hostnamePrefix ?? this.d.hostnamePrefix;
          const machine = vpsie.completeSlaveRequest(x.requestId, {
            status: 'provisioning',
            inVmList: scenario === 'k8s-managed' ? false : (stage?.options.inVmList ?? this.d.inVmList),
            ...(prefix && x.vpsieNode ? { hostname: `${x.vpsieNode}-k8s-worker` } : {}),
          });
          x.identifier = machine.identifier;
          x.createdAt = now;
        }
        continue;
      }
      const machine = cluster.nodes.find((n) => n.identifier === x.identifier);
      if (!machine) {
        if (x.createdAt !== undefined) this.tracked.splice(this.tracked.indexOf(x), 1);
        continue;
      }
      const createdAt = x.createdAt ?? now;
      if (scenario === 'stuck-provisioning') {
        const keep = stage?.options.vmStatus ?? 'provisioning';
        if (machine.status !== keep) vpsie.updateK8sNode(clusterId, machine.identifier, { status: keep });
        continue;
      }
      if (machine.status === 'provisioning' && now >= createdAt + t.vmBootMs) {
        vpsie.updateK8sNode(clusterId, machine.identifier, { status: 'running' });
        x.runningAt = now;
        continue;
      }
      if (machine.status !== 'running' || x.noKubelet) continue;
      x.runningAt ??= now;
      await this.kubelet(x, machine, nodes.get(machine.hostname), vns, now);
    }
  }

  private async kubelet(
    x: Tracked,
    machine: { hostname: string; ip: string | null; identifier: string },
    node: V1Node | undefined,
    vns: Map<string, VPSieNodeObj>,
    now: number,
  ): Promise<void> {
    const t = this.d.timings();
    const { kubelets } = this.d;
    const scenario = this.d.stages.scenario(x.vpsieNode);
    if (x.registeredAt === undefined) {
      if (node || now < (x.runningAt ?? now) + t.nodeRegisterMs) return;
      const version =
        (x.vpsieNode && vns.get(x.vpsieNode)?.spec.kubernetesVersion) || this.d.clusterVersion();
      if (scenario === 'never-registers') {
        kubelets.note(
          machine.hostname,
          'Unable to register node with API server: the kubelet never started (cloud-init failed)',
        );
        return;
      }
      if (!this.d.versionJoins(version)) {
        kubelets.note(
          machine.hostname,
          `Unable to register node with API server: kubelet version ${version} is not supported by the control plane (${this.d.clusterVersion()})`,
        );
        return;
      }
      const ip = this.d.stages.behaviour(x.vpsieNode)?.options.nodeIP ?? machine.ip;
      await kubelets.register({ ...machine, ip, cpu: 2, ramMB: 4096, diskGB: 80 }, version, false);
      x.registeredAt = now;
      return;
    }
    const ready = (node?.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    if (node && !ready && now >= x.registeredAt + t.nodeReadyMs) await kubelets.setReady(machine.hostname);
  }
}
