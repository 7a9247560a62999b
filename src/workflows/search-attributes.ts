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
/** The VPSieNode's NodeGroup, once read: `NodeGroup = "ng-a"` lists every run about that group. */
export const NodeGroup = defineSearchAttributeKey('NodeGroup', SearchAttributeType.KEYWORD);
/** The diagnosed cause (`VMCreationFailed`, `SSHKeyInvalid`, ...), once classified. */
export const RunbookCause = defineSearchAttributeKey('RunbookCause', SearchAttributeType.KEYWORD);
/** True while a destructive step waits for a person: `ApprovalPending = true` is the on-call's inbox. */
export const ApprovalPending = defineSearchAttributeKey('ApprovalPending', SearchAttributeType.BOOL);

export const SEARCH_ATTRIBUTES = [
  VPSieNodeNamespace,
  VPSieNodeName,
  RunbookStage,
  RunbookOutcome,
  NodeGroup,
  RunbookCause,
  ApprovalPending,
] as const;
