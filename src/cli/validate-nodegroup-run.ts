/**
 * The work of `validate-nodegroup`, loaded only when that command runs: the Kubernetes client is the heaviest
 * module of the CLI, and no other command needs it.
 */
import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import { asActivityFailure } from '../activities/kubernetes';
import { asVPSieActivityFailure, readCatalogCheck, readSSHKeyCheck } from '../activities/vpsie';
import { sourceError, sourceOk, sourceUnavailable, type SourceResult } from '../runbook/diagnosis';
import { toNodeGroupSnapshot } from '../runbook/evidence';
import { ApplicationFailure } from '@temporalio/common';
import { parseObjectRef } from './args';
import { kubernetesClient, vpsieClient } from './clients';
import type { CommandContext } from './context';
import { CliError, EXIT, failure } from './errors';
import { nodeGroupChecks, renderChecks } from './nodegroup-checks';

const NO_VPSIE =
  'VPSie credentials are not configured (VPSIE_TOKEN_FILE or VPSIE_TOKEN, or VPSIE_CLIENT_ID(_FILE) and VPSIE_CLIENT_SECRET(_FILE))';

/** A failed read in the diagnosis' terms: the failure type (`VPSieAuth`, `Kubernetes403`, …) and its message. */
async function read<T>(fn: () => Promise<T>, toFailure: (err: unknown) => unknown): Promise<SourceResult<T>> {
  try {
    return sourceOk(await fn());
  } catch (err) {
    const f = toFailure(err);
    if (f instanceof ApplicationFailure) return sourceError(f.type ?? 'Error', f.message);
    return sourceError(
      err instanceof Error ? err.name : 'Error',
      err instanceof Error ? err.message : String(err),
    );
  }
}

function fromVPSie<T>(c: VPSieClient | null, fn: (c: VPSieClient) => Promise<T>): Promise<SourceResult<T>> {
  if (!c) return Promise.resolve(sourceUnavailable(NO_VPSIE));
  return read(() => fn(c), asVPSieActivityFailure);
}

export interface ValidateFlags {
  kubeconfig?: string;
  context?: string;
}

export async function validateNodeGroup(c: CommandContext, arg: string, opts: ValidateFlags): Promise<void> {
  const ref = parseObjectRef(arg, 'argument <ns/name>');
  const config = c.env();
  let kube: KubernetesClient;
  try {
    kube = kubernetesClient(config, opts);
  } catch (err) {
    throw new CliError(`cannot load the kubeconfig: ${(err as Error).message}`, EXIT.UNCHECKED);
  }
  const vpsie = vpsieClient(config);
  const raw = await read(() => kube.getNodeGroup(ref), asActivityFailure);
  if (raw.status !== 'ok')
    throw new CliError(
      `cannot read NodeGroup ${ref.namespace}/${ref.name}: ${raw.status === 'error' ? `${raw.type}: ${raw.message}` : raw.why}`,
      EXIT.UNCHECKED,
    );
  if (raw.value === null) throw failure(`NodeGroup ${ref.namespace}/${ref.name} not found`);
  const ng = toNodeGroupSnapshot(raw.value);
  const resourceIdentifier = ng.resourceIdentifier;
  const [catalog, sshKeys, clusterVersion, vpsieCluster] = await Promise.all([
    fromVPSie(vpsie, (v) =>
      readCatalogCheck(v, {
        offeringIDs: ng.offeringIDs,
        datacenterID: ng.datacenterID,
        osImageID: ng.osImageID,
      }),
    ),
    fromVPSie(vpsie, (v) => readSSHKeyCheck(v, ng.sshKeyIDs)),
    read(() => kube.serverVersion(), asActivityFailure),
    resourceIdentifier
      ? fromVPSie(vpsie, async (v) => {
          const cluster = await v.getK8sCluster(resourceIdentifier);
          return cluster && { name: cluster.cluster_name || cluster.identifier };
        })
      : Promise.resolve(sourceUnavailable<{ name: string } | null>('spec.resourceIdentifier is not set')),
  ]);
  const checks = nodeGroupChecks(ng, { catalog, sshKeys, clusterVersion, vpsieCluster });
  const wrong = checks.filter((x) => x.status === 'wrong').length;
  const unchecked = checks.filter((x) => x.status === 'unchecked').length;
  c.result(
    {
      nodeGroup: { namespace: ng.namespace, name: ng.name, uid: ng.uid },
      ok: wrong + unchecked === 0,
      checks,
    },
    () => renderChecks(checks),
  );
  c.io.progress(
    `NodeGroup ${ng.namespace}/${ng.name}: ${checks.length} checks, ${wrong} wrong, ${unchecked} not checked`,
  );
  if (wrong) throw new CliError('', EXIT.FAILED);
  if (unchecked) throw new CliError('', EXIT.UNCHECKED);
}
