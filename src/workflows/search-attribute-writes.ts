import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { PENDING_APPROVAL_MEMO_KEY, type PendingApproval } from '../runbook/approval';

type KeywordKey = SearchAttributeKey<typeof SearchAttributeType.KEYWORD>;
type BoolKey = SearchAttributeKey<typeof SearchAttributeType.BOOL>;
export type SearchAttributeWrite = { key: KeywordKey; value: string } | { key: BoolKey; value: boolean };

/**
 * Writes the search attributes whose value differs from the run's current one (which a continued run
 * inherits), all in one command, and nothing when none changed: every write is an event in history.
 */
export function writeSearchAttributes(pairs: SearchAttributeWrite[]): void {
  const current = workflowInfo().typedSearchAttributes;
  const changed = pairs.filter((p) => current.get(p.key as KeywordKey) !== p.value);
  if (changed.length) upsertSearchAttributes(changed);
}

/**
 * Runs (and sweeps) with this patch keep the step waiting for a person in their memo as well, so that `list
 * --pending-approval` reads it from visibility instead of querying, and so replaying, every run it lists.
 */
export const APPROVAL_MEMO_PATCH = 'approval-memo';

/** The step waiting for a person, in the memo beside `ApprovalPending`; the key is cleared when none waits. */
export function writePendingApprovalMemo(pending: PendingApproval | null): void {
  upsertMemo({ [PENDING_APPROVAL_MEMO_KEY]: pending ?? undefined });
}
