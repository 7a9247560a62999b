/**
 * Where the controller runs, as the upstream kustomize manifests deploy it (`deploy/manifests/deployment.yaml`):
 * Deployment `vpsie-autoscaler-controller` in kube-system, labels and selector `app=vpsie-autoscaler,
 * component=controller`, container `controller`. Each simulator adds its own ReplicaSet
 * (`vpsie-autoscaler-controller-<hash>`, label `pod-template-hash`) and Pod bound to a Node
 * `controller-node-<id>` (a control-plane node) whose kubelet is the simulator's FakeKubelet on 127.0.0.1, so
 * `pods/log` travels apiserver → kubelet as on a real cluster. The Deployment is shared by the simulators of
 * parallel test files: created when absent, never deleted.
 */
import type { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  CONTROLLER_CONTAINER,
  CONTROLLER_DEPLOYMENT,
  CONTROLLER_IMAGE,
  CONTROLLER_POD_LABELS,
  LABEL_SIMULATOR,
} from './names';
import { nodeConditions } from './kubelet';
import type { ControllerPod } from './types';
import { MERGE, rand, statusOf } from './util';

export async function registerControllerPod(
  core: CoreV1Api,
  apps: AppsV1Api,
  p: { namespace: string; simulatorId: string; kubeletPort: number; version: string },
): Promise<ControllerPod> {
  const ns = p.namespace;
  const hash = rand(10);
  const nodeName = `controller-node-${p.simulatorId}`;
  const rsName = `${CONTROLLER_DEPLOYMENT}-${hash}`;
  const podName = `${rsName}-${rand(5)}`;
  const podLabels = { ...CONTROLLER_POD_LABELS, 'pod-template-hash': hash, [LABEL_SIMULATOR]: p.simulatorId };
  const container = {
    name: CONTROLLER_CONTAINER,
    image: CONTROLLER_IMAGE,
    command: ['/vpsie-autoscaler'],
    args: ['--metrics-addr=:8080', '--health-addr=:8081', '--leader-election=true', '--log-level=info'],
  };
  const now = new Date().toISOString();

  await core.createNode({
    body: {
      metadata: {
        name: nodeName,
        labels: {
          'kubernetes.io/hostname': nodeName,
          'kubernetes.io/os': 'linux',
          'node-role.kubernetes.io/control-plane': '',
          [LABEL_SIMULATOR]: p.simulatorId,
        },
      },
    },
  });
  await core.patchNodeStatus(
    {
      name: nodeName,
      body: {
        status: {
          // Only an InternalIP: the apiserver's address preference (Hostname first) would try to resolve a name.
          addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
          daemonEndpoints: { kubeletEndpoint: { Port: p.kubeletPort } },
          conditions: nodeConditions(true, now),
          capacity: { cpu: '4', memory: '8Gi', pods: '110' },
          allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
          nodeInfo: {
            architecture: 'amd64',
            bootID: p.simulatorId,
            containerRuntimeVersion: 'containerd://1.7.22',
            kernelVersion: '5.15.0-122-generic',
            kubeProxyVersion: p.version,
            kubeletVersion: p.version,
            machineID: p.simulatorId,
            operatingSystem: 'linux',
            osImage: 'Ubuntu 22.04.5 LTS',
            systemUUID: p.simulatorId,
          },
        },
      },
    },
    MERGE,
  );

  let deploymentUid: string | undefined;
  try {
    const d = await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: CONTROLLER_DEPLOYMENT, namespace: ns, labels: { ...CONTROLLER_POD_LABELS } },
        spec: {
          replicas: 1,
          selector: { matchLabels: { ...CONTROLLER_POD_LABELS } },
          template: {
            metadata: { labels: { ...CONTROLLER_POD_LABELS } },
            spec: { serviceAccountName: CONTROLLER_DEPLOYMENT, containers: [container] },
          },
        },
      },
    });
    deploymentUid = d.metadata?.uid;
  } catch (err) {
    if (statusOf(err) !== 409) throw err;
    deploymentUid = (await apps.readNamespacedDeployment({ namespace: ns, name: CONTROLLER_DEPLOYMENT }))
      .metadata?.uid;
  }
  const owner = (kind: string, name: string, uid: string) => [
    { apiVersion: 'apps/v1', kind, name, uid, controller: true, blockOwnerDeletion: true },
  ];
  const rs = await apps.createNamespacedReplicaSet({
    namespace: ns,
    body: {
      metadata: {
        name: rsName,
        namespace: ns,
        labels: podLabels,
        ownerReferences: deploymentUid ? owner('Deployment', CONTROLLER_DEPLOYMENT, deploymentUid) : [],
      },
      spec: {
        replicas: 1,
        selector: { matchLabels: podLabels },
        template: { metadata: { labels: podLabels }, spec: { containers: [container] } },
      },
    },
  });
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name: podName,
        namespace: ns,
        labels: podLabels,
        ownerReferences: owner('ReplicaSet', rsName, rs.metadata?.uid ?? ''),
      },
      spec: { nodeName, containers: [container], terminationGracePeriodSeconds: 30 },
    },
  });
  await core.patchNamespacedPodStatus(
    {
      namespace: ns,
      name: podName,
      body: {
        status: {
          phase: 'Running',
          hostIP: '127.0.0.1',
          podIP: '10.244.0.10',
          startTime: now,
          conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
            type,
            status: 'True',
            lastTransitionTime: now,
          })),
          containerStatuses: [
            {
              name: CONTROLLER_CONTAINER,
              image: CONTROLLER_IMAGE,
              imageID: `${CONTROLLER_IMAGE}@sha256:${'0'.repeat(64)}`,
              ready: true,
              started: true,
              restartCount: 0,
              state: { running: { startedAt: now } },
            },
          ],
        },
      },
    },
    MERGE,
  );
  return {
    namespace: ns,
    name: podName,
    container: CONTROLLER_CONTAINER,
    nodeName,
    replicaSet: rsName,
    deployment: CONTROLLER_DEPLOYMENT,
    labels: podLabels,
  };
}
