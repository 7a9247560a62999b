import type { SearchAttributeType } from '@temporalio/common';
import type { SearchAttributeKey } from '@temporalio/common/lib/search-attributes';
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';

type KeywordKey = SearchAttributeKey<typeof SearchAttributeType.KEYWORD>;

/**
 * Writes the keyword search attributes whose value differs from the run's current one (which a continued run
 * inherits), all in one command, and nothing when none changed: every write is an event in history.
 */
export function writeSearchAttributes(pairs: { key: KeywordKey; value: string }[]): void {
  const current = workflowInfo().typedSearchAttributes;
  const changed = pairs.filter((p) => current.get(p.key) !== p.value);
  if (changed.length) upsertSearchAttributes(changed);
}
