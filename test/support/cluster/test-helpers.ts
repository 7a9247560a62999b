/**
 * Helpers for tests that drive the cluster simulator through the real apiserver: a namespace, a VPSie
 * simulator and a cluster simulator per test file, reads of what the controller wrote, and waits that poll for
 * a positive condition (never a fixed sleep).
 */
import { randomBytes } from 'node:crypto';
import { ApiException, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { CoreV1Event, V1Node } from '@kubernetes/client-node';
import { createTestNamespace, kubeConfigFor } from '../kube';
import { VPSieSimulator } from '../vpsie-simulator';
import { ClusterSimulator } from './index';
import { API_VERSION, GROUP, VERSION } from './names';
import type { ClusterSimulatorOptions, Condition, NodeGroupObj, VPSieNodeObj, VPSieNodeSpec } from './types';

export const uniq = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

export class SimTest {
  readonly admin = kubeConfigFor('admin');
  readonly core = this.admin.makeApiClient(CoreV1Api);
  readonly custom = this.admin.makeApiClient(CustomObjectsApi);
  readonly runbookCore = kubeConfigFor('runbook').makeApiClient(CoreV1Api);
  readonly runbookCustom = kubeConfigFor('runbook').makeApiClient(CustomObjectsApi);
  ns = '';
  vpsie = new VPSieSimulator();
  sim!: ClusterSimulator;

  async start(prefix: string, options: Partial<ClusterSimulatorOptions> = {}): Promise<void> {
    this.ns = await createTestNamespace(prefix);
    await this.vpsie.start();
    this.sim = new ClusterSimulator({
      kubeConfig: this.admin,
      vpsie: this.vpsie,
      namespace: this.ns,
      ...options,
    });
    await this.sim.start();
  }

  async stop(): Promise<void> {
    await this.sim?.stop();
    await this.vpsie.stop();
  }

  crd(plural: 'vpsienodes' | 'nodegroups') {
    return { group: GROUP, version: VERSION, namespace: this.ns, plural };
  }

  /** Polls `fn` until it answers something other than undefined/false; fails with what it last saw. */
  async waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 45_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const v = await fn();
        if (v !== undefined && v !== false) return v;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}${last ? `: ${String(last)}` : ''}; sim errors: ${this.sim.errors}`,
        );
      await new Promise((r) => setTimeout(r, 40));
    }
  }

  async createVN(
    name: string,
    spec: Partial<VPSieNodeSpec> = {},
    metadata: Record<string, unknown> = {},
  ): Promise<VPSieNodeObj> {
    return (await this.custom.createNamespacedCustomObject({
      ...this.crd('vpsienodes'),
      body: {
        apiVersion: API_VERSION,
        kind: 'VPSieNode',
        metadata: { name, namespace: this.ns, ...metadata },
        spec: this.sim.vpsieNodeSpec(spec),
      },
    })) as VPSieNodeObj;
  }

  async getVN(name: string): Promise<VPSieNodeObj | undefined> {
    return orUndefined(
      this.custom.getNamespacedCustomObject({ ...this.crd('vpsienodes'), name }) as Promise<VPSieNodeObj>,
    );
  }

  async getNG(name: string): Promise<NodeGroupObj> {
    return (await this.custom.getNamespacedCustomObject({ ...this.crd('nodegroups'), name })) as NodeGroupObj;
  }

  async listVNs(nodeGroup: string): Promise<VPSieNodeObj[]> {
    const list = (await this.custom.listNamespacedCustomObject({
      ...this.crd('vpsienodes'),
      labelSelector: `autoscaler.vpsie.com/nodegroup=${nodeGroup}`,
    })) as { items: VPSieNodeObj[] };
    return list.items;
  }

  async deleteVN(name: string, api: CustomObjectsApi = this.custom): Promise<void> {
    await api.deleteNamespacedCustomObject({ ...this.crd('vpsienodes'), name });
  }

  async node(name: string): Promise<V1Node | undefined> {
    return orUndefined(this.core.readNode({ name }));
  }

  /** The Events about an object, oldest first (ties broken by name, which carries the nanoseconds). */
  async events(name: string): Promise<CoreV1Event[]> {
    const list = await this.core.listNamespacedEvent({
      namespace: this.ns,
      fieldSelector: `involvedObject.name=${name}`,
    });
    const t = (e: CoreV1Event) => new Date(e.firstTimestamp ?? 0).getTime();
    return list.items.sort(
      (a, b) => t(a) - t(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
    );
  }

  async reasons(name: string): Promise<string[]> {
    return (await this.events(name)).map((e) => e.reason ?? '');
  }

  /** Waits for the VPSieNode to reach `phase`; answers it. */
  phase(name: string, phase: string, timeoutMs?: number): Promise<VPSieNodeObj> {
    return this.waitFor(
      `${name} in phase ${phase}`,
      async () => {
        const vn = await this.getVN(name);
        return vn?.status?.phase === phase ? vn : undefined;
      },
      timeoutMs,
    );
  }

  /** Waits until the VPSieNode is gone. */
  gone(name: string, timeoutMs?: number): Promise<true> {
    return this.waitFor(`${name} gone`, async () => !(await this.getVN(name)), timeoutMs);
  }

  /** The phases the controller moved a VPSieNode through, in order, from its reconcile records. */
  phasesOf(name: string): string[] {
    const out: string[] = [];
    for (const r of this.sim.records)
      if (
        r.controller === 'vpsienode' &&
        r.name === name &&
        r.phaseAfter &&
        out[out.length - 1] !== r.phaseAfter
      )
        out.push(r.phaseAfter);
    return out;
  }

  logsAbout(name: string): Record<string, unknown>[] {
    return this.sim
      .controllerLogs()
      .filter((l) => l.includes(name))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export const condition = (vn: { status?: { conditions?: Condition[] } } | undefined, type: string) =>
  (vn?.status?.conditions ?? []).find((c) => c.type === type);

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}
