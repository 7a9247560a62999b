import { defineQuery } from '@temporalio/workflow';
import type { RunbookStatus } from '../runbook';

/** Defined once, imported by workflows and clients alike, so the names never drift. */
export const statusQuery = defineQuery<RunbookStatus>('status');
