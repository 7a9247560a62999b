import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

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
