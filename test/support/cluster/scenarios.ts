/**
 * Staged scenarios: which VPSieNode gets which behaviour, and the misconfigurations written into specs.
 * A behaviour staged on a NodeGroup binds to its next `count` VPSieNodes when the simulator first sees them;
 * data scenarios (`version-mismatch`, `unknown-ssh-keys`) are written once into the target's spec and then
 * the world follows the data.
 */
import type { Scenario, StageOptions, StageTarget } from './types';
import { majorMinor, rand } from './util';
import type { WireAnswer } from './vpsie-client';

export const DATA_SCENARIOS: ReadonlySet<Scenario> = new Set(['version-mismatch', 'unknown-ssh-keys']);

export interface Stage {
  scenario: Scenario;
  options: StageOptions;
  /** NodeGroup behaviours: VPSieNodes left to bind. */
  remaining: number;
}

export interface DataStage extends Stage {
  /** The spec has been written (or was wrong already). */
  written: boolean;
}

export class Stages {
  private readonly vn = new Map<string, Stage>();
  private readonly ng = new Map<string, Stage>();
  readonly vnData = new Map<string, DataStage[]>();
  readonly ngData = new Map<string, DataStage[]>();
  /** VPSieNodes (by uid) that have been seen, so a NodeGroup stage binds only to new ones. */
  private readonly seen = new Set<string>();

  stage(target: StageTarget, scenario: Scenario, options: StageOptions = {}): void {
    const vnName = typeof target === 'string' ? target : 'vpsieNode' in target ? target.vpsieNode : undefined;
    const entry: Stage = { scenario, options, remaining: options.count ?? Infinity };
    const [behaviours, data, name] = vnName
      ? [this.vn, this.vnData, vnName]
      : [this.ng, this.ngData, (target as { nodeGroup: string }).nodeGroup];
    if (scenario === 'healthy' && Object.keys(options).length === 0) {
      behaviours.delete(name);
      data.delete(name);
    } else if (DATA_SCENARIOS.has(scenario)) {
      data.set(name, [
        ...(data.get(name) ?? []).filter((d) => d.scenario !== scenario),
        { ...entry, written: false },
      ]);
    } else {
      behaviours.set(name, entry);
    }
  }

  /** Called for every VPSieNode the simulator lists: binds a NodeGroup's behaviour to a new VPSieNode. */
  observe(uid: string, name: string, nodeGroup: string): void {
    if (this.seen.has(uid)) return;
    this.seen.add(uid);
    if (this.vn.has(name)) return;
    const ngStage = this.ng.get(nodeGroup);
    if (ngStage && ngStage.remaining > 0) {
      ngStage.remaining -= 1;
      this.vn.set(name, ngStage);
    }
  }

  behaviour(vpsieNode: string | undefined): Stage | undefined {
    return vpsieNode ? this.vn.get(vpsieNode) : undefined;
  }

  scenario(vpsieNode: string | undefined): Scenario {
    return this.behaviour(vpsieNode)?.scenario ?? 'healthy';
  }
}

/**
 * What VPSie answers a staged VPSieNode's calls, instead of asking it: the error bodies are VPSie's own
 * (`{"error": true, "code", "message"}` on the managed-Kubernetes endpoints, `{error, message, code}` on /vm).
 */
export function stagedAnswer(
  stage: Stage | undefined,
  method: string,
  path: string,
  workers: number,
): WireAnswer | undefined {
  if (!stage) return undefined;
  const json = (status: number, body: unknown): WireAnswer => ({ status, body: JSON.stringify(body) });
  const addSlave = method === 'POST' && /\/add\/slave\/group\//.test(path);
  if (stage.scenario === 'vm-creation-fails' && addSlave) {
    const status = stage.options.status ?? 500;
    return json(status, {
      error: true,
      code: status === 200 ? 500 : status,
      message: stage.options.error ?? 'Internal server error',
    });
  }
  if (stage.scenario === 'capacity-limit' && addSlave) {
    return json(500, {
      error: true,
      code: 500,
      message: `Worker nodes count exceeds the allowed limit ${workers}`,
      type: false,
    });
  }
  if (stage.scenario === 'vm-delete-fails' && method === 'DELETE') {
    if (path.endsWith('/delete/slave'))
      return json(500, { error: true, code: 500, message: 'Internal server error' });
    if (path.startsWith('/vm/'))
      return json(500, { error: 'Internal Server Error', message: 'Internal server error', code: 500 });
  }
  return undefined;
}

export type VersionPolicy = 'same-minor' | 'kubelet-skew' | 'any';

/** Whether a kubelet of `version` registers with a control plane of `cluster` under `policy`. */
export function versionJoins(policy: VersionPolicy, cluster: string, version: string): boolean {
  if (!version || policy === 'any') return true;
  const node = majorMinor(version);
  const cp = majorMinor(cluster);
  if (!node || !cp) return true;
  if (node[0] !== cp[0]) return false;
  if (policy === 'same-minor') return node[1] === cp[1];
  return node[1] <= cp[1] && node[1] >= cp[1] - 3;
}

/** The spec patch a data scenario writes, or undefined when the data is wrong already. */
export function stagedSpec(
  scenario: string,
  opts: StageOptions,
  spec: { kubernetesVersion?: string; sshKeyIDs?: string[] },
  world: { cluster: string; joins: (v: string) => boolean; knownKeys: string[] },
): Record<string, unknown> | undefined {
  if (scenario === 'version-mismatch') {
    if (spec.kubernetesVersion && !world.joins(spec.kubernetesVersion)) return undefined;
    const [major, minor] = majorMinor(world.cluster) ?? [1, 34];
    return { kubernetesVersion: opts.kubernetesVersion ?? `v${major}.${Math.max(0, minor - 4)}.0` };
  }
  if ((spec.sshKeyIDs ?? []).some((id) => !world.knownKeys.includes(id))) return undefined;
  return { sshKeyIDs: opts.sshKeyIDs ?? [`sshkey-${rand(8)}`] };
}
