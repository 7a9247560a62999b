/**
 * The kubelets of the machines VPSie makes: a kubelet registers its Node (named after the machine's hostname,
 * with its InternalIP and Hostname addresses, its version, NotReady), then turns Ready. It sets no
 * autoscaler label: the controller adds those once it matched the Node (joiner.go). Every Node carries
 * LABEL_SIMULATOR, so the simulators of parallel test files never see each other's Nodes.
 */
import type { CoreV1Api, V1Node, V1NodeCondition } from '@kubernetes/client-node';
import { LABEL_SIMULATOR } from './names';
import { MERGE, statusOf } from './util';

export interface Machine {
  hostname: string;
  ip: string | null;
  identifier: string;
  cpu: number;
  ramMB: number;
  diskGB: number;
}

export class Kubelets {
  /** What each kubelet would have in its journal (`journalctl -u kubelet`), by node name. */
  readonly journal = new Map<string, string[]>();

  constructor(
    private readonly core: CoreV1Api,
    private readonly simulatorId: string,
  ) {}

  note(nodeName: string, line: string): void {
    const lines = this.journal.get(nodeName) ?? [];
    if (lines[lines.length - 1] !== line) lines.push(line);
    this.journal.set(nodeName, lines);
  }

  /** Registers the Node of `machine` (NotReady, or Ready when `ready`), with extra labels if any. */
  async register(
    machine: Machine,
    version: string,
    ready: boolean,
    labels: Record<string, string> = {},
  ): Promise<void> {
    const name = machine.hostname;
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        labels: {
          'beta.kubernetes.io/arch': 'amd64',
          'beta.kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          [LABEL_SIMULATOR]: this.simulatorId,
          ...labels,
        },
        annotations: {
          'node.alpha.kubernetes.io/ttl': '0',
          'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        },
      },
    };
    try {
      await this.core.createNode({ body });
    } catch (err) {
      if (statusOf(err) === 409)
        throw new Error(`kubelet: Node ${name} exists already (machine names must be unique)`);
      throw err;
    }
    const capacity = {
      cpu: String(machine.cpu),
      memory: `${machine.ramMB}Mi`,
      pods: '110',
      'ephemeral-storage': `${machine.diskGB}Gi`,
    };
    await this.core.patchNodeStatus(
      {
        name,
        body: {
          status: {
            addresses: [
              ...(machine.ip ? [{ type: 'InternalIP', address: machine.ip }] : []),
              { type: 'Hostname', address: name },
            ],
            capacity,
            allocatable: capacity,
            conditions: nodeConditions(ready, new Date().toISOString()),
            daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
            nodeInfo: {
              architecture: 'amd64',
              bootID: machine.identifier,
              containerRuntimeVersion: 'containerd://1.7.22',
              kernelVersion: '5.15.0-122-generic',
              kubeProxyVersion: version,
              kubeletVersion: version,
              machineID: machine.identifier.replace(/-/g, ''),
              operatingSystem: 'linux',
              osImage: 'Ubuntu 22.04.5 LTS',
              systemUUID: machine.identifier,
            },
          },
        },
      },
      MERGE,
    );
    this.note(name, `Successfully registered node ${name}`);
  }

  async setReady(name: string): Promise<void> {
    await this.core.patchNodeStatus(
      { name, body: { status: { conditions: nodeConditions(true, new Date().toISOString()) } } },
      MERGE,
    );
  }
}

export function nodeConditions(ready: boolean, now: string): V1NodeCondition[] {
  const at = now as unknown as Date; // client-node passes the string through to the wire unchanged
  return [
    ...['MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({
      type,
      status: 'False',
      reason: `KubeletHasNo${type.replace('Pressure', '')}Pressure`,
      message: `kubelet has no ${type.replace('Pressure', '').toLowerCase()} pressure`,
      lastHeartbeatTime: at,
      lastTransitionTime: at,
    })),
    {
      type: 'Ready',
      status: ready ? 'True' : 'False',
      reason: ready ? 'KubeletReady' : 'KubeletNotReady',
      message: ready
        ? 'kubelet is posting ready status'
        : 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized',
      lastHeartbeatTime: at,
      lastTransitionTime: at,
    },
  ];
}
