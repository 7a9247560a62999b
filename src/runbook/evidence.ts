/**
 * Evidence the runbook gathers besides the VPSieNode itself (events, controller logs, Node, NodeGroup, cluster
 * version), reduced from what the API server returns to small plain data: activity results are stored in
 * Temporal history forever, so no managedFields, no raw objects, nothing secret.
 */
import { conditions, identity, num, obj, str, strings, time } from './read';
import type { Condition, VPSieNodeSnapshot } from './types';

/** Names a NodeGroup custom resource (`autoscaler.vpsie.com/v1alpha1`, namespaced). */
export interface NodeGroupRef {
  namespace: string;
  name: string;
}

/** Labels the controller puts on the Nodes (and VPSieNodes) it made. */
export const VPSIENODE_LABEL = 'autoscaler.vpsie.com/vpsienode';
export const NODEGROUP_LABEL = 'autoscaler.vpsie.com/nodegroup';
/** The controller reconciles only NodeGroups labelled `autoscaler.vpsie.com/managed: "true"`. */
export const MANAGED_LABEL = 'autoscaler.vpsie.com/managed';

/**
 * Where the controller runs: Deployment `vpsie-autoscaler-controller` in kube-system (the upstream manifests),
 * pods labelled `app=vpsie-autoscaler`, container `controller`. Helm names things after the release, and the
 * runbook's `deployment/vpsie-autoscaler` is an older name, so pods are found by a label selector, never by
 * Deployment or ReplicaSet names. Each is configurable (src/config.ts).
 */
export const DEFAULT_CONTROLLER_NAMESPACE = 'kube-system';
export const DEFAULT_CONTROLLER_LABEL_SELECTOR = 'app=vpsie-autoscaler';
export const DEFAULT_CONTROLLER_CONTAINER = 'controller';

/** Which pods are the controller's, and which of their containers to read. */
export interface ControllerSelector {
  namespace: string;
  labelSelector: string;
  /** Read this container; a pod without one is read from its first container. */
  container: string;
}

/** What a read that found no controller pod says: a fact about the selector, not a diagnosis. */
export function noControllerPodsNote(
  selector: Pick<ControllerSelector, 'namespace' | 'labelSelector'>,
): string {
  return `no pods match ${selector.labelSelector} in ${selector.namespace}`;
}
/** The annotation the runbook's "Force NodeGroup Reconciliation" sets to the current unix time. */
export const RECONCILE_TRIGGER_ANNOTATION = 'reconcile-trigger';

/** `kubectl version`: the API server's version (runbook cause 4, invalid Kubernetes version). */
export interface ClusterVersion {
  major: string;
  minor: string;
  /** e.g. v1.34.4 */
  gitVersion: string;
}

/** One core/v1 Event about an object (runbook step 2). */
export interface EventSummary {
  /** Normal or Warning. */
  type: string | null;
  reason: string | null;
  message: string | null;
  /** How many times it happened (series.count, else count, else 1). */
  count: number;
  firstSeen: string | null;
  /** lastTimestamp, else series.lastObservedTime, else eventTime, else firstTimestamp, else creation. */
  lastSeen: string | null;
  /** Who reported it: reportingController, else source.component. */
  source: string | null;
  involvedObject: { kind: string | null; name: string | null; uid: string | null };
}

/** A Node as runbook step 5 ("Check Node Registration") sees it. */
export interface NodeSnapshot {
  name: string;
  uid: string;
  /** Only the controller's labels (`autoscaler.vpsie.com/*`). */
  labels: Record<string, string>;
  /** status of the Ready condition; null when the kubelet never reported one. */
  readyStatus: string | null;
  readyReason: string | null;
  readySince: string | null;
  kubeletVersion: string | null;
  internalIP: string | null;
  externalIP: string | null;
  creationTimestamp: string | null;
}

/** How runbook step 5 found the Node: by the VM's IP, by the controller's label, or by name. */
export type NodeMatch = 'ip' | 'label' | 'name';

/** What identifies a VPSieNode's Node; {@link registrationTargetOf} builds it from a snapshot. */
export interface NodeRegistrationTarget {
  /** The VPSieNode's name: the controller labels its Node `autoscaler.vpsie.com/vpsienode=<name>`. */
  vpsieNode: string;
  /** The VM's addresses (spec.ipAddress, spec.ipv6Address), matched against InternalIP and ExternalIP. */
  ipAddresses: string[];
  /** status.nodeName (else spec.nodeName) and status.hostname, matched against Node names and Hostname addresses. */
  nodeNames: string[];
}

export interface NodeRegistration {
  matchedBy: NodeMatch;
  node: NodeSnapshot;
}

/** A NodeGroup as causes 4 and 5 and the reconciliation step see it. */
export interface NodeGroupSnapshot {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  minNodes: number | null;
  maxNodes: number | null;
  kubernetesVersion: string | null;
  sshKeyIDs: string[];
  offeringIDs: string[];
  datacenterID: string | null;
  osImageID: string | null;
  /** spec.kubeSizeID: VPSie's Kubernetes size (package) id; null when unset. */
  kubeSizeID: number | null;
  /** spec.resourceIdentifier: the VPSie Kubernetes cluster id. */
  resourceIdentifier: string | null;
  /** Labelled `autoscaler.vpsie.com/managed: "true"`: without it the controller ignores the NodeGroup. */
  managed: boolean;
  /** status.vpsieGroupID: the VPSie node group the controller made for it; null until then. */
  vpsieGroupID: number | null;
  /** From status; null while the controller has not written it. */
  desiredNodes: number | null;
  currentNodes: number | null;
  readyNodes: number | null;
  /** annotations['reconcile-trigger'], the unix time of the last forced reconciliation. */
  reconcileTrigger: string | null;
  conditions: Condition[];
}

/** The tail of one controller pod's log, filtered for one VPSieNode (runbook step 3). */
export interface ControllerPodLog {
  pod: string;
  container: string;
  lines: string[];
  /** Why the log could not be read (pod not scheduled, container not started, pod gone); null when it was. */
  error: string | null;
}

/** Reduces a core/v1 Event (raw JSON or client-node's V1Event) to what the runbook shows and reasons about. */
export function toEventSummary(raw: unknown): EventSummary {
  const e = obj(raw);
  const series = obj(e.series);
  const involved = obj(e.involvedObject);
  const firstSeen = time(e.firstTimestamp) ?? time(e.eventTime) ?? time(obj(e.metadata).creationTimestamp);
  return {
    type: str(e.type),
    reason: str(e.reason),
    message: str(e.message),
    count: num(series.count) ?? num(e.count) ?? 1,
    firstSeen,
    lastSeen: time(e.lastTimestamp) ?? time(series.lastObservedTime) ?? time(e.eventTime) ?? firstSeen,
    source: str(e.reportingComponent) ?? str(obj(e.source).component),
    involvedObject: { kind: str(involved.kind), name: str(involved.name), uid: str(involved.uid) },
  };
}

/** Reduces a Node (raw JSON or client-node's V1Node). */
export function toNodeSnapshot(raw: unknown): NodeSnapshot {
  const r = obj(raw);
  const metadata = obj(r.metadata);
  const status = obj(r.status);
  const name = str(metadata.name);
  if (!name) throw new Error('Node object has no metadata.name');
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(metadata.labels))) {
    if (k.startsWith('autoscaler.vpsie.com/') && typeof v === 'string') labels[k] = v;
  }
  const ready = conditions(status.conditions).find((c) => c.type === 'Ready');
  const addresses = (Array.isArray(status.addresses) ? status.addresses : []).map(obj);
  const address = (type: string) => str(addresses.find((a) => a.type === type)?.address);
  return {
    name,
    uid: str(metadata.uid) ?? '',
    labels,
    readyStatus: ready?.status ?? null,
    readyReason: ready?.reason ?? null,
    readySince: ready?.lastTransitionTime ?? null,
    kubeletVersion: str(obj(status.nodeInfo).kubeletVersion),
    internalIP: address('InternalIP'),
    externalIP: address('ExternalIP'),
    creationTimestamp: time(metadata.creationTimestamp),
  };
}

/** The Node identity of a VPSieNode, from what step 1 read. */
export function registrationTargetOf(vpsieNode: VPSieNodeSnapshot): NodeRegistrationTarget {
  const present = (vs: (string | null)[]) => [...new Set(vs.filter((v): v is string => v !== null))];
  return {
    vpsieNode: vpsieNode.name,
    ipAddresses: present([vpsieNode.ipAddress, vpsieNode.ipv6Address]),
    nodeNames: present([vpsieNode.nodeName, vpsieNode.hostname]),
  };
}

/**
 * Runbook step 5 on a list of Nodes (raw JSON or client-node's V1Node): the Node whose InternalIP or ExternalIP
 * is the VM's, else the one the controller labelled for this VPSieNode, else the one with its node name or
 * hostname; null when none. The IP comes first as in the controller's joiner: names are reused, a VM's address
 * is not shared. Several candidates of one kind (a stale Node left by an earlier VM): the one that also matches
 * another way, then the one matched by its name rather than a Hostname address, then the newest. A Node the
 * controller labelled for another VPSieNode is never this one's, whatever its address (VPSie reuses the IP of a
 * deleted VM, and the stale Node of the old one may still be there, even Ready for a while).
 */
export function findRegisteredNode(
  target: NodeRegistrationTarget,
  nodes: readonly unknown[],
): NodeRegistration | null {
  const ips = new Set(target.ipAddresses);
  const names = new Set(target.nodeNames);
  const owner = (raw: unknown) => obj(obj(obj(raw).metadata).labels)[VPSIENODE_LABEL];
  const ours = nodes.filter((raw) => {
    const o = owner(raw);
    return typeof o !== 'string' || o === target.vpsieNode;
  });
  const candidates = ours.map((raw) => {
    const r = obj(raw);
    const metadata = obj(r.metadata);
    const addresses = (Array.isArray(obj(r.status).addresses) ? (obj(r.status).addresses as unknown[]) : [])
      .map(obj)
      .map((a) => ({ type: str(a.type), address: str(a.address) }));
    const matches: Record<NodeMatch, boolean> = {
      ip: addresses.some(
        (a) =>
          (a.type === 'InternalIP' || a.type === 'ExternalIP') && a.address !== null && ips.has(a.address),
      ),
      label: obj(metadata.labels)[VPSIENODE_LABEL] === target.vpsieNode,
      name: false,
    };
    // by name as the controller does: the Node's name first, then a Hostname address
    const byNodeName = names.has(str(metadata.name) ?? '');
    matches.name =
      byNodeName ||
      addresses.some((a) => a.type === 'Hostname' && a.address !== null && names.has(a.address));
    return { raw, matches, byNodeName, created: time(metadata.creationTimestamp) ?? '' };
  });
  for (const by of ['ip', 'label', 'name'] as const) {
    const found = candidates
      .filter((c) => c.matches[by])
      .sort(
        (a, b) =>
          Object.values(b.matches).filter(Boolean).length - Object.values(a.matches).filter(Boolean).length ||
          Number(b.byNodeName) - Number(a.byNodeName) ||
          b.created.localeCompare(a.created),
      )[0];
    if (found) return { matchedBy: by, node: toNodeSnapshot(found.raw) };
  }
  return null;
}

/** Reduces a NodeGroup object, as the API server returns it. */
export function toNodeGroupSnapshot(raw: unknown): NodeGroupSnapshot {
  const r = obj(raw);
  const metadata = obj(r.metadata);
  const spec = obj(r.spec);
  const status = obj(r.status);
  return {
    ...identity('NodeGroup', metadata),
    minNodes: num(spec.minNodes),
    maxNodes: num(spec.maxNodes),
    kubernetesVersion: str(spec.kubernetesVersion),
    sshKeyIDs: strings(spec.sshKeyIDs),
    offeringIDs: strings(spec.offeringIDs),
    datacenterID: str(spec.datacenterID),
    osImageID: str(spec.osImageID),
    kubeSizeID: num(spec.kubeSizeID),
    resourceIdentifier: str(spec.resourceIdentifier),
    managed: obj(metadata.labels)[MANAGED_LABEL] === 'true',
    vpsieGroupID: num(status.vpsieGroupID) || null,
    desiredNodes: num(status.desiredNodes),
    currentNodes: num(status.currentNodes),
    readyNodes: num(status.readyNodes),
    reconcileTrigger: str(obj(metadata.annotations)[RECONCILE_TRIGGER_ANNOTATION]),
    conditions: conditions(status.conditions),
  };
}

/** The runbook's `grep -i "<vpsienode-name>\|provision\|failed"`, as a RegExp. */
export function controllerLogFilter(vpsieNodeName: string): RegExp {
  const name = vpsieNodeName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`${name}|provision|failed`, 'i');
}

/** Longest log line kept in evidence; the rest is cut (history is forever, a stack trace is not needed twice). */
export const MAX_LOG_LINE_LENGTH = 1000;

const SECRET_PATTERNS: RegExp[] = [
  // Authorization headers: "Bearer <token>", "Basic <credentials>"
  /\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+/gi,
  // token=..., "token": "...", password: ..., clientSecret=..., vpsie_token=..., api_key=...
  /((?:token|secret|password|passwd|api_?key)["']?\s*[:=]\s*["']?)[^\s"',}]+/gi,
];

/** A controller log line made safe to keep: credentials replaced by [REDACTED], long lines cut. */
export function sanitizeLogLine(line: string): string {
  let out = line;
  for (const p of SECRET_PATTERNS) out = out.replace(p, '$1[REDACTED]');
  return out.length > MAX_LOG_LINE_LENGTH ? `${out.slice(0, MAX_LOG_LINE_LENGTH)}…` : out;
}
