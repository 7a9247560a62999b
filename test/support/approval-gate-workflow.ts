/**
 * A test-only workflow around the approval gate: optionally holds until released (so decisions can arrive while
 * nothing is pending), requests approval for each step in turn, optionally holds again, and returns the results
 * with the gate's state. Bundled by the test that uses it, never registered by the product's worker.
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import type { PendingApproval } from '../../src/runbook';
import {
  createApprovalGate,
  type ApprovalResult,
  type ApprovalState,
  type ApprovalStep,
} from '../../src/workflows/approval';

export interface ApprovalGateTestInput {
  allowList: string[];
  ttlMs: number;
  autoApprove: string[];
  steps: ApprovalStep[];
  /** Wait for `release` before the first request. */
  hold?: boolean;
  /** Wait for (another) `release` after the last request, so that late decisions reach a running workflow. */
  holdAtEnd?: boolean;
}

export interface ApprovalGateTestResult {
  /** One per step requested so far. */
  results: ApprovalResult[];
  state: ApprovalState;
  /** Every change of the pending approval, as `onPendingChange` saw it. */
  pendingChanges: (PendingApproval | null)[];
}

/** The gate's state with the results so far: what the test polls for. */
export type GateView = ApprovalState & Omit<ApprovalGateTestResult, 'state'>;
export const gateStateQuery = defineQuery<GateView>('gateState');
export const releaseSignal = defineSignal('release');

export async function approvalGateWorkflow(input: ApprovalGateTestInput): Promise<ApprovalGateTestResult> {
  const pendingChanges: (PendingApproval | null)[] = [];
  const results: ApprovalResult[] = [];
  const gate = createApprovalGate({
    allowList: input.allowList,
    ttlMs: input.ttlMs,
    autoApprove: input.autoApprove,
    onPendingChange: (p) => pendingChanges.push(p),
  });
  let releases = 0;
  setHandler(gateStateQuery, () => ({
    ...gate.state(),
    results: [...results],
    pendingChanges: [...pendingChanges],
  }));
  setHandler(releaseSignal, () => {
    releases += 1;
  });
  const holds = input.hold ? 1 : 0;
  await condition(() => releases >= holds);
  for (const step of input.steps) results.push(await gate.request(step));
  if (input.holdAtEnd) await condition(() => releases >= holds + 1);
  return { results, state: gate.state(), pendingChanges };
}
