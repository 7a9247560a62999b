/**
 * The runbook's "Resolution Steps" for a cause (issue 7 item 3): ordered steps, each naming exactly what it will
 * touch, so that a person approves an object, a UID and a change, never a vague intention. Deciding only: the
 * workflow runs the steps, asks for approval before each destructive one and checks every precondition again.
 */
import { BLOCKING_CREATION_FINDINGS, type Cause, type Classification, type Reason } from './classify';
import { sourceValue, unreadSources, type Evidence } from './diagnosis';
import type { ClusterVersion } from './evidence';
import type { VPSieNodeSnapshot } from './types';

export type StepKind =
  | 'wait-node-registration'
  | 'patch-nodegroup-version'
  | 'delete-vpsienode'
  | 'wait-machine-gone'
  | 'wait-vpsienode-gone'
  | 'wait-replacement'
  | 'reconcile-trigger'
  | 'wait-replacement-ready'
  | 'terminate-machine'
  | 'escalate';

/** The steps that change or remove something: each waits for a person's approval (or `autoApprove`). */
export const DESTRUCTIVE_STEP_KINDS: readonly StepKind[] = [
  'patch-nodegroup-version',
  'delete-vpsienode',
  'terminate-machine',
];

export interface VPSieNodeTarget {
  kind: 'VPSieNode';
  namespace: string;
  name: string;
  /** The precondition: a same-named replacement has another UID and is left alone. */
  uid: string;
}

/** A VM in `GET /vm` (what `terminateVM` is preconditioned on). */
export interface VMTarget {
  kind: 'VM';
  id: number;
  identifier: string;
  hostname: string;
  nodeGroup: string | null;
  /** The VPSieNode that owns it and is deleted right after: its claim does not stop the terminate. */
  ownedBy?: VPSieNodeTarget;
}

/** A machine of a managed cluster (what `removeClusterNode` is preconditioned on). */
export interface ClusterNodeTarget {
  kind: 'ClusterNode';
  resourceIdentifier: string;
  identifier: string;
  hostname: string;
  nodeGroup: string | null;
  ownedBy?: VPSieNodeTarget;
}

export type MachineTarget = VMTarget | ClusterNodeTarget;

export interface NodeGroupTarget {
  kind: 'NodeGroup';
  namespace: string;
  name: string;
  /** null when the NodeGroup could not be read (never for a destructive step). */
  uid: string | null;
  /** The one field a patch changes, as diagnosed and as it will be. */
  change?: { field: 'spec.kubernetesVersion'; from: string; to: string };
}

/** The NodeGroup's new VPSieNode that replaces the deleted one: any other UID than `replaces`. */
export interface ReplacementTarget {
  kind: 'Replacement';
  nodeGroup: { namespace: string; name: string; uid: string };
  replaces: { namespace: string; name: string; uid: string };
}

export interface EscalationTarget {
  kind: 'Escalation';
  cause: Cause;
  /** One line each: the reasons, then the evidence that could not be read. */
  evidence: string[];
}

export type StepTarget =
  VPSieNodeTarget | MachineTarget | NodeGroupTarget | ReplacementTarget | EscalationTarget;

export interface PlanStep {
  /** Stable and unique within a plan: what a person approves. */
  id: string;
  kind: StepKind;
  destructive: boolean;
  target: StepTarget;
  /** One sentence for a person. */
  why: string;
  /** For a wait: until when (ISO 8601), and whether expiry moves on to the next step or escalates. */
  wait?: { until: string; onExpiry: 'continue' | 'escalate' };
  /** Runs only when this earlier wait expired; when that wait was met, the step is skipped. */
  onlyIfExpired?: string;
}

export interface PlanOptions {
  /** When the plan is made (ISO 8601); default: when the evidence was gathered. */
  now?: string;
  /** VMNotRegistering: how long after provisioning started the Node may still register. */
  registrationWaitMs?: number;
  /** How long the deleted VPSieNode and its machine may take to go (drain, then the VM delete). */
  goneWaitMs?: number;
  /** How long the NodeGroup may take to make a replacement, before and again after a forced reconciliation. */
  replacementWaitMs?: number;
  /** How long the replacement may take to become Ready (the controller allows 10 min + 15 min). */
  readyWaitMs?: number;
}

export const PLAN_DEFAULTS: Required<Omit<PlanOptions, 'now'>> = {
  registrationWaitMs: 15 * 60_000,
  goneWaitMs: 15 * 60_000,
  replacementWaitMs: 5 * 60_000,
  readyWaitMs: 25 * 60_000,
};

const iso = (ms: number) => new Date(ms).toISOString();
const describeReason = (r: Reason) => `${r.says} (${r.source} ${r.field}: ${r.value})`;

/** The evidence behind a classification, one line each: its reasons, then the sources that could not be read. */
export function evidenceLines(c: Classification, e: Evidence): string[] {
  return [
    ...c.reasons.map(describeReason),
    ...unreadSources(e)
      .filter((u) => !c.reasons.some((r) => r.finding === 'source-unread' && r.source === u.source))
      .map((u) => `could not read ${u.source}: ${u.says}`),
  ];
}

function escalate(cause: Cause, c: Classification, e: Evidence, why: string): PlanStep {
  return {
    id: 'escalate',
    kind: 'escalate',
    destructive: false,
    target: { kind: 'Escalation', cause, evidence: evidenceLines(c, e) },
    why,
  };
}

/** The machine the evidence tied to the VPSieNode, as a target; null when none was found. */
export function machineTarget(e: Evidence, vn: VPSieNodeSnapshot | null): MachineTarget | null {
  const m = sourceValue(e.machine);
  const nodeGroup = vn?.nodeGroupName ?? null;
  if (m?.vm)
    return { kind: 'VM', id: m.vm.id, identifier: m.vm.identifier, hostname: m.vm.hostname, nodeGroup };
  const resourceIdentifier = vn?.resourceIdentifier;
  if (m?.node && resourceIdentifier)
    return {
      kind: 'ClusterNode',
      resourceIdentifier,
      identifier: m.node.identifier,
      hostname: m.node.hostname,
      nodeGroup,
    };
  return null;
}

/**
 * Whether the controller removes the VPSieNode's machine when the VPSieNode is deleted. Its terminator
 * (`DeleteVPS`) deletes by `spec.vpsieInstanceID`, or through the managed cluster by `spec.resourceIdentifier` and
 * a hostname (`status.hostname`, else the node name); with neither it logs "No VPS ID or K8s identifiers
 * available, skipping VPS deletion" and releases the finalizer, leaving the machine running: an undiscovered
 * asynchronous creation (id 0, no hostname yet) is exactly that.
 */
export function controllerRemovesMachine(vn: VPSieNodeSnapshot): boolean {
  return vn.vpsieInstanceID !== 0 || (!!vn.resourceIdentifier && !!(vn.hostname || vn.nodeName));
}

/** One line naming a target, for approval prompts and the UI. */
export function describeTarget(t: StepTarget): string {
  switch (t.kind) {
    case 'VPSieNode':
      return `VPSieNode ${t.namespace}/${t.name} (uid ${t.uid})`;
    case 'VM':
      return `VPSie VM ${t.id} ${t.hostname} (${t.identifier})`;
    case 'ClusterNode':
      return `VPSie cluster ${t.resourceIdentifier} node ${t.identifier} ${t.hostname}`;
    case 'NodeGroup':
      return (
        `NodeGroup ${t.namespace}/${t.name} (uid ${t.uid ?? 'unknown'})` +
        (t.change ? ` ${t.change.field} ${t.change.from} → ${t.change.to}` : '')
      );
    case 'Replacement':
      return `a new VPSieNode of NodeGroup ${t.nodeGroup.namespace}/${t.nodeGroup.name} replacing uid ${t.replaces.uid}`;
    case 'Escalation':
      return `people, with cause ${t.cause}`;
  }
}

/**
 * Delete and recreate: delete the VPSieNode (UID precondition) → its machine gone in VPSie → the object gone →
 * the NodeGroup's replacement (a new UID), forcing reconciliation once if none comes → the replacement Ready.
 * Needs a managed NodeGroup that exists: without one nothing would replace the node, so that escalates.
 */
function deleteAndRecreate(
  c: Classification,
  e: Evidence,
  vn: VPSieNodeSnapshot,
  nowMs: number,
  o: Required<Omit<PlanOptions, 'now'>>,
  onlyIfExpired?: string,
): PlanStep[] {
  const steps = recreateSteps(c, e, vn, nowMs, o);
  return onlyIfExpired
    ? steps.map((s) => ({ ...s, onlyIfExpired: s.onlyIfExpired ?? onlyIfExpired }))
    : steps;
}

function recreateSteps(
  c: Classification,
  e: Evidence,
  vn: VPSieNodeSnapshot,
  nowMs: number,
  o: Required<Omit<PlanOptions, 'now'>>,
): PlanStep[] {
  const ng = sourceValue(e.nodeGroup);
  if (!ng)
    return [
      escalate(
        c.cause,
        c,
        e,
        e.nodeGroup.status === 'ok'
          ? `NodeGroup ${vn.namespace}/${vn.nodeGroupName ?? '(none named)'} does not exist, so nothing would replace a deleted ${vn.name}: a person must decide.`
          : `NodeGroup ${vn.namespace}/${vn.nodeGroupName ?? '(none named)'} could not be read, so nothing shows that a deleted ${vn.name} would be replaced: a person must decide.`,
      ),
    ];
  if (!ng.managed)
    return [
      escalate(
        c.cause,
        c,
        e,
        `NodeGroup ${ng.namespace}/${ng.name} is not labelled autoscaler.vpsie.com/managed=true, so the controller would not replace a deleted ${vn.name}: a person must decide.`,
      ),
    ];
  const self: VPSieNodeTarget = { kind: 'VPSieNode', namespace: vn.namespace, name: vn.name, uid: vn.uid };
  const replacement: ReplacementTarget = {
    kind: 'Replacement',
    nodeGroup: { namespace: ng.namespace, name: ng.name, uid: ng.uid },
    replaces: { namespace: vn.namespace, name: vn.name, uid: vn.uid },
  };
  const machine = machineTarget(e, vn);
  // Deadlines are cumulative from now; the workflow recomputes them from when each wait really starts.
  let t = nowMs;
  const after = (ms: number) => iso((t += ms));
  const deleteStep: PlanStep = {
    id: 'delete-vpsienode',
    kind: 'delete-vpsienode',
    destructive: true,
    target: self,
    why: `Delete ${vn.namespace}/${vn.name} (uid ${vn.uid}) so that the controller removes its machine and NodeGroup ${ng.name} creates a new one.`,
  };
  const steps: PlanStep[] = [];
  if (machine && !controllerRemovesMachine(vn)) {
    // The controller would leave this machine running: terminate it first (while nothing else can adopt it),
    // then delete the VPSieNode, whose finalizer then has nothing to remove.
    const owned = { ...machine, ownedBy: self };
    steps.push(
      {
        id: 'terminate-machine',
        kind: 'terminate-machine',
        destructive: true,
        target: owned,
        why: `${vn.name} has no VM id and no hostname, so the controller would leave ${describeTarget(machine)} running when it is deleted: terminate it first (Manual VM Cleanup), re-reading it and its claims.`,
      },
      {
        id: 'wait-machine-gone',
        kind: 'wait-machine-gone',
        destructive: false,
        target: owned,
        why: `Wait until ${describeTarget(machine)} is gone from VPSie.`,
        wait: { until: after(o.goneWaitMs), onExpiry: 'escalate' },
      },
      {
        ...deleteStep,
        why: `Delete ${vn.namespace}/${vn.name} (uid ${vn.uid}) so that NodeGroup ${ng.name} creates a new one.`,
      },
    );
  } else {
    steps.push(deleteStep);
    if (machine)
      steps.push({
        id: 'wait-machine-gone',
        kind: 'wait-machine-gone',
        destructive: false,
        target: machine,
        why: `Wait until the controller has removed ${describeTarget(machine)} from VPSie.`,
        wait: { until: after(o.goneWaitMs), onExpiry: 'escalate' },
      });
  }
  steps.push(
    {
      id: 'wait-vpsienode-gone',
      kind: 'wait-vpsienode-gone',
      destructive: false,
      target: self,
      why: `Wait until ${vn.namespace}/${vn.name} is gone: its finalizer goes once the controller has removed the machine.`,
      wait: {
        until: steps.at(-1)?.kind === 'wait-machine-gone' ? iso(t) : after(o.goneWaitMs),
        onExpiry: 'escalate',
      },
    },
    {
      id: 'wait-replacement',
      kind: 'wait-replacement',
      destructive: false,
      target: replacement,
      why: `Wait for NodeGroup ${ng.name} to create a VPSieNode replacing uid ${vn.uid}.`,
      wait: { until: after(o.replacementWaitMs), onExpiry: 'continue' },
    },
    {
      id: 'reconcile-nodegroup',
      kind: 'reconcile-trigger',
      destructive: false,
      target: { kind: 'NodeGroup', namespace: ng.namespace, name: ng.name, uid: ng.uid },
      why: `No replacement came: set the reconcile-trigger annotation on NodeGroup ${ng.name} so the controller reconciles it now.`,
      onlyIfExpired: 'wait-replacement',
    },
    {
      id: 'wait-replacement-after-reconcile',
      kind: 'wait-replacement',
      destructive: false,
      target: replacement,
      why: `Wait again for NodeGroup ${ng.name} to create the replacement after the forced reconciliation.`,
      wait: { until: after(o.replacementWaitMs), onExpiry: 'escalate' },
      onlyIfExpired: 'wait-replacement',
    },
    {
      id: 'wait-replacement-ready',
      kind: 'wait-replacement-ready',
      destructive: false,
      target: replacement,
      why: `Wait for the replacement VPSieNode to become Ready.`,
      wait: { until: after(o.readyWaitMs), onExpiry: 'escalate' },
    },
  );
  return steps;
}

/** The steps that resolve `classification`; [] when there is nothing to do. */
export function plan(
  classification: Classification,
  evidence: Evidence,
  options: PlanOptions = {},
): PlanStep[] {
  const o = { ...PLAN_DEFAULTS, ...stripUndefined(options) };
  const nowMs = Date.parse(options.now ?? evidence.observedAt);
  if (!Number.isFinite(nowMs))
    throw new RangeError(`now must be a time, got ${JSON.stringify(options.now ?? evidence.observedAt)}`);
  for (const k of Object.keys(PLAN_DEFAULTS) as (keyof typeof PLAN_DEFAULTS)[])
    if (!Number.isFinite(o[k]) || o[k] < 0)
      throw new RangeError(`${k} must be a duration in ms ≥ 0, got ${o[k]}`);
  const c = classification;
  const vn = evidence.vpsieNode;
  const has = (...findings: string[]) => c.reasons.filter((r) => findings.includes(r.finding));

  if (c.cause === 'Recovered') return [];
  if (c.cause === 'VPSieNodeGone') {
    // Only an absent VPSieNode leaves its machine to us; one being deleted still has the controller's finalizer.
    if (vn !== null || has('machine-left').length === 0) return [];
    const machine = machineTarget(evidence, evidence.lastSeen);
    if (!machine)
      return [
        escalate(
          c.cause,
          c,
          evidence,
          `VPSieNode ${evidence.ref.namespace}/${evidence.ref.name} is gone but its machine still exists in VPSie, and the run cannot name it exactly: a person must remove it.`,
        ),
      ];
    return [
      {
        id: 'terminate-machine',
        kind: 'terminate-machine',
        destructive: true,
        target: machine,
        why: `VPSieNode ${evidence.ref.namespace}/${evidence.ref.name} is gone but ${describeTarget(machine)} still exists: terminate it (Manual VM Cleanup), re-reading it and its claims first.`,
      },
    ];
  }
  if (vn === null)
    return [escalate(c.cause, c, evidence, 'The VPSieNode cannot be read: a person must look.')];

  switch (c.cause) {
    case 'Unknown':
      return [
        escalate(
          c.cause,
          c,
          evidence,
          "The evidence matches none of the runbook's causes: a person must look at it.",
        ),
      ];
    case 'SSHKeyInvalid': {
      const keys = has('unknown-ssh-keys')
        .map((r) => r.value)
        .join(', ');
      return [
        escalate(
          c.cause,
          c,
          evidence,
          `The VPSie account has no SSH key ${keys}, named by NodeGroup ${vn.nodeGroupName ?? '(unknown)'}: fix spec.sshKeyIDs or add the keys; nothing is deleted.`,
        ),
      ];
    }
    case 'VMCreationFailed': {
      const blocking = c.reasons.filter((r) => BLOCKING_CREATION_FINDINGS.includes(r.finding));
      if (blocking.length > 0)
        return [
          escalate(
            c.cause,
            c,
            evidence,
            `Creating the machine cannot succeed until a person acts: ${blocking.map((r) => r.says).join('; ')}. Nothing is deleted.`,
          ),
        ];
      const unverified = has('catalog-unverified');
      if (unverified.length > 0)
        return [
          escalate(
            c.cause,
            c,
            evidence,
            `Creating the machine failed and the NodeGroup's ids could not be checked against VPSie (${unverified[0].value}), so a recreate is not shown to help. Nothing is deleted.`,
          ),
        ];
      return deleteAndRecreate(c, evidence, vn, nowMs, o);
    }
    case 'ProvisioningTimeout':
      return deleteAndRecreate(c, evidence, vn, nowMs, o);
    case 'VMNotRegistering': {
      const started = vn.provisioningStartedAt ? Date.parse(vn.provisioningStartedAt) : NaN;
      const until = Math.max(
        nowMs,
        Number.isFinite(started) ? started + o.registrationWaitMs : nowMs + o.registrationWaitMs,
      );
      const wait: PlanStep = {
        id: 'wait-node-registration',
        kind: 'wait-node-registration',
        destructive: false,
        target: { kind: 'VPSieNode', namespace: vn.namespace, name: vn.name, uid: vn.uid },
        why: `Wait until ${iso(until)} for ${vn.name}'s Node to register and become Ready; if it does, the node has recovered.`,
        wait: { until: iso(until), onExpiry: 'continue' },
      };
      return [wait, ...deleteAndRecreate(c, evidence, vn, until, o, wait.id)];
    }
    case 'KubernetesVersionMismatch': {
      const ng = sourceValue(evidence.nodeGroup);
      const cluster = sourceValue(evidence.clusterVersion);
      if (!ng?.kubernetesVersion || !cluster)
        return [
          escalate(
            c.cause,
            c,
            evidence,
            'The NodeGroup or the cluster version is no longer readable: a person must look.',
          ),
        ];
      const to = nodeGroupVersionOf(cluster);
      const patch: PlanStep = {
        id: 'patch-nodegroup-version',
        kind: 'patch-nodegroup-version',
        destructive: true,
        target: {
          kind: 'NodeGroup',
          namespace: ng.namespace,
          name: ng.name,
          uid: ng.uid,
          change: { field: 'spec.kubernetesVersion', from: ng.kubernetesVersion, to },
        },
        why: `Set NodeGroup ${ng.namespace}/${ng.name} spec.kubernetesVersion from ${ng.kubernetesVersion} to the cluster's ${to}, so that new nodes match the control plane.`,
      };
      const rest = deleteAndRecreate(c, evidence, vn, nowMs, o);
      // No replacement possible: the patch alone would not help the failed node; a person decides both.
      return rest[0]?.kind === 'escalate' ? rest : [patch, ...rest];
    }
  }
}

/**
 * The cluster's version as the NodeGroup CRD accepts it (`^v<major>.<minor>.<patch>[-pre][+build]`): its
 * gitVersion when that fits, else `v<major>.<minor>.0` from the numeric fields (`minor` may read "34+").
 */
export function nodeGroupVersionOf(cluster: ClusterVersion): string {
  if (/^v\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$/.test(cluster.gitVersion)) return cluster.gitVersion;
  return `v${parseInt(cluster.major, 10)}.${parseInt(cluster.minor, 10)}.0`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
