/**
 * The runbook's "Common Causes", decided from evidence (issue 7 item 2). Written against what the real controller
 * writes (domain.md §8), not only the runbook's older wording: condition reasons VPSieAPIError,
 * CapacityLimitReached, ProvisioningTimeout and JoiningTimeout, `lastError` such as "failed to create VPS: …" or
 * "VPSieGroupID is required", and a `vpsieInstanceID` of 0 that is not "no VM" while other fields say a machine
 * was asked for or found.
 */
import { sourceValue, unreadSources, type Evidence, type EvidenceSource } from './diagnosis';
import type { VPSieNodeSnapshot } from './types';

export const CAUSES = [
  'VMCreationFailed',
  'VMNotRegistering',
  'ProvisioningTimeout',
  'KubernetesVersionMismatch',
  'SSHKeyInvalid',
  'Recovered',
  'VPSieNodeGone',
  'Unknown',
] as const;
export type Cause = (typeof CAUSES)[number];

/** What one piece of evidence shows; the plan branches on these, a person reads `says`. */
export type Finding =
  | 'vpsienode-gone'
  | 'vpsienode-deleting'
  | 'machine-left'
  | 'vpsienode-ready'
  | 'node-ready'
  | 'capacity-limit'
  | 'missing-group-id'
  | 'invalid-catalog'
  | 'creation-error'
  | 'catalog-unverified'
  | 'unknown-ssh-keys'
  | 'version-mismatch'
  | 'provisioning-timeout'
  | 'joining-timeout'
  | 'machine-requested'
  | 'machine-found'
  | 'machine-not-found'
  | 'node-missing'
  | 'node-not-ready'
  | 'phase'
  | 'recorded-error'
  | 'source-unread';

/** Findings of cause 1 that no recreate can fix: a person must change the configuration or the account. */
export const BLOCKING_CREATION_FINDINGS: readonly Finding[] = [
  'capacity-limit',
  'missing-group-id',
  'invalid-catalog',
];

export interface Reason {
  finding: Finding;
  source: EvidenceSource;
  /** Where in the source: `status.lastError`, `status.conditions[Error]`, `Event Warning PhaseFailed`, … */
  field: string;
  /** The evidence itself, verbatim (a message, a log line, a value). */
  value: string;
  /** One sentence for a person. */
  says: string;
}

export interface Classification {
  cause: Cause;
  /** The evidence that proves `cause`, strongest first. */
  reasons: Reason[];
  /** Other causes the evidence also shows, in order of precedence (never `Unknown`). */
  also: Cause[];
}

/** The controller's own limits (`phases.go`), used to see a timeout the controller has not yet written. */
export interface ClassifyLimits {
  provisioningTimeoutMs: number;
  joiningTimeoutMs: number;
}
export const CONTROLLER_LIMITS: ClassifyLimits = {
  provisioningTimeoutMs: 10 * 60_000,
  joiningTimeoutMs: 15 * 60_000,
};

/** The VPSie client's terminal errors (`IsTerminalError`): the controller fails the node at once on these. */
const TERMINAL_ERROR =
  /exceeds the allowed limit|quota exceeded|plan does not allow|maximum number of|limit reached|subscription does not allow/i;

/** What a controller message (lastError, a condition, an Event, a log line) says, if anything the runbook knows. */
function messageFinding(message: string): Finding | null {
  if (/VPSieGroupID is required/i.test(message)) return 'missing-group-id';
  if (TERMINAL_ERROR.test(message)) return 'capacity-limit';
  if (/provisioning timeout exceeded/i.test(message)) return 'provisioning-timeout';
  if (/joining timeout exceeded/i.test(message)) return 'joining-timeout';
  if (/failed to create (VPS|K8s node)/i.test(message)) return 'creation-error';
  return null;
}

/** Condition reasons the controller writes, as findings. */
const REASON_FINDING: Record<string, Finding> = {
  CapacityLimitReached: 'capacity-limit',
  ProvisioningTimeout: 'provisioning-timeout',
  JoiningTimeout: 'joining-timeout',
  VPSieAPIError: 'creation-error',
};

const SAYS: Record<Finding, string> = {
  'vpsienode-gone': 'the VPSieNode no longer exists',
  'vpsienode-deleting': 'the VPSieNode is being deleted; the controller removes its machine before it goes',
  'machine-left': 'its machine still exists in VPSie',
  'vpsienode-ready': 'the controller has marked the VPSieNode Ready',
  'node-ready': 'its Node is registered and Ready',
  'capacity-limit': 'VPSie refused to create the machine: a capacity or quota limit',
  'missing-group-id': 'the VPSieNode names no VPSie node group, so the controller cannot create its machine',
  'invalid-catalog': 'the NodeGroup names an id VPSie does not offer',
  'creation-error': 'creating the machine failed with a VPSie API error',
  'catalog-unverified':
    "the NodeGroup's offering, datacenter and image ids could not be checked against VPSie",
  'unknown-ssh-keys': 'the NodeGroup names SSH keys the VPSie account does not have',
  'version-mismatch': "the NodeGroup's Kubernetes version differs from the cluster's",
  'provisioning-timeout': 'provisioning took longer than the controller allows',
  'joining-timeout': 'the machine did not join the cluster in the time the controller allows',
  'machine-requested': 'a machine was created or requested for this VPSieNode',
  'machine-found': 'its machine exists in VPSie',
  'machine-not-found': 'no machine of this VPSieNode was found in VPSie',
  'node-missing': 'no Node has registered for it',
  'node-not-ready': 'its Node registered but is not Ready',
  phase: 'the VPSieNode is in this phase',
  'recorded-error': 'the error the controller recorded',
  'source-unread': 'this evidence could not be read',
};

const reason = (
  finding: Finding,
  source: EvidenceSource,
  field: string,
  value: string,
  says?: string,
): Reason => ({
  finding,
  source,
  field,
  value,
  says: says ?? SAYS[finding],
});

/** `v1.34.4`, `1.34`, `v1.34.4+k3s1` → [1, 34]; null when not a version. */
export function majorMinor(version: string): [number, number] | null {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** What the controller wrote about creation and timeouts: its Error condition, lastError, Events and logs. */
function controllerMessages(e: Evidence, vn: VPSieNodeSnapshot): Reason[] {
  const out: Reason[] = [];
  const error = vn.conditions.find((c) => c.type === 'Error' && c.status === 'True');
  const fromReason = error?.reason ? REASON_FINDING[error.reason] : undefined;
  if (error && (fromReason || (error.message && messageFinding(error.message)))) {
    const finding = (error.message && messageFinding(error.message)) || fromReason!;
    const field =
      vn.lastError && vn.lastError === error.message
        ? 'status.conditions[Error], status.lastError'
        : 'status.conditions[Error]';
    out.push(reason(finding, 'vpsieNode', field, `${error.reason ?? ''}: ${error.message ?? ''}`));
  }
  if (vn.lastError && vn.lastError !== error?.message) {
    const finding =
      messageFinding(vn.lastError) ?? (fromReason === 'creation-error' ? 'creation-error' : null);
    if (finding) out.push(reason(finding, 'vpsieNode', 'status.lastError', vn.lastError));
  }
  for (const ev of sourceValue(e.events) ?? []) {
    const finding = ev.type === 'Warning' && ev.message ? messageFinding(ev.message) : null;
    if (finding && ev.message)
      out.push(reason(finding, 'events', `Event ${ev.type} ${ev.reason ?? ''}`, ev.message));
  }
  // The log filter also keeps other nodes' "provision|failed" lines: only lines naming this VPSieNode count.
  const seen = new Set<Finding>();
  for (const pod of sourceValue(e.controllerLogs)?.pods ?? []) {
    for (const line of [...pod.lines].reverse()) {
      const finding = line.includes(vn.name) ? messageFinding(line) : null;
      if (finding && !seen.has(finding)) {
        seen.add(finding);
        out.push(reason(finding, 'controllerLogs', `log of pod ${pod.pod}`, line));
      }
    }
  }
  return out;
}

/** Machine statuses that mean it is on its way out. */
const GOING = /delet|terminat|destroy/i;

/** Proof that a machine was asked for or exists: `vpsieInstanceID` 0 alone is not "no VM" (domain.md §8). */
function machineReasons(e: Evidence, vn: VPSieNodeSnapshot): Reason[] {
  const out: Reason[] = [];
  const m = sourceValue(e.machine);
  if (m?.vm)
    out.push(reason('machine-found', 'machine', 'VM', `VM ${m.vm.id} ${m.vm.hostname} (${m.vm.status})`));
  else if (m?.node)
    out.push(
      reason(
        'machine-found',
        'machine',
        'cluster node',
        `${m.node.identifier} ${m.node.hostname} (${m.node.status})`,
      ),
    );
  if (vn.vpsieInstanceID > 0)
    out.push(reason('machine-requested', 'vpsieNode', 'spec.vpsieInstanceID', String(vn.vpsieInstanceID)));
  if (vn.creationRequested)
    out.push(reason('machine-requested', 'vpsieNode', 'metadata.annotations[creation-requested]', 'true'));
  if (vn.vpsieNodeIdentifier)
    out.push(reason('machine-requested', 'vpsieNode', 'spec.vpsieNodeIdentifier', vn.vpsieNodeIdentifier));
  if (vn.ipAddress) out.push(reason('machine-requested', 'vpsieNode', 'spec.ipAddress', vn.ipAddress));
  // The controller leaves Provisioning only once it has found the machine (provisioner.go).
  if (vn.phase === 'Provisioned' || vn.phase === 'Joining' || vn.phase === 'Ready')
    out.push(
      reason(
        'machine-requested',
        'vpsieNode',
        'status.phase',
        vn.phase,
        'the controller has found its machine',
      ),
    );
  return out;
}

interface Context {
  e: Evidence;
  vn: VPSieNodeSnapshot;
  nowMs: number;
  limits: ClassifyLimits;
  messages: Reason[];
  machine: Reason[];
}

const only = (reasons: Reason[], ...findings: Finding[]) =>
  reasons.filter((r) => findings.includes(r.finding));

function nodeReasons(e: Evidence): Reason[] {
  const node = e.node;
  if (node.status !== 'ok') return [];
  if (node.value === null)
    return [reason('node-missing', 'node', 'Node', 'none matched by IP, label or name')];
  const n = node.value.node;
  if (n.readyStatus === 'True')
    return [reason('node-ready', 'node', `Node ${n.name} condition Ready`, 'True')];
  return [
    reason(
      'node-not-ready',
      'node',
      `Node ${n.name} condition Ready`,
      `${n.readyStatus ?? 'never reported'} ${n.readyReason ?? ''}`.trim(),
    ),
  ];
}

function recovered({ e, vn }: Context): Reason[] {
  // The controller deletes a Failed VPSieNode 30 minutes on, draining whatever Node joined it late.
  if (vn.phase === 'Failed') return [];
  const node = nodeReasons(e);
  if (node.some((r) => r.finding === 'node-ready')) return node;
  // The controller's Ready counts only when the Node cannot be read to say otherwise.
  if (vn.phase === 'Ready' && e.node.status !== 'ok')
    return [reason('vpsienode-ready', 'vpsieNode', 'status.phase', 'Ready')];
  return [];
}

function creationBlocked(c: Context): Reason[] {
  if (c.machine.length > 0) return [];
  const out = only(c.messages, 'capacity-limit', 'missing-group-id');
  if (c.vn.vpsieGroupID === 0 && !out.some((r) => r.finding === 'missing-group-id'))
    out.push(reason('missing-group-id', 'vpsieNode', 'spec.vpsieGroupID', '0'));
  out.push(...catalogReasons(c.e));
  if (out.length === 0) return [];
  return [...out, ...only(c.messages, 'creation-error')];
}

function catalogReasons(e: Evidence): Reason[] {
  const cat = sourceValue(e.catalog);
  if (!cat) return [];
  const ng = sourceValue(e.nodeGroup);
  const out = [
    ...cat.unknownOfferings.map((id) =>
      reason('invalid-catalog', 'catalog', 'spec.offeringIDs', id, `offering ${id} does not exist in VPSie`),
    ),
    ...cat.unavailableOfferings.map((id) =>
      reason(
        'invalid-catalog',
        'catalog',
        'spec.offeringIDs',
        id,
        `offering ${id} is not available in VPSie`,
      ),
    ),
  ];
  for (const [what, field, state, id] of [
    ['datacenter', 'spec.datacenterID', cat.datacenter, ng?.datacenterID],
    ['image', 'spec.osImageID', cat.image, ng?.osImageID],
  ] as const) {
    if (state === 'unknown' || state === 'unavailable')
      out.push(
        reason(
          'invalid-catalog',
          'catalog',
          field,
          id ?? '',
          `${what} ${id ?? '(unnamed)'} ${state === 'unknown' ? 'does not exist' : 'is not available'} in VPSie`,
        ),
      );
  }
  return out;
}

function sshKeyInvalid({ e }: Context): Reason[] {
  const keys = sourceValue(e.sshKeys);
  if (!keys || keys.unknown.length === 0) return [];
  return [
    reason(
      'unknown-ssh-keys',
      'sshKeys',
      'spec.sshKeyIDs',
      keys.unknown.join(', '),
      `the VPSie account has no SSH key ${keys.unknown.join(', ')}`,
    ),
  ];
}

/**
 * major.minor only: the cluster's patch level moves with every control-plane upgrade while a NodeGroup names a
 * release line, and the controller itself writes versions with or without "v" and build metadata; patch
 * releases of one minor are compatible (Kubernetes' version-skew policy), a minor apart is what breaks joins.
 * The runbook says "match the cluster", so any minor difference counts, although the upstream CRD's description
 * tolerates ±1 minor.
 */
function versionMismatch({ e }: Context): Reason[] {
  const ng = sourceValue(e.nodeGroup);
  const cluster = sourceValue(e.clusterVersion);
  if (!ng?.kubernetesVersion || !cluster) return [];
  const want = majorMinor(ng.kubernetesVersion);
  const have =
    majorMinor(cluster.gitVersion) ?? majorMinor(`${cluster.major}.${cluster.minor.replace(/\D+$/, '')}`);
  if (!want || !have || (want[0] === have[0] && want[1] === have[1])) return [];
  const out = [
    reason(
      'version-mismatch',
      'nodeGroup',
      'spec.kubernetesVersion',
      ng.kubernetesVersion,
      `NodeGroup ${ng.namespace}/${ng.name} wants Kubernetes ${ng.kubernetesVersion}, the cluster runs ${cluster.gitVersion}`,
    ),
  ];
  const kubelet = sourceValue(e.node)?.node.kubeletVersion;
  const kv = kubelet ? majorMinor(kubelet) : null;
  if (kubelet && kv && (kv[0] !== have[0] || kv[1] !== have[1]))
    out.push(
      reason(
        'version-mismatch',
        'node',
        'status.nodeInfo.kubeletVersion',
        kubelet,
        `its Node's kubelet is ${kubelet}`,
      ),
    );
  return out;
}

function provisioningTimeout(c: Context): Reason[] {
  const out = only(c.messages, 'provisioning-timeout');
  const started = c.vn.provisioningStartedAt ? Date.parse(c.vn.provisioningStartedAt) : NaN;
  if (
    out.length === 0 &&
    (c.vn.phase === 'Pending' || c.vn.phase === 'Provisioning') &&
    c.nowMs - started > c.limits.provisioningTimeoutMs
  ) {
    const minutes = Math.floor((c.nowMs - started) / 60_000);
    out.push(
      reason(
        'provisioning-timeout',
        'vpsieNode',
        'status.createdAt',
        c.vn.provisioningStartedAt!,
        `in ${c.vn.phase} for ${minutes} min, past the controller's ${c.limits.provisioningTimeoutMs / 60_000} min`,
      ),
    );
  }
  return out.length ? [...out, ...c.machine] : [];
}

function creationFailedTransient(c: Context): Reason[] {
  if (c.machine.length > 0) return [];
  const errors = only(c.messages, 'creation-error');
  if (errors.length === 0) return [];
  // Recreating is only safe when the configuration is shown to be valid.
  const unverified =
    c.e.catalog.status === 'ok'
      ? []
      : [
          reason(
            'catalog-unverified',
            'catalog',
            'offeringIDs, datacenterID, osImageID',
            c.e.catalog.status === 'error' ? `${c.e.catalog.type}: ${c.e.catalog.message}` : c.e.catalog.why,
          ),
        ];
  return [...errors, ...unverified];
}

function notRegistering(c: Context): Reason[] {
  const joining = only(c.messages, 'joining-timeout');
  const since = c.vn.provisionedAt ? Date.parse(c.vn.provisionedAt) : NaN;
  if (joining.length === 0 && c.vn.phase === 'Joining' && c.nowMs - since > c.limits.joiningTimeoutMs)
    joining.push(
      reason(
        'joining-timeout',
        'vpsieNode',
        'status.provisionedAt',
        c.vn.provisionedAt!,
        `Joining for ${Math.floor((c.nowMs - since) / 60_000)} min, past the controller's ${c.limits.joiningTimeoutMs / 60_000} min`,
      ),
    );
  const node = nodeReasons(c.e).filter((r) => r.finding !== 'node-ready');
  const joiningNow = c.vn.phase === 'Provisioned' || c.vn.phase === 'Joining';
  if (joining.length === 0 && !(c.machine.length > 0 && (node.length > 0 || joiningNow))) return [];
  return [...joining, ...node, ...c.machine];
}

function unknown(c: Context): Reason[] {
  const out = [reason('phase', 'vpsieNode', 'status.phase', String(c.vn.phase ?? '(none)'))];
  const error = c.vn.conditions.find((x) => x.status === 'True' && x.type === 'Error');
  if (error)
    out.push(
      reason(
        'recorded-error',
        'vpsieNode',
        error.message === c.vn.lastError
          ? 'status.conditions[Error], status.lastError'
          : 'status.conditions[Error]',
        `${error.reason ?? ''}: ${error.message ?? ''}`,
      ),
    );
  if (c.vn.lastError && c.vn.lastError !== error?.message)
    out.push(reason('recorded-error', 'vpsieNode', 'status.lastError', c.vn.lastError));
  out.push(...c.machine);
  const m = c.e.machine;
  if (m.status === 'ok' && !m.value.vm && !m.value.node)
    out.push(reason('machine-not-found', 'machine', 'machine', m.value.ambiguous.join(', ') || 'none'));
  for (const u of unreadSources(c.e)) out.push(reason('source-unread', u.source, u.source, u.says));
  return out;
}

/**
 * Order of precedence: the first rule whose evidence holds names the cause; the others are listed in `also`.
 * Rule 1 is decided before the others (there is no VPSieNode to read); PRECEDENCE below is rules 2–8.
 *
 * | # | Cause                       | When                                                      | Why it wins over what follows |
 * |---|-----------------------------|-----------------------------------------------------------|-------------------------------|
 * | 1 | VPSieNodeGone               | the object is absent, or being deleted                    | nothing is left to repair |
 * | 2 | Recovered                   | not Failed, and its Node is Ready (else, Node unreadable, phase Ready) | a working node needs nothing, whatever else is wrong; a Failed one is deleted by the controller whatever its Node says |
 * | 3 | VMCreationFailed (config)   | no machine, and a capacity/quota error, spec.vpsieGroupID 0 / "VPSieGroupID is required", or a NodeGroup id VPSie lacks | no recreate can succeed until a person acts; capacity and a bad offering together are one cause naming both |
 * | 4 | SSHKeyInvalid               | the account lacks a key the NodeGroup names               | the NodeGroup reconciler copies sshKeyIDs into every new VPSieNode's spec, so a recreate brings the same keys back, and the runbook's cause-2 debugging (SSH in) is impossible: escalate before anything is destroyed; wins over a registration failure and a version mismatch |
 * | 5 | KubernetesVersionMismatch   | NodeGroup and cluster differ in major.minor               | the NodeGroup reconciler copies its kubernetesVersion into every new VPSieNode's spec, so recreating without the patch repeats the failure (the runbook's symptom: the node fails to join); wins over a VM that never registered and over timeouts |
 * | 6 | VMCreationFailed (transient)| no machine, a VPSie API error ("failed to create VPS: …") | the error is why no machine came: the controller retries it until its 10-minute limit, so by the time the run classifies the timeout is there too, as its consequence; recreating is planned only when the catalog shows the configuration valid |
 * | 7 | ProvisioningTimeout         | reason/lastError ProvisioningTimeout, or Pending/Provisioning past the controller's 10 min | the controller has given up on the node (and deletes it 30 min after it failed): waiting for it to register is pointless |
 * | 8 | VMNotRegistering            | a machine was requested or found (id, creation-requested, identifier, IP, phase Provisioned/Joining/Ready, VPSie) and no Ready Node; or JoiningTimeout written, or Joining past 15 min | a machine exists: a create error seen before it is stale (so 3 and 6 need "no machine") |
 * | 9 | Unknown                     | none of the above                                         | escalated with all the evidence |
 */
const PRECEDENCE: readonly { cause: Cause; rule: (c: Context) => Reason[] }[] = [
  { cause: 'Recovered', rule: recovered },
  { cause: 'VMCreationFailed', rule: creationBlocked },
  { cause: 'SSHKeyInvalid', rule: sshKeyInvalid },
  { cause: 'KubernetesVersionMismatch', rule: versionMismatch },
  { cause: 'VMCreationFailed', rule: creationFailedTransient },
  { cause: 'ProvisioningTimeout', rule: provisioningTimeout },
  { cause: 'VMNotRegistering', rule: notRegistering },
];

/** The runbook's cause, with the evidence for it. `now` is the workflow's time (ISO 8601 or epoch ms). */
export function classify(
  evidence: Evidence,
  now: string | number,
  limits: ClassifyLimits = CONTROLLER_LIMITS,
): Classification {
  const nowMs = typeof now === 'number' ? now : Date.parse(now);
  if (!Number.isFinite(nowMs)) throw new RangeError(`now must be a time, got ${JSON.stringify(now)}`);
  const vn = evidence.vpsieNode;
  if (vn === null || vn.deletionTimestamp) return gone(evidence, vn);
  const c: Context = {
    e: evidence,
    vn,
    nowMs,
    limits,
    messages: controllerMessages(evidence, vn),
    machine: machineReasons(evidence, vn),
  };
  const shown = PRECEDENCE.map(({ cause, rule }) => ({ cause, reasons: rule(c) })).filter(
    (r) => r.reasons.length > 0,
  );
  if (shown.length === 0) return { cause: 'Unknown', reasons: unknown(c), also: [] };
  const [first, ...rest] = shown;
  const also = [...new Set(rest.map((r) => r.cause))].filter((x) => x !== first.cause);
  return { cause: first.cause, reasons: first.reasons, also };
}

function gone(e: Evidence, vn: VPSieNodeSnapshot | null): Classification {
  if (vn)
    return {
      cause: 'VPSieNodeGone',
      reasons: [
        reason('vpsienode-deleting', 'vpsieNode', 'metadata.deletionTimestamp', vn.deletionTimestamp!),
      ],
      also: [],
    };
  const reasons = [reason('vpsienode-gone', 'vpsieNode', `${e.ref.namespace}/${e.ref.name}`, 'not found')];
  const m = sourceValue(e.machine);
  if (m?.vm && !GOING.test(m.vm.status))
    reasons.push(reason('machine-left', 'machine', 'VM', `VM ${m.vm.id} ${m.vm.hostname} (${m.vm.status})`));
  else if (m?.node && !GOING.test(m.node.status))
    reasons.push(
      reason(
        'machine-left',
        'machine',
        'cluster node',
        `${m.node.identifier} ${m.node.hostname} (${m.node.status})`,
      ),
    );
  return { cause: 'VPSieNodeGone', reasons, also: [] };
}
