import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so the Temporal UI can list runs by VPSieNode, stage and outcome
 * (e.g. `VPSieNodeName = "ng-a-x7"` or `RunbookStage = "waiting-for-controller"`). The worker registers them on
 * start-up and the test harness passes them to the dev server.
 */
export const VPSieNodeNamespace = defineSearchAttributeKey('VPSieNodeNamespace', SearchAttributeType.KEYWORD);
export const VPSieNodeName = defineSearchAttributeKey('VPSieNodeName', SearchAttributeType.KEYWORD);
export const RunbookStage = defineSearchAttributeKey('RunbookStage', SearchAttributeType.KEYWORD);
export const RunbookOutcome = defineSearchAttributeKey('RunbookOutcome', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [VPSieNodeNamespace, VPSieNodeName, RunbookStage, RunbookOutcome] as const;
