/**
 * The runbook's prevention advice, "validate NodeGroup configuration before applying", as one verdict per check:
 * the ids a NodeGroup names against VPSie (causes 1 and 5) and its kubernetesVersion against the cluster
 * (cause 4), by the same rules the diagnosis uses (src/runbook/classify.ts). Pure: the command reads, this decides.
 */
import { majorMinor } from '../runbook/classify';
import type { SourceResult } from '../runbook/diagnosis';
import type { ClusterVersion, NodeGroupSnapshot } from '../runbook/evidence';
import type { CatalogCheck, SSHKeyCheck } from '../runbook/vm';

export type CheckStatus = 'ok' | 'wrong' | 'unchecked';

export interface NodeGroupCheck {
  /** What was checked, in words: `offering 101`, `kubernetesVersion v1.30.2`. */
  check: string;
  /** The NodeGroup's field. */
  field: string;
  value: string | null;
  status: CheckStatus;
  /** ok: what confirms it; wrong: what is wrong and what it causes; unchecked: why it could not be checked. */
  detail: string;
}

export interface NodeGroupSources {
  catalog: SourceResult<CatalogCheck>;
  sshKeys: SourceResult<SSHKeyCheck>;
  clusterVersion: SourceResult<ClusterVersion>;
  /** The VPSie managed cluster spec.resourceIdentifier names: its name, or null when VPSie has none. */
  vpsieCluster: SourceResult<{ name: string } | null>;
}

const unread = (r: Exclude<SourceResult<unknown>, { status: 'ok' }>): string =>
  r.status === 'error' ? `could not check: ${r.type}: ${r.message}` : `could not check: ${r.why}`;

export function nodeGroupChecks(ng: NodeGroupSnapshot, src: NodeGroupSources): NodeGroupCheck[] {
  const out: NodeGroupCheck[] = [];
  const add = (check: string, field: string, value: string | null, status: CheckStatus, detail: string) =>
    out.push({ check, field, value, status, detail });

  // Cause 1: offering, datacenter and image against VPSie's catalog.
  if (ng.offeringIDs.length === 0) add('offerings', 'spec.offeringIDs', null, 'wrong', 'names no offering');
  ng.offeringIDs.forEach((id, i) => {
    const field = `spec.offeringIDs[${i}]`;
    const what = `offering ${id}`;
    if (src.catalog.status !== 'ok') return add(what, field, id, 'unchecked', unread(src.catalog));
    const c = src.catalog.value;
    if (c.unknownOfferings.includes(id))
      add(what, field, id, 'wrong', `VPSie has no offering ${id}: VM creation fails`);
    else if (c.unavailableOfferings.includes(id))
      add(what, field, id, 'wrong', `VPSie lists offering ${id} as not available: VM creation fails`);
    else add(what, field, id, 'ok', 'offered by VPSie');
  });
  for (const [kind, field, id, key] of [
    ['datacenter', 'spec.datacenterID', ng.datacenterID, 'datacenter'],
    ['image', 'spec.osImageID', ng.osImageID, 'image'],
  ] as const) {
    const what = id ? `${kind} ${id}` : kind;
    if (!id) {
      if (kind === 'datacenter') add(what, field, null, 'wrong', 'not set: VPSie cannot place the VM');
      else add(what, field, null, 'ok', 'not set: nothing to check');
      continue;
    }
    if (src.catalog.status !== 'ok') {
      add(what, field, id, 'unchecked', unread(src.catalog));
      continue;
    }
    const state = src.catalog.value[key];
    if (state === 'unknown') add(what, field, id, 'wrong', `VPSie has no ${kind} ${id}: VM creation fails`);
    else if (state === 'unavailable')
      add(what, field, id, 'wrong', `VPSie lists ${kind} ${id} as not available: VM creation fails`);
    else add(what, field, id, 'ok', `known to VPSie and available`);
  }

  // Cause 5: SSH keys against the account.
  if (ng.sshKeyIDs.length === 0)
    add('ssh keys', 'spec.sshKeyIDs', null, 'ok', 'none named: nothing to check');
  ng.sshKeyIDs.forEach((id, i) => {
    const field = `spec.sshKeyIDs[${i}]`;
    const what = `ssh key ${id}`;
    if (src.sshKeys.status !== 'ok') return add(what, field, id, 'unchecked', unread(src.sshKeys));
    if (src.sshKeys.value.unknown.includes(id))
      add(
        what,
        field,
        id,
        'wrong',
        `the VPSie account has no SSH key ${id} (the runbook's cause 5, SSH key issues)`,
      );
    else add(what, field, id, 'ok', 'in the VPSie account');
  });

  // Where the controller creates the nodes: the VPSie managed Kubernetes cluster.
  const cluster = ng.resourceIdentifier;
  if (!cluster)
    add(
      'cluster',
      'spec.resourceIdentifier',
      null,
      'wrong',
      'not set: the controller has nowhere to add nodes',
    );
  else if (src.vpsieCluster.status !== 'ok')
    add(`cluster ${cluster}`, 'spec.resourceIdentifier', cluster, 'unchecked', unread(src.vpsieCluster));
  else if (src.vpsieCluster.value === null)
    add(
      `cluster ${cluster}`,
      'spec.resourceIdentifier',
      cluster,
      'wrong',
      `VPSie has no managed Kubernetes cluster ${cluster}: node creation fails`,
    );
  else
    add(
      `cluster ${cluster}`,
      'spec.resourceIdentifier',
      cluster,
      'ok',
      `VPSie managed cluster ${src.vpsieCluster.value.name}`,
    );

  // Cause 4: the version against the cluster's, major.minor as the diagnosis compares them.
  const version = ng.kubernetesVersion;
  const what = version ? `kubernetesVersion ${version}` : 'kubernetesVersion';
  if (!version) add(what, 'spec.kubernetesVersion', null, 'wrong', 'not set');
  else if (src.clusterVersion.status !== 'ok')
    add(what, 'spec.kubernetesVersion', version, 'unchecked', unread(src.clusterVersion));
  else {
    const cv = src.clusterVersion.value;
    const want = majorMinor(version);
    const have = majorMinor(cv.gitVersion) ?? majorMinor(`${cv.major}.${cv.minor.replace(/\D+$/, '')}`);
    if (!want)
      add(what, 'spec.kubernetesVersion', version, 'wrong', 'not a Kubernetes version (vMAJOR.MINOR.PATCH)');
    else if (!have)
      add(
        what,
        'spec.kubernetesVersion',
        version,
        'unchecked',
        `the cluster's version ${cv.gitVersion} is not readable`,
      );
    else if (want[0] !== have[0] || want[1] !== have[1])
      add(
        what,
        'spec.kubernetesVersion',
        version,
        'wrong',
        `the cluster runs ${cv.gitVersion}: new nodes would not join (major.minor differ); set it to v${have[0]}.${have[1]}.x`,
      );
    else add(what, 'spec.kubernetesVersion', version, 'ok', `matches the cluster (${cv.gitVersion})`);
  }
  return out;
}

/** One line per check: `ok     offering 101: offered by VPSie`. */
export function renderChecks(checks: NodeGroupCheck[]): string {
  const width = Math.max(...checks.map((c) => c.status.length));
  return checks.map((c) => `${c.status.padEnd(width)}  ${c.check}: ${c.detail}`).join('\n');
}
