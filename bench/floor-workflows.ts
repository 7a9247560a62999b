/**
 * The floors the runbook's "alert to diagnosis" is measured against, bundled on their own (never part of the
 * product's bundle): what Temporal itself costs on this machine, measured by the same client on the same server.
 *
 * - `benchEmptyWorkflow`: nothing at all; started and awaited, it is one workflow task and the start/result
 *   round trips.
 * - `benchDiagnosisShapeWorkflow`: the runbook's path to its cause with the work taken out: the first search
 *   attributes, then `checkVPSieNode` and `gatherEvidence` as local activities one after the other (no-ops
 *   here), then the upsert of `RunbookCause`, then (as a dryRun run does) the closing upsert and the result, all
 *   in the first workflow task, as the runbook's local-reads path runs it.
 */
import { proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import * as sa from '../src/workflows/search-attributes';
import type { FloorActivities } from './floor-activities';

const { checkVPSieNode, gatherEvidence } = proxyLocalActivities<FloorActivities>({
  startToCloseTimeout: '30 seconds',
});

export async function benchEmptyWorkflow(): Promise<void> {}

export async function benchDiagnosisShapeWorkflow(ref: { namespace: string; name: string }): Promise<string> {
  upsertSearchAttributes([
    { key: sa.VPSieNodeNamespace, value: ref.namespace },
    { key: sa.VPSieNodeName, value: ref.name },
    { key: sa.RunbookStage, value: 'diagnosing' },
    { key: sa.ApprovalPending, value: false },
  ]);
  const node = await checkVPSieNode(ref);
  await gatherEvidence({ ref, lastSeen: node });
  upsertSearchAttributes([
    { key: sa.RunbookCause, value: 'ProvisioningTimeout' },
    { key: sa.NodeGroup, value: 'bench' },
  ]);
  upsertSearchAttributes([
    { key: sa.RunbookStage, value: 'completed' },
    { key: sa.RunbookOutcome, value: 'DryRun' },
  ]);
  return 'DryRun';
}
